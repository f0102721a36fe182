import { randomUUID } from "node:crypto";
import type { LaneHandle } from "../auth0/rate-limiter.js";
import type { SqlStore } from "../directory/sql.js";
import { claimable, claimRanges, Lane, onJobEnqueued, SCAN_KIND, type JobKind } from "../directory/outbox.js";
import { exec, jsonList, jsonTextList, many, one, type StoreOp } from "../directory/store-op.js";
import { jobColumns, type JobRow } from "./job-queries.js";

export type { JobRow };

/** What a handler reports. Throwing is the same as { status: "retry" } with the error's message. */
export type JobOutcome =
  | { status: "done" }
  /** Transient: try again after backoff, not before retryAt. */
  | { status: "retry"; reason: string; retryAt?: number }
  /** Retrying cannot help: the job goes to dead with this reason. */
  | { status: "dead"; reason: string };

/**
 * The SQLite job queue's statements, as store ops. Claiming, finishing and requeueing run several
 * times per job: each is one fixed SQL text (cached by the connection), and lists of job ids go in
 * as one JSON parameter (jsonTextList), so a claim of any size is one SQL text.
 *
 * These are SQLite's queue: its write transactions run one at a time, so a claim's read of the
 * candidates and its update cannot interleave with another process's. On PostgreSQL several
 * instances claim at once and the queue is src/directory/pg/outbox.ts's (FOR UPDATE SKIP LOCKED,
 * the database's clock); the statements here are written in the common SQL all the same.
 */
const jobById = (id: number): StoreOp<JobRow | undefined> =>
  one<JobRow>(`SELECT ${jobColumns} FROM jobs WHERE id = ?`, [id]);

const pendingJobOfKey = (key: string): StoreOp<JobRow | undefined> =>
  one<JobRow>(`SELECT ${jobColumns} FROM jobs WHERE key = ? AND state = 'pending'`, [key]);

/** Deletes done jobs last updated before `before`; the number deleted. */
export const pruneDoneJobs = (before: number): StoreOp<number> =>
  exec("DELETE FROM jobs WHERE state = 'done' AND updated_at < ?", [before]);

/**
 * Puts a job back to pending. If a newer pending job for the same key exists (the IdP changed the
 * user again meanwhile), the two merge: jobs are level-triggered, so one reconcile covers both.
 */
export function* requeueJob(
  job: JobRow,
  next: { runAfter: number; lastError: string | null; attempts: number },
  now: number,
): StoreOp<void> {
  const pending = yield* pendingJobOfKey(job.key);
  if (pending) {
    yield* exec(
      "UPDATE jobs SET lane = ?, first_enqueued_at = ?, attempts = ?, last_error = ?, updated_at = ? WHERE id = ?",
      [
        Math.min(pending.lane, job.lane),
        Math.min(pending.firstEnqueuedAt, job.firstEnqueuedAt),
        next.attempts,
        next.lastError,
        now,
        pending.id,
      ],
    );
    yield* exec("DELETE FROM jobs WHERE id = ?", [job.id]);
    return;
  }
  yield* exec(
    `UPDATE jobs SET state = 'pending', attempts = ?, run_after = ?, last_error = ?, lease_owner = NULL,
       lease_expires_at = NULL, updated_at = ? WHERE id = ?`,
    [next.attempts, next.runAfter, next.lastError, now, job.id],
  );
}

/** Hands `owner`'s running jobs among `ids` back to pending without counting an attempt. */
export function* releaseJobLeases(ids: readonly number[], owner: string, now: number): StoreOp<void> {
  const held = yield* many<JobRow>(
    `SELECT ${jobColumns} FROM jobs
     WHERE id IN (${yield* jsonList("bigint")}) AND state = 'running' AND lease_owner = ?`,
    [JSON.stringify(ids), owner],
  );
  for (const job of held)
    yield* requeueJob(job, { runAfter: now, lastError: job.lastError, attempts: job.attempts }, now);
}

