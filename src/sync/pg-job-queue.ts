/**
 * The job queue on PostgreSQL, for the worker (./worker.ts JobQueue): several instances claim at
 * once, so the claim, leases and outcomes are src/directory/pg/outbox.ts's (FOR UPDATE SKIP LOCKED,
 * one job per key through advisory locks, outcomes fenced by owner and lease token, the
 * database's clock). Expired leases are taken back inside each claim.
 *
 * The worker's presence (PgWorkerPresence, one more connection) lets the other instances take a
 * dead instance's jobs at their next claim rather than when its leases run out: a deactivation the
 * instance was running when it was killed is not held up for JOB_LEASE_SECONDS. Jobs claimed while
 * the presence connection is down carry the plain owner and keep the lease rules; every later call
 * about a job uses the owner its claim wrote.
 */
import type pg from "pg";
import { JobListener } from "../directory/pg/job-listener.js";
import { tryWithAdvisoryLock } from "../directory/pg/locks.js";
import { PgOutbox, PgWorkerPresence, PRESENCE_OWNER_PREFIX } from "../directory/pg/outbox.js";
import type { SqlStore } from "../directory/sql.js";
import { keysWithPendingDeprovision, type JobQueue, type JobRow, type WorkerOptions } from "./worker.js";

export interface PgJobQueueOptions {
  /** Attempts before a provisioning/background job goes to dead (the worker's maxAttempts). */
  maxAttempts?: number;
  /** Delay before attempt `attempt + 1` of a job of `lane` (the worker's backoff with jitter). */
  backoffMs: (attempt: number, lane: number) => number;
  /** The worker-presence connection failed (claims then use plain leases until it is back). */
  onError?: (err: unknown) => void;
}

export function pgJobQueue(pool: pg.Pool, store: SqlStore, options: PgJobQueueOptions): JobQueue {
  if (store.dialect !== "postgres") throw new Error("pgJobQueue needs a PostgreSQL store");
  const outbox = new PgOutbox({
    pool,
    backoffMs: options.backoffMs,
    ...(options.maxAttempts === undefined ? {} : { maxAttempts: options.maxAttempts }),
  });
  const presence = new PgWorkerPresence({
    connection: pool.options,
    ...(options.onError ? { onError: options.onError } : {}),
  });
  const leaseOf = (job: { id: number; leaseToken: number }) => ({ id: job.id, leaseToken: job.leaseToken });
  const ownerOf = (job: JobRow, owner: string) => job.leaseOwner ?? owner;
  /** `jobs` by the owner their claim wrote (the worker's, with or without the presence prefix). */
  const byOwner = (owner: string, jobs: readonly JobRow[]): Map<string, JobRow[]> => {
    const groups = new Map<string, JobRow[]>();
    for (const job of jobs) groups.set(ownerOf(job, owner), [...(groups.get(ownerOf(job, owner)) ?? []), job]);
    return groups;
  };
  return {
    claim: async (r) => {
      const present = `${PRESENCE_OWNER_PREFIX}${r.owner}`;
      const owner = (await presence.hold(present)) ? present : r.owner;
      return outbox.claim(owner, r.limit, r.leaseMs, { nonUrgent: r.nonUrgent, scans: r.scans });
    },
    renew: async (owner, jobs, leaseMs) => {
      for (const [leaseOwner, held] of byOwner(owner, jobs))
        await outbox.heartbeat(
          leaseOwner,
          leaseMs,
          held.map((j) => j.id),
        );
    },
    // The attempt limit and the backoff are the outbox's; `r.maxAttempts` and `r.retryAt` are the SQLite queue's.
    finish: async (job, outcome, r) => {
      const recorded = await outbox.finish(ownerOf(job, r.owner), leaseOf(job), outcome);
      if (!recorded) return undefined;
      return recorded.runAfter === undefined
        ? { outcome: recorded.outcome }
        : { outcome: recorded.outcome, retryAt: recorded.runAfter };
    },
    requeue: async (owner, jobs) => {
      for (const [leaseOwner, held] of byOwner(owner, jobs)) await outbox.release(leaseOwner, held.map(leaseOf));
    },
    recoverExpired: () => Promise.resolve(),
    pendingDeprovision: (keys) => store.readCommitted(keysWithPendingDeprovision(keys)),
    // Every instance's worker schedules the pruning; one at a time runs it, and an instance that
    // finds it under way elsewhere skips its turn (0 pruned) rather than deleting the same rows after it.
    prune: async (before) => {
      const pruned = await tryWithAdvisoryLock(pool, "prune done jobs", () =>
        outbox.pruneDone(Math.max(0, Date.now() - before)),
      );
      return pruned.ran ? pruned.value : 0;
    },
    close: () => presence.close(),
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
