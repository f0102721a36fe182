import { afterEach, describe, expect, it } from "vitest";
import { eq } from "drizzle-orm";
import { jobs } from "../../db/schema.js";
import { openDatabase, type OpenDatabase } from "../../src/directory/database.js";
import { enqueueJob, Lane } from "../../src/directory/outbox.js";
import { Worker, backoffMs, sqliteJobQueue, type JobHandler, type JobRow } from "../../src/sync/worker.js";
import { sqliteStore } from "../../src/directory/sql.js";
import { connectionOf } from "../../src/directory/statements.js";

const queueOf = (db: Parameters<typeof connectionOf>[0]) => sqliteJobQueue(sqliteStore(connectionOf(db)));
import { runSync } from "../../src/directory/store-op.js";

let opened: OpenDatabase[] = [];
let workers: Worker[] = [];
afterEach(async () => {
  for (const w of workers) await w.stop(1000);
  for (const o of opened) o.close();
  opened = [];
  workers = [];
});

function setup() {
  const o = openDatabase("sqlite::memory:");
  opened.push(o);
  return o.db;
}

const enqueue = (db: ReturnType<typeof setup>, subjectId: string, lane: Lane, now?: number) =>
  runSync(db, enqueueJob({ organizationId: "org1", kind: "user", subjectId, lane, now }));

function startWorker(
  db: ReturnType<typeof setup>,
  handler: JobHandler,
  extra: Partial<ConstructorParameters<typeof Worker>[0]> = {},
) {
  const w = new Worker({ queue: queueOf(db), handlers: { user: handler }, pollMs: 5, concurrency: 4, ...extra });
  workers.push(w);
  w.start();
  return w;
}

async function until(cond: () => boolean, ms = 5000) {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error("condition not met in time");
    await new Promise((r) => setTimeout(r, 5));
  }
}

const states = (db: ReturnType<typeof setup>) =>
  db
    .select()
    .from(jobs)
    .all()
    .map((j) => `${j.subjectId}:${j.state}`);

