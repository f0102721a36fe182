/**
 * The worker over the job queue of this run's dialect: the SQLite queue, or PostgreSQL's outbox
 * (claims with SKIP LOCKED, its own attempt limit and backoff, the database's clock).
 */
import { describe, expect, it } from "vitest";
import { enqueueJob, Lane } from "../../src/directory/outbox.js";
import type { SqlStore } from "../../src/directory/sql.js";
import { Worker, backoffMs, type JobHandler, type JobRow } from "../../src/sync/worker.js";
import { sqlExec, sqlRow, sqlRows, workerQueueOf, workerTestStores } from "../helpers/sync-store.js";

const stores = workerTestStores();
const setup = stores.store;

const enqueue = (store: SqlStore, subjectId: string, lane: Lane, now?: number) =>
  store.write(enqueueJob({ organizationId: "org1", kind: "user", subjectId, lane, now }));

function startWorker(
  store: SqlStore,
  handler: JobHandler,
  extra: Partial<ConstructorParameters<typeof Worker>[0]> = {},
) {
  const w = new Worker({
    ...workerQueueOf(store, extra),
    handlers: { user: handler },
    pollMs: 5,
    concurrency: 4,
    ...extra,
  });
  stores.track(w);
  w.start();
  return w;
}

async function until(cond: () => boolean | Promise<boolean>, ms = 5000) {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error("condition not met in time");
    await new Promise((r) => setTimeout(r, 5));
  }
}

interface Job {
  subjectId: string;
  state: string;
  lane: number;
  attempts: number;
  lastError: string | null;
  leaseOwner: string | null;
}
const jobColumns = `subject_id AS "subjectId", state, lane, attempts, last_error AS "lastError", lease_owner AS "leaseOwner"`;
const allJobs = (store: SqlStore) => sqlRows<Job>(store, `SELECT ${jobColumns} FROM jobs ORDER BY id`);
const jobOf = async (store: SqlStore, subjectId: string) =>
  (await sqlRow<Job>(store, `SELECT ${jobColumns} FROM jobs WHERE subject_id = ?`, [subjectId]))!;
const states = async (store: SqlStore) => (await allJobs(store)).map((j) => `${j.subjectId}:${j.state}`);
const allDone = async (store: SqlStore) => (await states(store)).every((x) => x.endsWith(":done"));