/** Expired leases of crashed workers go back to pending, merging into a pending job of the same key. */
export function* recoverExpiredLeases(now: number): StoreOp<void> {
  const expired = yield* many<JobRow>(
    `SELECT ${jobColumns} FROM jobs WHERE state = 'running' AND lease_expires_at < ?`,
    [now],
  );
  for (const job of expired)
    yield* requeueJob(job, { runAfter: now, lastError: job.lastError, attempts: job.attempts }, now);
}

/** The keys among `keys` that have a pending deprovision-lane job (one statement: read committed, no transaction). */
export function* keysWithPendingDeprovision(keys: readonly string[]): StoreOp<Set<string>> {
  const rows = yield* many<{ key: string }>(
    `SELECT key FROM jobs WHERE state = 'pending' AND lane = ? AND key IN (${yield* jsonTextList()})`,
    [Lane.deprovision, JSON.stringify(keys)],
  );
  return new Set(rows.map((r) => r.key));
}

export interface ClaimRequest {
  owner: string;
  now: number;
  leaseMs: number;
  /** Jobs to claim at most. */
  limit: number;
  /** Of which at most this many outside the deprovision lane. */
  nonUrgent: number;
  /** Drift scans only, or everything but them. */
  scans: boolean;
}

/** Leases due jobs to `owner`: deprovision lane first, one job per key running at a time. */
export function* claimJobs(r: ClaimRequest): StoreOp<JobRow[]> {
  // The kind is written into the SQL so that SQLite can use the partial indexes (see claimRanges).
  const found: { id: number; lane: number }[] = [];
  for (const range of claimRanges(r.limit, r.nonUrgent, r.scans))
    found.push(
      ...(yield* many<{ id: number; lane: number }>(
        `SELECT j.id, j.lane FROM jobs j
           WHERE j.state = 'pending'
             AND ${range.lane === undefined ? `j.kind = '${SCAN_KIND}'` : `j.kind <> '${SCAN_KIND}' AND j.lane = ?`}
             AND j.run_after <= ?
             AND NOT EXISTS (SELECT 1 FROM jobs r WHERE r.key = j.key AND r.state = 'running')
           ORDER BY j.run_after, j.id
           LIMIT ?`,
        range.lane === undefined ? [r.now, range.limit] : [range.lane, r.now, range.limit],
      )),
    );
  const candidates = claimable(found, r.limit, r.nonUrgent).map((c) => c.id);
  if (candidates.length === 0) return [];
  const claimed = yield* many<JobRow>(
    `UPDATE jobs SET state = 'running', lease_owner = ?, lease_expires_at = ?, lease_token = lease_token + 1, updated_at = ?
     WHERE id IN (${yield* jsonList("bigint")}) RETURNING ${jobColumns}`,
    [r.owner, r.now + r.leaseMs, r.now, JSON.stringify(candidates)],
  );
  return claimed.sort((a, b) => a.lane - b.lane || a.runAfter - b.runAfter || a.id - b.id);
}

/** Extends `owner`'s leases of `ids` until `until`. */
export const renewJobLeases = (ids: readonly number[], owner: string, until: number): StoreOp<number> =>
  (function* () {
    return yield* exec(
      `UPDATE jobs SET lease_expires_at = ? WHERE id IN (${yield* jsonList("bigint")}) AND lease_owner = ?`,
      [until, JSON.stringify(ids), owner],
    );
  })();

export interface FinishRequest {
  owner: string;
  now: number;
  maxAttempts: number;
  /** When to retry a transient failure (backoff). */
  retryAt: (attempts: number, lane: number) => number;
}

/**
 * Records a job's outcome. Gives what it became (a retry past the limit becomes dead) and, for a
 * retry, when it runs again; undefined if another worker took the job over after our lease expired
 * (its outcome wins).
 */