describe("job queue and worker", () => {
  it("merges pending jobs for the same user, keeping the most urgent lane", () => {
    const db = setup();
    enqueue(db, "u1", Lane.provision);
    enqueue(db, "u1", Lane.deprovision);
    enqueue(db, "u1", Lane.provision);
    const rows = db.select().from(jobs).all();
    expect(rows).toHaveLength(1);
    expect(rows[0]!.lane).toBe(Lane.deprovision);
  });

  it("runs the deprovision lane before a provisioning backlog", async () => {
    const db = setup();
    for (let i = 0; i < 20; i++) enqueue(db, `p${i}`, Lane.provision);
    enqueue(db, "deprovision-me", Lane.deprovision);
    const order: string[] = [];
    startWorker(
      db,
      async (job) => {
        order.push(job.subjectId);
        return { status: "done" };
      },
      { concurrency: 1 },
    );
    await until(() => order.length === 21);
    expect(order[0]).toBe("deprovision-me");
  });

  it("starts a deactivation at once while every ordinary slot is held by a provisioning backlog", async () => {
    const db = setup();
    for (let i = 0; i < 10; i++) enqueue(db, `p${i}`, Lane.provision);
    // Provisioning jobs hold their slots (as when each waits its turn for the rate limit) until the
    // deactivation has run: without a slot of its own, it would wait for them and none would finish.
    let deprovisioned!: () => void;
    const deactivationRan = new Promise<void>((r) => (deprovisioned = r));
    const started: string[] = [];
    startWorker(
      db,
      async (job) => {
        started.push(job.subjectId);
        if (job.lane === Lane.deprovision) deprovisioned();
        else await deactivationRan;
        return { status: "done" };
      },
      { concurrency: 4 },
    );
    await until(() => started.length === 4);
    enqueue(db, "leaver", Lane.deprovision);
    await until(() => started.includes("leaver"));
    // It ran while the four provisioning jobs were still in their slots, and no other provisioning
    // job took the slot kept for deactivations.
    expect(started.slice(0, 5).sort()).toEqual(["leaver", "p0", "p1", "p2", "p3"]);
    await until(() => states(db).every((x) => x.endsWith(":done")));
  });

  it("stops a user's running provisioning job when the user is deactivated, lifting its waiting call, and runs the deactivation next", async () => {
    const db = setup();
    enqueue(db, "u1", Lane.provision);
    const lifted: number[] = [];
    const seen: string[] = [];
    let callWaiting!: () => void;
    const waiting = new Promise<void>((r) => (callWaiting = r));
    startWorker(
      db,
      async (job, signal, lane) => {
        seen.push(`${job.subjectId}:${job.lane}`);
        if (job.lane === Lane.deprovision) return { status: "done" };
        // A provisioning job whose next Auth0 call waits for the rate limiter behind a backlog:
        // it stays in its slot until it is told to stop.
        callWaiting();
        await new Promise<void>((r) => signal.addEventListener("abort", () => r()));
        lifted.push(lane!.lane);
        return { status: "retry", reason: "stopped" };
      },
      { lift: (lane) => (lane.lane = Lane.deprovision) },
    );
    await waiting;
    enqueue(db, "u1", Lane.deprovision);
    await until(() => seen.length === 2);
    // The waiting call was moved to the deprovision lane, the job stopped and its lease merged into
    // the deactivation, which ran next: one job, done, no attempt counted against it.
    expect(lifted).toEqual([Lane.deprovision]);
    expect(seen).toEqual([`u1:${Lane.provision}`, `u1:${Lane.deprovision}`]);
    await until(() => states(db).every((x) => x.endsWith(":done")));
    const rows = db.select().from(jobs).all();
    expect(rows).toHaveLength(1);
    expect(rows[0]!.attempts).toBe(0);
  });

  it("leaves a running provisioning job alone when another user is deactivated", async () => {
    const db = setup();
    enqueue(db, "u1", Lane.provision);
    let aborted = false;
    let release!: () => void;
    const released = new Promise<void>((r) => (release = r));
    const seen: string[] = [];
    startWorker(db, async (job, signal) => {
      seen.push(job.subjectId);
      if (job.subjectId === "u1") {
        signal.addEventListener("abort", () => (aborted = true));
        await released;
      }
      return { status: "done" };
    });
    await until(() => seen.includes("u1"));
    enqueue(db, "u2", Lane.deprovision);
    await until(() => seen.includes("u2"));
    await new Promise((r) => setTimeout(r, 50));
    release();
    await until(() => states(db).every((x) => x.endsWith(":done")));
    expect(aborted).toBe(false);
  });

  it("keeps the deactivations' slot free: provisioning never runs more than `concurrency` jobs", async () => {
    const db = setup();
    for (let i = 0; i < 10; i++) enqueue(db, `p${i}`, Lane.provision);
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    let running = 0;
    let most = 0;
    startWorker(
      db,
      async () => {
        most = Math.max(most, ++running);
        await gate;
        running--;
        return { status: "done" };
      },
      { concurrency: 3, deprovisionSlots: 2 },
    );
    await until(() => running === 3);
    // Polls come and go; the reserved slots stay empty.
    await new Promise((r) => setTimeout(r, 50));
    expect(most).toBe(3);
    release();
    await until(() => states(db).every((x) => x.endsWith(":done")));
    expect(most).toBe(3);
  });

  it("starts a job enqueued in this process at once, without waiting for its next poll", async () => {
    const db = setup();
    const ran: string[] = [];
    // A poll an hour apart: only the wake-up on enqueue can start the job.
    startWorker(
      db,
      async (job) => {
        ran.push(job.subjectId);
        return { status: "done" };
      },
      { pollMs: 3_600_000 },
    );
    await new Promise((r) => setTimeout(r, 20)); // the start-up poll has found nothing
    enqueue(db, "leaver", Lane.deprovision);
    await until(() => states(db).join() === "leaver:done");
    expect(ran).toEqual(["leaver"]);
  });

  it("runs a retry it scheduled when it falls due, without waiting for its next poll", async () => {
    const db = setup();
    let calls = 0;
    startWorker(
      db,
      async () => (++calls === 1 ? { status: "retry", reason: "Auth0 unreachable" } : { status: "done" }),
      { pollMs: 3_600_000, backoff: { baseMs: 20, deprovisionCapMs: 20, otherCapMs: 20 }, random: () => 1 },
    );
    enqueue(db, "u1", Lane.provision);
    await until(() => states(db).join() === "u1:done");
    expect(calls).toBe(2);
  });

  it("runs a retry whose timer fires before the wall clock reaches its time", async () => {
    const db = setup();
    let calls = 0;
    // A wall clock running at half the timers' speed (as under an NTP slew, or rounding): every
    // timer fires before the clock says the retry is due.
    const start = Date.now();
    const slowClock = () => start + (Date.now() - start) / 2;
    startWorker(
      db,
      async () => (++calls === 1 ? { status: "retry", reason: "Auth0 unreachable" } : { status: "done" }),
      {
        pollMs: 3_600_000,
        now: slowClock,
        backoff: { baseMs: 20, deprovisionCapMs: 20, otherCapMs: 20 },
        random: () => 1,
      },
    );
    runSync(
      db,
      enqueueJob({ organizationId: "org1", kind: "user", subjectId: "u1", lane: Lane.provision, now: slowClock() }),
    );
    await until(() => states(db).join() === "u1:done");
    expect(calls).toBe(2);
  });

  it("runs a drift scan beside a provisioning backlog instead of after it, without taking a user job's slot", async () => {
    const db = setup();
    for (let i = 0; i < 10; i++) enqueue(db, `p${i}`, Lane.provision);
    runSync(db, enqueueJob({ organizationId: "org1", kind: "drift", subjectId: "org1", lane: Lane.background }));
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    let usersRunning = 0;
    let usersAtScan = -1;
    const w = new Worker({
      queue: queueOf(db),
      pollMs: 5,
      concurrency: 2,
      handlers: {
        user: async () => {
          usersRunning++;
          await gate;
          usersRunning--;
          return { status: "done" };
        },
        drift: async () => {
          usersAtScan = usersRunning;
          return { status: "done" };
        },
      },
    });
    workers.push(w);
    w.start();
    // The two user slots are held by the backlog; the scan still runs, and both user jobs keep going.
    await until(() => usersAtScan >= 0);
    expect(usersAtScan).toBe(2);
    expect(states(db).filter((x) => x.endsWith(":pending"))).toHaveLength(8);
    release();
    await until(() => states(db).every((x) => x.endsWith(":done")));
  });

  it("never runs two jobs of one user at once, and a change during a run is reconciled after it", async () => {
    const db = setup();
    enqueue(db, "u1", Lane.provision);
    let concurrent = 0;
    let maxConcurrent = 0;
    let runs = 0;
    startWorker(db, async () => {
      concurrent++;
      maxConcurrent = Math.max(maxConcurrent, concurrent);
      runs++;
      if (runs === 1) enqueue(db, "u1", Lane.provision); // the IdP changes the user mid-run
      await new Promise((r) => setTimeout(r, 30));
      concurrent--;
      return { status: "done" };
    });
    await until(() => runs === 2 && states(db).every((s) => s.endsWith("done")));
    expect(maxConcurrent).toBe(1);
  });

  it("retries transient failures with backoff, and sends provisioning jobs to dead after the attempt limit", async () => {
    const db = setup();
    enqueue(db, "flaky", Lane.provision);
    enqueue(db, "broken", Lane.provision);
    let flakyCalls = 0;
    startWorker(
      db,
      async (job: JobRow) => {
        if (job.subjectId === "flaky")
          return ++flakyCalls < 3 ? { status: "retry", reason: "Auth0 503" } : { status: "done" };
        throw new Error("Auth0 unreachable");
      },
      { maxAttempts: 3, random: () => 0 },
    );
    await until(() => states(db).sort().join() === "broken:dead,flaky:done");
    const broken = db.select().from(jobs).where(eq(jobs.subjectId, "broken")).get()!;
    expect(broken.lastError).toContain("gave up after 3 attempts: Auth0 unreachable");
    expect(flakyCalls).toBe(3);
  });

  it("keeps retrying a deprovision job instead of giving up", async () => {
    const db = setup();
    enqueue(db, "leaver", Lane.deprovision);
    let calls = 0;
    startWorker(db, async () => (++calls < 6 ? { status: "retry", reason: "Auth0 outage" } : { status: "done" }), {
      maxAttempts: 2,
      random: () => 0,
    });
    await until(() => states(db).join() === "leaver:done");
    expect(calls).toBe(6);
  });

  it("sends a job to dead at once on a fatal error, with the reason", async () => {
    const db = setup();
    enqueue(db, "bad", Lane.provision);
    startWorker(db, async () => ({ status: "dead", reason: "Auth0 400 invalid_body: Payload validation failed" }));
    await until(() => states(db).join() === "bad:dead");
    expect(db.select().from(jobs).get()!.lastError).toMatch(/invalid_body/);
  });

  it("takes over the jobs of a crashed worker once their lease expires", async () => {
    const db = setup();
    enqueue(db, "orphan", Lane.deprovision);
    // A worker that died mid-job: running, with a lease that has run out.
    db.update(jobs)
      .set({ state: "running", leaseOwner: "worker-that-died", leaseExpiresAt: Date.now() - 1 })
      .run();
    const seen: string[] = [];
    startWorker(db, async (job) => {
      seen.push(job.subjectId);
      return { status: "done" };
    });
    await until(() => states(db).join() === "orphan:done");
    expect(seen).toEqual(["orphan"]);
  });

  it("releases its leases on a graceful stop so the next worker starts at once", async () => {
    const db = setup();
    enqueue(db, "slow", Lane.provision);
    let started = false;
    const w = startWorker(db, async (_job, signal) => {
      started = true;
      await new Promise((r) => signal.addEventListener("abort", r));
      return { status: "retry", reason: "interrupted" };
    });
    await until(() => started);
    await w.stop(1000);
    const job = db.select().from(jobs).get()!;
    expect(job.state).toBe("pending");
    expect(job.leaseOwner).toBeNull();
  });

  it("caps backoff at 60 s for deprovisioning and grows it with attempts", () => {
    expect(backoffMs(30, Lane.deprovision, () => 0.999)).toBeLessThanOrEqual(60_000);
    expect(backoffMs(30, Lane.provision, () => 0.999)).toBeGreaterThan(60_000);
    expect(backoffMs(1, Lane.provision, () => 0.999)).toBeLessThan(backoffMs(4, Lane.provision, () => 0.999));
  });
});