describe("job queue and worker", () => {
  it("merges pending jobs for the same user, keeping the most urgent lane", async () => {
    const store = await setup();
    await enqueue(store, "u1", Lane.provision);
    await enqueue(store, "u1", Lane.deprovision);
    await enqueue(store, "u1", Lane.provision);
    const rows = await allJobs(store);
    expect(rows).toHaveLength(1);
    expect(rows[0]!.lane).toBe(Lane.deprovision);
  });

  it("runs the deprovision lane before a provisioning backlog", async () => {
    const store = await setup();
    for (let i = 0; i < 20; i++) await enqueue(store, `p${i}`, Lane.provision);
    await enqueue(store, "deprovision-me", Lane.deprovision);
    const order: string[] = [];
    startWorker(
      store,
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
    const store = await setup();
    for (let i = 0; i < 10; i++) await enqueue(store, `p${i}`, Lane.provision);
    // Provisioning jobs hold their slots (as when each waits its turn for the rate limit) until the
    // deactivation has run: without a slot of its own, it would wait for them and none would finish.
    let deprovisioned!: () => void;
    const deactivationRan = new Promise<void>((r) => (deprovisioned = r));
    const started: string[] = [];
    startWorker(
      store,
      async (job) => {
        started.push(job.subjectId);
        if (job.lane === Lane.deprovision) deprovisioned();
        else await deactivationRan;
        return { status: "done" };
      },
      { concurrency: 4 },
    );
    await until(() => started.length === 4);
    await enqueue(store, "leaver", Lane.deprovision);
    await until(() => started.includes("leaver"));
    // It ran while the four provisioning jobs were still in their slots, and no other provisioning
    // job took the slot kept for deactivations.
    expect(started.slice(0, 5).sort()).toEqual(["leaver", "p0", "p1", "p2", "p3"]);
    await until(() => allDone(store));
  });

  it("stops a user's running provisioning job when the user is deactivated, lifting its waiting call, and runs the deactivation next", async () => {
    const store = await setup();
    await enqueue(store, "u1", Lane.provision);
    const lifted: number[] = [];
    const seen: string[] = [];
    let callWaiting!: () => void;
    const waiting = new Promise<void>((r) => (callWaiting = r));
    startWorker(
      store,
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
    await enqueue(store, "u1", Lane.deprovision);
    await until(() => seen.length === 2);
    // The waiting call was moved to the deprovision lane, the job stopped and its lease merged into
    // the deactivation, which ran next: one job, done, no attempt counted against it.
    expect(lifted).toEqual([Lane.deprovision]);
    expect(seen).toEqual([`u1:${Lane.provision}`, `u1:${Lane.deprovision}`]);
    await until(() => allDone(store));
    const rows = await allJobs(store);
    expect(rows).toHaveLength(1);
    expect(rows[0]!.attempts).toBe(0);
  });

  it("leaves a running provisioning job alone when another user is deactivated", async () => {
    const store = await setup();
    await enqueue(store, "u1", Lane.provision);
    let aborted = false;
    let release!: () => void;
    const released = new Promise<void>((r) => (release = r));
    const seen: string[] = [];
    startWorker(store, async (job, signal) => {
      seen.push(job.subjectId);
      if (job.subjectId === "u1") {
        signal.addEventListener("abort", () => (aborted = true));
        await released;
      }
      return { status: "done" };
    });
    await until(() => seen.includes("u1"));
    await enqueue(store, "u2", Lane.deprovision);
    await until(() => seen.includes("u2"));
    await new Promise((r) => setTimeout(r, 50));
    release();
    await until(() => allDone(store));
    expect(aborted).toBe(false);
  });

  it("keeps the deactivations' slot free: provisioning never runs more than `concurrency` jobs", async () => {
    const store = await setup();
    for (let i = 0; i < 10; i++) await enqueue(store, `p${i}`, Lane.provision);
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    let running = 0;
    let most = 0;
    startWorker(
      store,
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
    await until(() => allDone(store));
    expect(most).toBe(3);
  });

  it("starts a job enqueued in this process at once, without waiting for its next poll", async () => {
    const store = await setup();
    const ran: string[] = [];
    // A poll an hour apart: only the wake-up on enqueue can start the job.
    startWorker(
      store,
      async (job) => {
        ran.push(job.subjectId);
        return { status: "done" };
      },
      { pollMs: 3_600_000 },
    );
    await new Promise((r) => setTimeout(r, 20)); // the start-up poll has found nothing
    await enqueue(store, "leaver", Lane.deprovision);
    await until(async () => (await states(store)).join() === "leaver:done");
    expect(ran).toEqual(["leaver"]);
  });

  it("runs a retry it scheduled when it falls due, without waiting for its next poll", async () => {
    const store = await setup();
    let calls = 0;
    startWorker(
      store,
      async () => (++calls === 1 ? { status: "retry", reason: "Auth0 unreachable" } : { status: "done" }),
      { pollMs: 3_600_000, backoff: { baseMs: 20, deprovisionCapMs: 20, otherCapMs: 20 }, random: () => 1 },
    );
    await enqueue(store, "u1", Lane.provision);
    await until(async () => (await states(store)).join() === "u1:done");
    expect(calls).toBe(2);
  });

  it("runs a retry whose timer fires before the wall clock reaches its time", async () => {
    const store = await setup();
    let calls = 0;
    // A wall clock running at half the timers' speed (as under an NTP slew, or rounding): every
    // timer fires before the clock says the retry is due.
    const start = Date.now();
    const slowClock = () => start + (Date.now() - start) / 2;
    startWorker(
      store,
      async () => (++calls === 1 ? { status: "retry", reason: "Auth0 unreachable" } : { status: "done" }),
      {
        pollMs: 3_600_000,
        now: slowClock,
        backoff: { baseMs: 20, deprovisionCapMs: 20, otherCapMs: 20 },
        random: () => 1,
      },
    );
    await store.write(
      // Whole milliseconds, as Date.now() gives: the jobs table's times are integers.
      enqueueJob({
        organizationId: "org1",
        kind: "user",
        subjectId: "u1",
        lane: Lane.provision,
        now: Math.floor(slowClock()),
      }),
    );
    await until(async () => (await states(store)).join() === "u1:done");
    expect(calls).toBe(2);
  });

  it("runs a drift scan beside a provisioning backlog instead of after it, without taking a user job's slot", async () => {
    const store = await setup();
    for (let i = 0; i < 10; i++) await enqueue(store, `p${i}`, Lane.provision);
    await store.write(enqueueJob({ organizationId: "org1", kind: "drift", subjectId: "org1", lane: Lane.background }));
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    let usersRunning = 0;
    let usersAtScan = -1;
    const w = new Worker({
      ...workerQueueOf(store),
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
    stores.track(w);
    w.start();
    // The two user slots are held by the backlog; the scan still runs, and both user jobs keep going.
    await until(() => usersAtScan >= 0);
    expect(usersAtScan).toBe(2);
    expect((await states(store)).filter((x) => x.endsWith(":pending"))).toHaveLength(8);
    release();
    await until(() => allDone(store));
  });

  it("never runs two jobs of one user at once, and a change during a run is reconciled after it", async () => {
    const store = await setup();
    await enqueue(store, "u1", Lane.provision);
    let concurrent = 0;
    let maxConcurrent = 0;
    let runs = 0;
    startWorker(store, async () => {
      concurrent++;
      maxConcurrent = Math.max(maxConcurrent, concurrent);
      runs++;
      if (runs === 1) await enqueue(store, "u1", Lane.provision); // the IdP changes the user mid-run
      await new Promise((r) => setTimeout(r, 30));
      concurrent--;
      return { status: "done" };
    });
    await until(async () => runs === 2 && (await allDone(store)));
    expect(maxConcurrent).toBe(1);
  });

  it("retries transient failures with backoff, and sends provisioning jobs to dead after the attempt limit", async () => {
    const store = await setup();
    await enqueue(store, "flaky", Lane.provision);
    await enqueue(store, "broken", Lane.provision);
    let flakyCalls = 0;
    startWorker(
      store,
      async (job: JobRow) => {
        if (job.subjectId === "flaky")
          return ++flakyCalls < 3 ? { status: "retry", reason: "Auth0 503" } : { status: "done" };
        throw new Error("Auth0 unreachable");
      },
      { maxAttempts: 3, random: () => 0 },
    );
    await until(async () => (await states(store)).sort().join() === "broken:dead,flaky:done");
    const broken = await jobOf(store, "broken");
    expect(broken.lastError).toContain("gave up after 3 attempts: Auth0 unreachable");
    expect(flakyCalls).toBe(3);
  });

  it("keeps retrying a deprovision job instead of giving up", async () => {
    const store = await setup();
    await enqueue(store, "leaver", Lane.deprovision);
    let calls = 0;
    startWorker(store, async () => (++calls < 6 ? { status: "retry", reason: "Auth0 outage" } : { status: "done" }), {
      maxAttempts: 2,
      random: () => 0,
    });
    await until(async () => (await states(store)).join() === "leaver:done");
    expect(calls).toBe(6);
  });

  it("sends a job to dead at once on a fatal error, with the reason", async () => {
    const store = await setup();
    await enqueue(store, "bad", Lane.provision);
    startWorker(store, async () => ({ status: "dead", reason: "Auth0 400 invalid_body: Payload validation failed" }));
    await until(async () => (await states(store)).join() === "bad:dead");
    expect((await jobOf(store, "bad")).lastError).toMatch(/invalid_body/);
  });

  it("takes over the jobs of a crashed worker once their lease expires", async () => {
    const store = await setup();
    await enqueue(store, "orphan", Lane.deprovision);
    // A worker that died mid-job: running, with a lease that has run out.
    await sqlExec(store, "UPDATE jobs SET state = 'running', lease_owner = ?, lease_expires_at = ?", [
      "worker-that-died",
      Date.now() - 1,
    ]);
    const seen: string[] = [];
    startWorker(store, async (job) => {
      seen.push(job.subjectId);
      return { status: "done" };
    });
    await until(async () => (await states(store)).join() === "orphan:done");
    expect(seen).toEqual(["orphan"]);
  });

  it("releases its leases on a graceful stop so the next worker starts at once", async () => {
    const store = await setup();
    await enqueue(store, "slow", Lane.provision);
    let started = false;
    const w = startWorker(store, async (_job, signal) => {
      started = true;
      await new Promise((r) => signal.addEventListener("abort", r));
      return { status: "retry", reason: "interrupted" };
    });
    await until(() => started);
    await w.stop(1000);
    const job = await jobOf(store, "slow");
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
    const store = await setup();
    await enqueue(store, "u1", Lane.provision);
    let started = false;
    const w = startWorker(store, async (_job, signal) => {
      started = true;
      await new Promise((r) => signal.addEventListener("abort", r));
      return { status: "retry", reason: "interrupted" };
    });
    await until(() => started);
    await enqueue(store, "u1", Lane.deprovision); // the IdP deactivates the user while the job runs
    await w.stop(1000);
    const rows = await allJobs(store);
    expect(rows).toHaveLength(1);
    expect(rows[0]!.state).toBe("pending");
    expect(rows[0]!.lane).toBe(Lane.deprovision);
  });
});

describe("history", () => {
  it("prunes done jobs older than a week and keeps dead ones for a retry", async () => {
    const store = await setup();
    await enqueue(store, "old-done", Lane.provision);
    await enqueue(store, "old-dead", Lane.provision);
    await enqueue(store, "recent-done", Lane.provision);
    const weekAgo = Date.now() - 8 * 86_400_000;
    const set = (subjectId: string, state: string, updatedAt: number) =>
      sqlExec(store, "UPDATE jobs SET state = ?, updated_at = ? WHERE subject_id = ?", [state, updatedAt, subjectId]);
    await set("old-done", "done", weekAgo);
    await set("old-dead", "dead", weekAgo);
    await set("recent-done", "done", Date.now());
    const w = new Worker({ ...workerQueueOf(store), handlers: {} });
    expect(await w.pruneDone()).toBe(1);
    expect((await states(store)).sort()).toEqual(["old-dead:dead", "recent-done:done"]);
  });
});