export function* finishJob(
  job: JobRow,
  outcome: JobOutcome,
  r: FinishRequest,
): StoreOp<{ outcome: JobOutcome; retryAt?: number } | undefined> {
  const t = r.now;
  const current = yield* jobById(job.id);
  // Fenced on the run (its lease token), not only the owner: this worker may have claimed the job
  // again after handing it back, and the earlier run's outcome must not end the later one.
  if (
    !current ||
    current.state !== "running" ||
    current.leaseOwner !== r.owner ||
    current.leaseToken !== job.leaseToken
  )
    return undefined;
  if (outcome.status === "done") {
    yield* exec(
      "UPDATE jobs SET state = 'done', lease_owner = NULL, lease_expires_at = NULL, last_error = NULL, updated_at = ? WHERE id = ?",
      [t, job.id],
    );
    // Jobs are level-triggered: this success brought the subject to its desired state, so an
    // earlier dead job of the same key is superseded and no longer counts as failing.
    // The id bound as text: a JS number is bound as a REAL on SQLite, which would concatenate as "6.0".
    yield* exec(
      `UPDATE jobs SET state = 'done', updated_at = ?,
         last_error = 'superseded by job ' || CAST(? AS text) || ', which succeeded; it had failed: ' || coalesce(last_error, '')
       WHERE key = ? AND state = 'dead' AND id < ?`,
      [t, String(job.id), job.key, job.id],
    );
    return { outcome };
  }
  // attempts counts failed runs (this one included); the PostgreSQL queue counts the same way.
  const attempts = current.attempts + 1;
  const exhausted = current.lane !== Lane.deprovision && attempts >= r.maxAttempts;
  if (outcome.status === "dead" || exhausted) {
    const reason = outcome.status === "dead" ? outcome.reason : `gave up after ${attempts} attempts: ${outcome.reason}`;
    yield* exec(
      "UPDATE jobs SET state = 'dead', attempts = ?, lease_owner = NULL, lease_expires_at = NULL, last_error = ?, updated_at = ? WHERE id = ?",
      [attempts, reason, t, job.id],
    );
    return { outcome: { status: "dead", reason } };
  }
  const runAfter = Math.max(r.retryAt(attempts, current.lane), outcome.retryAt ?? 0);
  yield* requeueJob(current, { runAfter, lastError: outcome.reason, attempts }, t);
  return { outcome, retryAt: runAfter };
}

/**
 * What the worker needs of a job queue: claim, renew leases, record an outcome, hand jobs back.
 * Each call is one unit of work of its own, never held across a handler's Auth0 calls. The SQLite
 * queue (sqliteJobQueue) runs the ops above; a PostgreSQL queue (claims FOR UPDATE SKIP LOCKED,
 * fenced outcomes) implements the same calls.
 */
export interface JobQueue {
  /** Leases due jobs to `r.owner`: deprovision lane first, one job per key running at a time. */
  claim(r: ClaimRequest): Promise<JobRow[]>;
  /** Extends `owner`'s leases of `jobs` to `leaseMs` from now. */
  renew(owner: string, jobs: readonly JobRow[], leaseMs: number, now: number): Promise<void>;
  /** Records an outcome (see finishJob); undefined if another worker took the job over. */
  finish(
    job: JobRow,
    outcome: JobOutcome,
    r: FinishRequest,
  ): Promise<{ outcome: JobOutcome; retryAt?: number } | undefined>;
  /** Hands `owner`'s jobs back to pending without counting an attempt. */
  requeue(owner: string, jobs: readonly JobRow[], now: number): Promise<void>;
  /** Expired leases of crashed workers go back to pending (a queue whose claim does this itself may do nothing). */
  recoverExpired(now: number): Promise<void>;
  /** The keys among `keys` that have a pending deprovision-lane job (one statement: read committed, no transaction). */
  pendingDeprovision(keys: readonly string[]): Promise<Set<string>>;
  /** Deletes done jobs last updated before `before`; the number deleted. */
  prune(before: number): Promise<number>;
  /** Frees what the queue holds for this worker (a connection), after stop() handed the jobs back. */
  close?(): Promise<void>;
}

/**
 * The SQLite job queue on `store`'s connection. SQLite only: its claim relies on write
 * transactions running one at a time (see claimJobs).
 */
