/**
 * The job queue on PostgreSQL, for the worker (./worker.ts JobQueue): several instances claim at
 * once, so the claim, leases and outcomes are src/directory/pg/outbox.ts's (FOR UPDATE SKIP LOCKED,
 * one job per key through advisory locks, outcomes fenced by owner and attempt number, the
 * database's clock). Expired leases are taken back inside each claim.
 */
import type pg from "pg";
import { JobListener } from "../directory/pg/job-listener.js";
import { tryWithAdvisoryLock } from "../directory/pg/locks.js";
import { PgOutbox } from "../directory/pg/outbox.js";
import type { SqlStore } from "../directory/sql.js";
import { keysWithPendingDeprovision, type JobQueue, type WorkerOptions } from "./worker.js";

export interface PgJobQueueOptions {
  /** Attempts before a provisioning/background job goes to dead (the worker's maxAttempts). */
  maxAttempts?: number;
  /** Delay before attempt `attempt + 1` of a job of `lane` (the worker's backoff with jitter). */
  backoffMs: (attempt: number, lane: number) => number;
}

export function pgJobQueue(pool: pg.Pool, store: SqlStore, options: PgJobQueueOptions): JobQueue {
  if (store.dialect !== "postgres") throw new Error("pgJobQueue needs a PostgreSQL store");
  const outbox = new PgOutbox({
    pool,
    backoffMs: options.backoffMs,
    ...(options.maxAttempts === undefined ? {} : { maxAttempts: options.maxAttempts }),
  });
  const leaseOf = (job: { id: number; attempts: number }) => ({ id: job.id, attempts: job.attempts });
  return {
    claim: (r) => outbox.claim(r.owner, r.limit, r.leaseMs, { nonUrgent: r.nonUrgent, scans: r.scans }),
    renew: async (owner, jobs, leaseMs) => {
      await outbox.heartbeat(
        owner,
        leaseMs,
        jobs.map((j) => j.id),
      );
    },
    // The claim counted the attempt and the backoff is the outbox's; `r.retryAt` is the SQLite queue's.
    finish: async (job, outcome, r) => {
      const recorded = await outbox.finish(r.owner, leaseOf(job), outcome);
      if (!recorded) return undefined;
      return recorded.runAfter === undefined
        ? { outcome: recorded.outcome }
        : { outcome: recorded.outcome, retryAt: recorded.runAfter };
    },
    requeue: async (owner, jobs) => {
      await outbox.release(owner, jobs.map(leaseOf));
    },
    recoverExpired: () => Promise.resolve(),
    pendingDeprovision: (keys) => store.read(keysWithPendingDeprovision(keys)),
    // Every instance's worker schedules the pruning; one at a time runs it, and an instance that
    // finds it under way elsewhere skips its turn (0 pruned) rather than deleting the same rows after it.
    prune: async (before) => {
      const pruned = await tryWithAdvisoryLock(pool, "prune done jobs", () =>
        outbox.pruneDone(Math.max(0, Date.now() - before)),
      );
      return pruned.ran ? pruned.value : 0;
    },
  };
}

/**
 * The worker's wake-ups on PostgreSQL: a listener on the job channel (its own connection, with the
 * pool's settings), so a job another instance enqueued or handed back starts at once.
 */
export function pgJobWakeups(pool: pg.Pool, onError?: (err: unknown) => void): NonNullable<WorkerOptions["wakeups"]> {
  let listener: JobListener | undefined;
  return {
    start(wake) {
      listener = new JobListener({ connection: pool.options, onWake: () => wake(), ...(onError ? { onError } : {}) });
      listener.start();
    },
    async stop() {
      await listener?.stop();
      listener = undefined;
    },
  };
}