describe("graceful stop with a newer change waiting", () => {
  it("merges the released job into the pending one instead of failing on the unique key", async () => {
    const db = setup();
    enqueue(db, "u1", Lane.provision);
    let started = false;
    const w = startWorker(db, async (_job, signal) => {
      started = true;
      await new Promise((r) => signal.addEventListener("abort", r));
      return { status: "retry", reason: "interrupted" };
    });
    await until(() => started);
    enqueue(db, "u1", Lane.deprovision); // the IdP deactivates the user while the job runs
    await w.stop(1000);
    const rows = db.select().from(jobs).all();
    expect(rows).toHaveLength(1);
    expect(rows[0]!.state).toBe("pending");
    expect(rows[0]!.lane).toBe(Lane.deprovision);
  });
});

describe("history", () => {
  it("prunes done jobs older than a week and keeps dead ones for a retry", async () => {
    const db = setup();
    enqueue(db, "old-done", Lane.provision);
    enqueue(db, "old-dead", Lane.provision);
    enqueue(db, "recent-done", Lane.provision);
    const weekAgo = Date.now() - 8 * 86_400_000;
    db.update(jobs).set({ state: "done", updatedAt: weekAgo }).where(eq(jobs.subjectId, "old-done")).run();
    db.update(jobs).set({ state: "dead", updatedAt: weekAgo }).where(eq(jobs.subjectId, "old-dead")).run();
    db.update(jobs).set({ state: "done" }).where(eq(jobs.subjectId, "recent-done")).run();
    const w = new Worker({ queue: queueOf(db), handlers: {} });
    expect(await w.pruneDone()).toBe(1);
    expect(states(db).sort()).toEqual(["old-dead:dead", "recent-done:done"]);
  });
});