export function sqliteJobQueue(store: SqlStore): JobQueue {
  if (store.dialect !== "sqlite") throw new Error("sqliteJobQueue needs a SQLite store");
  return {
    claim: (r) => store.write(claimJobs(r)),
    renew: async (owner, jobs, leaseMs, now) => {
      await store.write(
        renewJobLeases(
          jobs.map((j) => j.id),
          owner,
          now + leaseMs,
        ),
      );
    },
    finish: (job, outcome, r) => store.write(finishJob(job, outcome, r)),
    requeue: (owner, jobs, now) =>
      store.write(
        releaseJobLeases(
          jobs.map((j) => j.id),
          owner,
          now,
        ),
      ),
    recoverExpired: (now) => store.write(recoverExpiredLeases(now)),
    pendingDeprovision: (keys) => store.readCommitted(keysWithPendingDeprovision(keys)),
    prune: (before) => store.write(pruneDoneJobs(before)),
  };
}

/**
 * How often running jobs are checked for a deactivation of the same subject waiting behind them:
 * often enough to add little to a deactivation's latency, rarely enough that a push (hundreds of
 * job completions a second, each a tick) does not pay a query each.
 */
const SUPERSEDED_CHECK_MS = 20;

/**
 * `lane` is the job's lane as its Auth0 calls should use it: the worker raises it to deprovision
 * when a deactivation of the same subject arrives while the job runs (see Worker.liftSuperseded).
 */
export type JobHandler = (job: JobRow, signal: AbortSignal, lane?: LaneHandle) => Promise<JobOutcome>;

export interface WorkerEvents {
  onOutcome?(job: JobRow, outcome: JobOutcome, durationMs: number): void;
  /** A poll or bookkeeping write failed (e.g. the database is busy); the worker carries on. */
  onError?(err: unknown): void;
}

export interface WorkerOptions {
  /** The job queue: sqliteJobQueue(store) on SQLite. */
  queue: JobQueue;
  /**
   * Wake-ups for jobs other processes enqueued (PostgreSQL LISTEN/NOTIFY), started and stopped with
   * the worker; without them such jobs start at the next poll.
   */
  wakeups?: { start(wake: () => void): void; stop(): Promise<void> };
  handlers: Partial<Record<JobKind, JobHandler>>;
  /** Jobs in flight at once (Auth0 calls of different users overlap; one job per key at a time). */
  concurrency?: number;
  /**
   * Slots on top of `concurrency` that only deprovision-lane jobs may take (default: an eighth of
   * `concurrency`, at least 1). Provisioning and background jobs start only while fewer than
   * `concurrency` jobs run, so with every ordinary slot busy on a backlog (each job waiting its turn
   * for the rate limit), a deactivation still starts at once rather than after one of them finishes.
   */
  deprovisionSlots?: number;
  /**
   * Drift scans in flight at once, on top of `concurrency`. A scan is one long job that paces its
   * own reads on the background lane; in the shared pool it would wait for a whole push to be
   * claimed first and then run after it, leaving the buckets it reads from idle during the push.
   */
  scanConcurrency?: number;
  /** A crashed worker's jobs are taken over after this (a killed worker's job resumes within a minute of a restart). */
  leaseMs?: number;
  /**
   * How often the worker looks for jobs on its own (default 1 s): for jobs other processes enqueued
   * (a CLI) and leases of crashed workers. Jobs enqueued in this process wake it at once
   * (onJobEnqueued), and its own retries at their time.
   */
  pollMs?: number;
  /** Attempts before a provisioning/background job goes to dead; deprovisioning retries transient errors for ever. */
  maxAttempts?: number;
  /** Retry backoff (default defaultBackoff); tests of long outages scale it down with the outage. */
  backoff?: BackoffPolicy;
  events?: WorkerEvents;
  /**
   * Moves a running job's waiting Auth0 calls to the deprovision lane (the rate limiter's lift).
   * Without it a superseded job is still stopped after its current call, but that call keeps its place.
   */
  lift?: (lane: LaneHandle) => void;
  now?: () => number;
  random?: () => number;
}

