/**
 * A job's attempts, as operators read them (`scim-bridge jobs`, the admin API's jobView, the
 * console): failed runs so far, the same on SQLite and on PostgreSQL. A run that succeeds adds
 * nothing; each run that ends in a retry or goes dead adds one; a provisioning job gives up after
 * maxAttempts failed runs.
 */
import { describe, expect, it } from "vitest";
import { enqueueJob, Lane } from "../../src/directory/outbox.js";
import type { SqlStore } from "../../src/directory/sql.js";
import { jobView } from "../../src/admin/views.js";
import { listJobs } from "../../src/sync/job-queries.js";
import { Worker, type JobHandler } from "../../src/sync/worker.js";
import { workerQueueOf, workerTestStores } from "../helpers/sync-store.js";

const stores = workerTestStores();
const setup = stores.store;

/** Backoff of 0 ms (random 0), so retries run at once. */
const fast = { maxAttempts: 3, random: () => 0 } as const;

function startWorker(store: SqlStore, handler: JobHandler) {
  const w = new Worker({
    ...workerQueueOf(store, fast),
    ...fast,
    handlers: { user: handler },
    pollMs: 5,
    concurrency: 4,
  });
  stores.track(w);
  w.start();
}

/** The jobs as the admin API shows them, by subject. */
async function shown(store: SqlStore) {
  const { jobs } = await store.read(listJobs({ organizationId: "org1" }));
  return Object.fromEntries(jobs.map((j) => [j.subjectId, jobView(j)]));
}

async function until(cond: () => Promise<boolean>, ms = 10_000) {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error("condition not met in time");
    await new Promise((r) => setTimeout(r, 5));
  }
}

describe("a job's attempts count failed runs, on every dialect", () => {
  it("done at its first run: 0; failed once then done: 1; out of attempts: dead at the limit; fatal at once: 1", async () => {
    const store = await setup();
    for (const subject of ["first-time", "flaky", "broken", "fatal"])
      await store.write(enqueueJob({ organizationId: "org1", kind: "user", subjectId: subject, lane: Lane.provision }));
    const runs = new Map<string, number>();
    startWorker(store, async (job) => {
      const run = (runs.get(job.subjectId) ?? 0) + 1;
      runs.set(job.subjectId, run);
      if (job.subjectId === "flaky")
        return run === 1 ? { status: "retry", reason: "Auth0 said 503" } : { status: "done" };
      if (job.subjectId === "broken") return { status: "retry", reason: "Auth0 unreachable" };
      if (job.subjectId === "fatal") return { status: "dead", reason: "invalid email" };
      return { status: "done" };
    });
    await until(async () => Object.values(await shown(store)).every((j) => j.state === "done" || j.state === "dead"));

    const jobs = await shown(store);
    expect(jobs["first-time"]).toMatchObject({ state: "done", attempts: 0 });
    expect(jobs["flaky"]).toMatchObject({ state: "done", attempts: 1 });
    expect(jobs["broken"]).toMatchObject({
      state: "dead",
      attempts: 3,
      lastError: "gave up after 3 attempts: Auth0 unreachable",
    });
    expect(jobs["fatal"]).toMatchObject({ state: "dead", attempts: 1, lastError: "invalid email" });
    expect(Object.fromEntries(runs)).toEqual({ "first-time": 1, flaky: 2, broken: 3, fatal: 1 });
  });

  it("a run handed back and claimed again by the same worker is a new run: the old run's outcome is refused", async () => {
    const store = await setup();
    await store.write(enqueueJob({ organizationId: "org1", kind: "user", subjectId: "u1", lane: Lane.provision }));
    const { queue } = workerQueueOf(store, fast);
    const claim = { owner: "w1", leaseMs: 60_000, limit: 1, nonUrgent: 1, scans: false };
    const finish = { owner: "w1", maxAttempts: 3, retryAt: () => Date.now() };
    try {
      const [first] = await queue.claim({ ...claim, now: Date.now() });
      await queue.requeue("w1", [first!], Date.now());
      const [second] = await queue.claim({ ...claim, now: Date.now() });
      expect(second).toMatchObject({ id: first!.id, attempts: 0, leaseToken: first!.leaseToken + 1 });
      expect(
        await queue.finish(first!, { status: "retry", reason: "stale" }, { ...finish, now: Date.now() }),
      ).toBeUndefined();
      expect(await queue.finish(second!, { status: "done" }, { ...finish, now: Date.now() })).toEqual({
        outcome: { status: "done" },
      });
      expect((await shown(store))["u1"]).toMatchObject({ state: "done", attempts: 0, lastError: null });
    } finally {
      await queue.close?.();
    }
  });

  it("a pending retry shows the runs that failed so far", async () => {
    const store = await setup();
    await store.write(enqueueJob({ organizationId: "org1", kind: "user", subjectId: "waiting", lane: Lane.provision }));
    let ran = 0;
    startWorker(store, async () => {
      ran++;
      // Not before an hour from now: the job waits, pending, with its one failed run.
      return { status: "retry", reason: "rate limited", retryAt: Date.now() + 3_600_000 };
    });
    // Waits for the outcome to be recorded: `ran` moves when the run starts, while the job is running.
    await until(async () => {
      const job = (await shown(store))["waiting"];
      return job?.state === "pending" && job.lastError !== null;
    });
    expect((await shown(store))["waiting"]).toMatchObject({ state: "pending", attempts: 1, lastError: "rate limited" });
    expect(ran).toBe(1);
  });
});