/**
 * Backoff with full jitter (AWS Architecture Blog "Exponential Backoff And Jitter"): base 1 s, capped at 60 s for
 * deprovisioning and 15 min otherwise.
 */
export interface BackoffPolicy {
  baseMs: number;
  deprovisionCapMs: number;
  otherCapMs: number;
}

export const defaultBackoff: BackoffPolicy = { baseMs: 1000, deprovisionCapMs: 60_000, otherCapMs: 15 * 60_000 };

export function backoffMs(
  attempt: number,
  lane: number,
  random: () => number = Math.random,
  policy: BackoffPolicy = defaultBackoff,
): number {
  const cap = lane === Lane.deprovision ? policy.deprovisionCapMs : policy.otherCapMs;
  const ceiling = Math.min(cap, policy.baseMs * 2 ** Math.min(attempt, 20));
  return Math.floor(random() * ceiling);
}

/**
 * Claims jobs by lane (deprovision, provision, background), runs them through per-kind handlers and
 * records the outcome. Leases expire, so a killed worker's jobs are picked up again by the next one.
 */
export class Worker {
  readonly owner = `worker-${randomUUID()}`;
  private readonly inFlight = new Map<
    number,
    { job: JobRow; controller: AbortController; lane: LaneHandle; done: Promise<void> }
  >();
  private readonly concurrency: number;
  private readonly deprovisionSlots: number;
  private readonly scanConcurrency: number;
  private readonly leaseMs: number;
  private readonly pollMs: number;
  private readonly maxAttempts: number;
  private readonly now: () => number;
  private readonly random: () => number;
  private pollTimer: NodeJS.Timeout | undefined;
  private heartbeatTimer: NodeJS.Timeout | undefined;
  private pruneTimer: NodeJS.Timeout | undefined;
  private unsubscribe: (() => void) | undefined;
  /** A wake-up for the earliest retry this worker scheduled, and when it fires. */
  private retryTimer: NodeJS.Timeout | undefined;
  private retryTimerAt = Infinity;
  private running = false;
  private ticking = false;
  private tickAgain = false;
  private leasesCheckedAt = -Infinity;
  private supersededCheckedAt = -Infinity;
  /** Time of the last completed poll; /readyz reports the worker dead when this goes stale. */
  lastTickAt = 0;

  constructor(private readonly options: WorkerOptions) {
    this.concurrency = options.concurrency ?? 16;
    this.deprovisionSlots = options.deprovisionSlots ?? Math.max(1, Math.ceil(this.concurrency / 8));
    this.scanConcurrency = options.scanConcurrency ?? 2;
    this.leaseMs = options.leaseMs ?? 30_000;
    this.pollMs = options.pollMs ?? 1000;
    this.maxAttempts = options.maxAttempts ?? 12;
    this.now = options.now ?? Date.now;
    this.random = options.random ?? Math.random;
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    this.unsubscribe = onJobEnqueued(() => this.notify());
    this.options.wakeups?.start(() => this.notify());
    this.pollTimer = setInterval(() => this.notify(), this.pollMs);
    this.heartbeatTimer = setInterval(() => void this.renewLeases(), Math.max(1000, this.leaseMs / 3));
    this.pruneTimer = setInterval(() => void this.pruneDone(), 10 * 60_000);
    this.pruneTimer.unref();
    this.notify();
  }

  /** Wakes the worker now (called after a SCIM write enqueued a job). */
  notify(): void {
    if (!this.running) return;
    if (this.ticking) {
      this.tickAgain = true;
      return;
    }
    this.ticking = true;
    void this.tickLoop();
  }

  private async tickLoop(): Promise<void> {
    try {
      do {
        this.tickAgain = false;
        await this.tick();
      } while (this.tickAgain && this.running);
    } catch (err) {
      // A busy or unavailable database must not kill the process: the next poll tries again.
      this.options.events?.onError?.(err);
    } finally {
      this.ticking = false;
    }
  }

  get activeJobs(): number {
    return this.inFlight.size;
  }

  /**
   * Graceful stop: claims nothing more, lets the jobs in flight finish their current Auth0 call
   * (handlers see the abort signal between calls), then releases the leases of unfinished jobs so
   * that the next start takes them at once instead of waiting for expiry.
   */
  async stop(timeoutMs = 10_000): Promise<void> {
    this.running = false;
    this.unsubscribe?.();
    this.unsubscribe = undefined;
    clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    this.retryTimerAt = Infinity;
    clearInterval(this.pollTimer);
    clearInterval(this.heartbeatTimer);
    clearInterval(this.pruneTimer);
    await this.options.wakeups?.stop();
    for (const f of this.inFlight.values()) f.controller.abort();
    const all = Promise.all([...this.inFlight.values()].map((f) => f.done));
    await Promise.race([all, new Promise((r) => setTimeout(r, timeoutMs).unref())]);
    // Jobs still stuck in a call after the timeout: release them too; their late outcome is ignored.
    try {
      await this.releaseLeases([...this.inFlight.values()].map((f) => f.job));
    } finally {
      await this.options.queue.close?.();
    }
  }

  /**
   * Done jobs are history only (the audit log is the record of changes): keep a week of them for
   * `scim-bridge jobs` and metrics, so the table does not grow without end. Dead jobs stay until retried.
   */
  async pruneDone(keepMs = 7 * 86_400_000): Promise<number> {
    try {
      return await this.options.queue.prune(this.now() - keepMs);
    } catch (err) {
      this.options.events?.onError?.(err);
      return 0;
    }
  }

  /** Hands jobs back to pending without counting an attempt (merging with a newer pending job of the same key). */
  private async releaseLeases(jobs: JobRow[]): Promise<void> {
    if (jobs.length === 0) return;
    await this.options.queue.requeue(this.owner, jobs, this.now());
  }

  private async tick(): Promise<void> {
    const t = this.now();
    this.lastTickAt = t;
    // Leases last tens of seconds: looking for expired ones once per poll is plenty, and doing it on
    // every job completion (hundreds a second during a push) costs a transaction each.
    if (t - this.leasesCheckedAt >= this.pollMs) {
      this.leasesCheckedAt = t;
      await this.options.queue.recoverExpired(t);
    }
    if (t - this.supersededCheckedAt >= SUPERSEDED_CHECK_MS) {
      this.supersededCheckedAt = t;
      await this.liftSuperseded();
    }
    const scans = [...this.inFlight.values()].filter((f) => f.job.kind === SCAN_KIND).length;
    // Deprovisioning may take any free slot, its reserved ones included; the other lanes only the
    // ordinary ones, so that the reserved slots stay free for the next deactivation.
    const running = this.inFlight.size - scans;
    const free = this.concurrency + this.deprovisionSlots - running;
    if (free > 0) await this.claimAndRun(free, t, false, this.concurrency - running);
    const freeScans = this.scanConcurrency - scans;
    if (freeScans > 0) await this.claimAndRun(freeScans, t, true, freeScans);
  }

  /** Claims up to `limit` jobs, of which at most `nonUrgent` outside the deprovision lane, and runs them. */
  private async claimAndRun(limit: number, t: number, scans: boolean, nonUrgent: number): Promise<void> {
    const claimed = await this.options.queue.claim({
      owner: this.owner,
      now: t,
      leaseMs: this.leaseMs,
      limit,
      nonUrgent,
      scans,
    });
    // Stopped while the claim was under way (only possible where a unit of work is asynchronous):
    // the jobs go back at once rather than waiting for their leases to expire.
    if (!this.running) return this.releaseLeases(claimed);
    for (const job of claimed) this.run(job);
  }

  /**
   * A deactivation enqueued while a provisioning or background job of the same user runs cannot
   * start (one job per key at a time), and that job may be waiting behind a whole provisioning
   * backlog for its next call. Lift that job's calls to the deprovision lane, so its current call
   * goes out now, and stop it after that call: its lease is handed back and merges into the pending
   * deprovision job, which then runs at once and plans from the directory's current state.
   */
  private async liftSuperseded(): Promise<void> {
    const lower = [...this.inFlight.values()].filter(
      (f) => f.lane.lane !== Lane.deprovision && f.job.kind !== SCAN_KIND,
    );
    if (lower.length === 0) return;
    let keys: Set<string>;
    try {
      keys = await this.options.queue.pendingDeprovision(lower.map((f) => f.job.key));
    } catch (err) {
      this.options.events?.onError?.(err);
      return;
    }
    for (const f of lower) {
      if (!keys.has(f.job.key)) continue;
      if (this.options.lift) this.options.lift(f.lane);
      else f.lane.lane = Lane.deprovision;
      f.controller.abort(new Error("superseded by a deactivation"));
    }
  }

  /** Wakes the worker when a retry it scheduled falls due, rather than at the next poll. */
  private wakeAt(at: number): void {
    if (!this.running || at >= this.retryTimerAt) return;
    clearTimeout(this.retryTimer);
    this.retryTimerAt = at;
    this.retryTimer = setTimeout(
      () => {
        this.retryTimer = undefined;
        this.retryTimerAt = Infinity;
        // Timers may fire a millisecond before the wall clock reaches `at`; the claim would then
        // find nothing due and the retry would wait for the next poll.
        if (this.now() < at) this.wakeAt(at);
        else this.notify();
      },
      Math.max(0, at - this.now()),
    );
    this.retryTimer.unref();
  }

  private async renewLeases(): Promise<void> {
    if (this.inFlight.size === 0) return;
    try {
      await this.options.queue.renew(
        this.owner,
        [...this.inFlight.values()].map((f) => f.job),
        this.leaseMs,
        this.now(),
      );
    } catch (err) {
      this.options.events?.onError?.(err);
    }
  }

  private run(job: JobRow): void {
    const controller = new AbortController();
    const lane: LaneHandle = { lane: job.lane };
    const started = this.now();
    const handler = this.options.handlers[job.kind as JobKind];
    const done = (async () => {
      let outcome: JobOutcome;
      try {
        outcome = handler
          ? await handler(job, controller.signal, lane)
          : { status: "dead", reason: `no handler for job kind "${job.kind}"` };
      } catch (err) {
        outcome = { status: "retry", reason: err instanceof Error ? err.message : String(err) };
      }
      // Interrupted by stop(), or superseded by a deactivation (liftSuperseded): hand the job back
      // untouched (no attempt counted); it merges into a pending job of the same key.
      if (controller.signal.aborted && outcome.status !== "done") {
        try {
          await this.releaseLeases([job]);
        } catch (err) {
          // The lease expires and the job runs again, harmlessly.
          this.options.events?.onError?.(err);
        }
        return;
      }
      let final: JobOutcome | undefined;
      try {
        final = await this.finish(job, outcome);
      } catch (err) {
        // Recording failed (database busy): the lease expires and the job runs again, harmlessly.
        this.options.events?.onError?.(err);
      }
      if (final) this.options.events?.onOutcome?.(job, final, this.now() - started);
    })().finally(() => {
      this.inFlight.delete(job.id);
      if (this.running) setImmediate(() => this.notify());
    });
    this.inFlight.set(job.id, { job, controller, lane, done });
  }

  /** Records the outcome; returns what it became (a retry past the limit becomes dead), or undefined if the job was taken over. */
  private async finish(job: JobRow, outcome: JobOutcome): Promise<JobOutcome | undefined> {
    const t = this.now();
    const recorded = await this.options.queue.finish(job, outcome, {
      owner: this.owner,
      now: t,
      maxAttempts: this.maxAttempts,
      retryAt: (attempts, lane) => t + backoffMs(attempts, lane, this.random, this.options.backoff),
    });
    if (recorded?.retryAt !== undefined) this.wakeAt(recorded.retryAt);
    return recorded?.outcome;
  }
}
