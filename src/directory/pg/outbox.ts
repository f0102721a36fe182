import pg from "pg";
import type { jobs } from "../../../db/schema.pg.js";
import { claimable, claimRanges, JOBS_CHANNEL, Lane, PG_NOW_MS, SCAN_KIND } from "../outbox.js";
import { isUniqueViolation, lastResult, pgTransaction } from "../sql.js";
import { statementName } from "../store-op.js";

export { JOBS_CHANNEL };

/**
 * The job queue (outbox) on PostgreSQL, with the SQLite queue's rules (docs/design.md, "Storage
 * dialects"): one pending job per key absorbs later enqueues, the deprovision lane is claimed first,
 * one job per key runs at a time across every instance, and a lease held by a dead instance is taken
 * over. Time in the queue (run_after, lease_expires_at) is the database's clock, so instances whose
 * clocks disagree still agree on when a job is due and when a lease has run out.
 */
export type PgJobRow = typeof jobs.$inferSelect;

/** What a handler reported; the same shape as the SQLite worker's JobOutcome. */
export type PgJobOutcome =
  { status: "done" } | { status: "retry"; reason: string; retryAt?: number } | { status: "dead"; reason: string };

/**
 * A node-postgres Client, PoolClient or Pool. Only the config form is used, so that every query
 * carries its own type parsers.
 */
export interface PgClientLike {
  query<R extends pg.QueryResultRow = pg.QueryResultRow>(config: pg.QueryConfig): Promise<pg.QueryResult<R>>;
}

/** The claim of a run: a finish or hand-back counts only while the job still carries both. */
export interface Lease {
  id: number;
  /**
   * The job's lease_token as this claim set it: every claim increments it and nothing lowers it, so
   * it names one run. Not the attempts, which count failed runs and stay put when a run is handed
   * back or taken over.
   */
  leaseToken: number;
}

/**
 * node-postgres returns int8 as text; the queue's epoch-millisecond and id columns fit a double.
 * Given per query, never set globally, so that no other user of the driver is affected.
 */
const types: pg.CustomTypesConfig = {
  getTypeParser: ((oid: number, format?: "text" | "binary") =>
    oid === pg.types.builtins.INT8
      ? (v: string) => Number(v)
      : pg.types.getTypeParser(oid, format)) as pg.CustomTypesConfig["getTypeParser"],
};

/** Named as the store's statements are (statementName): the claim and finish run for every job. */
const run = <R extends pg.QueryResultRow>(q: PgClientLike, text: string, values: unknown[] = []) => {
  const name = statementName(text);
  return q.query<R>({ ...(name ? { name } : {}), text, values, types });
};

const NOW_MS = PG_NOW_MS;

/**
 * The claim's transaction, in the same round trip as its BEGIN: the claim must walk jobs_claim_idx
 * in order and stop at its LIMIT. Planned from statistics taken while the queue was short (a fresh
 * table, a drained backlog), the server instead fetched every due job, sorted them and kept the
 * first few: 11 ms a claim at a backlog of 1,500 jobs, growing with it. Without sorts and bitmap
 * scans the ordered index scan is the plan left, whatever the statistics say.
 */
const claimBegin = "BEGIN; SET LOCAL enable_sort = off; SET LOCAL enable_bitmapscan = off";

const jobColumns = `id, organization_id AS "organizationId", directory_id AS "directoryId", kind, key,
  subject_id AS "subjectId", lane, state, attempts, lease_token AS "leaseToken", run_after AS "runAfter", lease_owner AS "leaseOwner",
  lease_expires_at AS "leaseExpiresAt", last_error AS "lastError", first_enqueued_at AS "firstEnqueuedAt",
  created_at AS "createdAt", updated_at AS "updatedAt"`;

/**
 * Advisory-lock namespace of job keys (the two-int4 form: this constant and hashtext(key), apart
 * from the one-bigint locks such as the migrations'). A hash collision between two keys only makes
 * one claim skip the other's key until the next claim.
 */
export const JOB_KEY_LOCK_NAMESPACE = 0x5c1b;

/**
 * Advisory-lock namespace of worker presence: a worker's own session holds the session-level lock
 * (this, hashtext(owner)) while the worker lives. PostgreSQL releases a session's advisory locks
 * when its connection ends (PostgreSQL documentation, "Advisory Locks"), which a SIGKILLed process's
 * connection does at once (the kernel closes its socket), so a claimer that can take the lock knows
 * that owner is gone.
 */
export const WORKER_PRESENCE_LOCK_NAMESPACE = 0x5c1c;

/**
 * Lease owners that hold a presence lock. Only their jobs are taken over as soon as the lock is
 * free; any other owner (an instance of an earlier release, during a rolling upgrade, or one whose
 * presence connection failed) keeps its jobs until the lease runs out.
 */
export const PRESENCE_OWNER_PREFIX = "present:";

export interface ClaimOptions {
  /** At most this many of the claimed jobs outside the deprovision lane (default: all of them). */
  nonUrgent?: number;
  /** true: only drift scans; false: everything but drift scans; absent: any kind. */
  scans?: boolean;
}

export interface PgOutboxOptions {
  pool: pg.Pool;
  /** Attempts before a provisioning/background job goes to dead; deprovisioning retries transient errors for ever. */
  maxAttempts?: number;
  /** Delay before attempt `attempt + 1` of a job of `lane` (the worker's backoff with jitter). */
  backoffMs: (attempt: number, lane: number) => number;
  /**
   * Least time between two looks for expired leases (default 1 s; 0: every claim). Leases last tens
   * of seconds, and the look costs every claim a statement; a takeover waits at most this much more.
   */
  recoverEveryMs?: number;
}

/** What finish recorded: the outcome it became (a retry out of attempts becomes dead) and, for a retry, when it is due. */
export interface Recorded {
  outcome: PgJobOutcome;
  /** Epoch ms on the database clock; set for a retry. */
  runAfter?: number;
}

/**
 * Claiming, leases and outcomes of the PostgreSQL queue, for one pool. Every method runs its own
 * short transaction at READ COMMITTED: under REPEATABLE READ a row locked FOR UPDATE after a
 * concurrent change fails with a serialization error instead of being re-checked (PostgreSQL
 * documentation, "Transaction Isolation").
 */
export class PgOutbox {
  private readonly pool: pg.Pool;
  private readonly maxAttempts: number;
  private readonly backoffMs: (attempt: number, lane: number) => number;
  private readonly recoverEveryMs: number;
  private recoveredAt = -Infinity;

  constructor(options: PgOutboxOptions) {
    this.pool = options.pool;
    this.maxAttempts = options.maxAttempts ?? 12;
    this.backoffMs = options.backoffMs;
    this.recoverEveryMs = options.recoverEveryMs ?? 1000;
  }

  private transaction<T>(fn: (client: pg.PoolClient) => Promise<T>, begin = "BEGIN"): Promise<T> {
    return pgTransaction(this.pool, begin, fn);
  }

  /**
   * Claims up to `limit` due jobs for `owner` (deprovision lane first, then oldest first), each
   * leased for `leaseMs` on the database clock, with its lease token incremented: that token and the
   * owner fence every later write about this run. The attempts (failed runs) are finish's to count.
   *
   * First (at most every `recoverEveryMs`), running jobs whose lease ran out go back to pending
   * (their owner is presumed dead), so another instance takes them over in the same transaction.
   *
   * One job per key runs at a time across instances. Rows are picked with FOR UPDATE SKIP LOCKED
   * (claimers never wait for, nor take, each other's rows); the key of each pick is then locked
   * with a transaction-level advisory lock, and a separate statement re-checks, on a snapshot taken
   * after those locks were granted, that no job of the key is running. Every claim takes the key's
   * lock before making a job of it run and holds it until commit, so a concurrent claim of the same
   * key either waits to be visible or is skipped; a key whose lock is busy is left for the next claim.
   */
  async claim(owner: string, limit: number, leaseMs: number, options: ClaimOptions = {}): Promise<PgJobRow[]> {
    if (limit <= 0) return [];
    // The BEGIN is sent with the pick (one round trip), or on its own before the look for expired leases.
    return pgTransaction(this.pool, null, async (tx) => {
      let begin: string | undefined = claimBegin;
      // Only the rate of this look uses the instance's clock; whether a lease expired is the database's.
      if (performance.now() - this.recoveredAt >= this.recoverEveryMs) {
        this.recoveredAt = performance.now();
        await tx.query(claimBegin);
        begin = undefined;
        await this.recoverExpired(tx);
      }
      // No parameters: a named statement's cached plan is then built for these very values. With
      // `LIMIT $1` and the kind as parameters the server switched to a generic plan after five runs,
      // and that plan's cost grew with the table (9 ms a claim at a backlog of a thousand jobs).
      // The ranges of claimRanges (any kind in each lane when `scans` is not given).
      const n = Math.trunc(limit);
      const nonUrgent = Math.trunc(options.nonUrgent ?? n);
      const ranges = claimRanges(n, nonUrgent, options.scans === true).map((r) => ({
        limit: r.limit,
        filter:
          r.lane === undefined
            ? `j.kind = '${SCAN_KIND}'`
            : `j.lane = ${r.lane}${options.scans === false ? ` AND j.kind <> '${SCAN_KIND}'` : ""}`,
      }));
      if (ranges.length === 0) return [];
      const pick = `WITH ${ranges
        .map(
          (r, i) => `c${i} AS MATERIALIZED (
           SELECT j.id, j.key, j.lane, j.run_after FROM jobs j
           WHERE j.state = 'pending' AND ${r.filter} AND j.run_after <= ${NOW_MS}
             AND NOT EXISTS (SELECT 1 FROM jobs r WHERE r.key = j.key AND r.state = 'running')
           ORDER BY j.run_after, j.id
           LIMIT ${r.limit}
           FOR UPDATE OF j SKIP LOCKED)`,
        )
        .join(",\n         ")}
         SELECT id, lane, pg_try_advisory_xact_lock(${JOB_KEY_LOCK_NAMESPACE}, hashtext(key)) AS locked
         FROM (SELECT * FROM (${ranges.map((_, i) => `SELECT * FROM c${i}`).join(" UNION ALL ")}) u
               ORDER BY lane, run_after, id LIMIT ${n}) c
         ORDER BY lane, run_after, id`;
      type Pick = { id: number; lane: number; locked: boolean };
      // With the BEGIN: one simple query (no parameters to bind), planned for these very values.
      const picked =
        begin === undefined
          ? (await run<Pick>(tx, pick)).rows
          : lastResult(await tx.query<Pick>({ text: `${begin};\n${pick}`, types })).rows;
      const ids = claimable(
        picked.filter((p) => p.locked),
        n,
        nonUrgent,
      ).map((p) => p.id);
      if (ids.length === 0) return [];
      const { rows } = await run<PgJobRow>(
        tx,
        `UPDATE jobs SET state = 'running', lease_owner = $1, lease_expires_at = ${NOW_MS} + $2::bigint,
           lease_token = lease_token + 1, updated_at = ${NOW_MS}
         WHERE id = ANY($3::bigint[]) AND state = 'pending'
           AND NOT EXISTS (SELECT 1 FROM jobs r WHERE r.key = jobs.key AND r.state = 'running')
         RETURNING ${jobColumns}`,
        [owner, Math.round(leaseMs), ids],
      );
      return rows.sort((a, b) => a.lane - b.lane || a.runAfter - b.runAfter || a.id - b.id);
    });
  }

  /**
   * Extends the leases of every job `owner` runs (all, or those in `ids`) to `leaseMs` from the
   * database's now, and returns the leases it still holds: a job missing from the answer was taken
   * over, and its run should stop; its outcome would be refused anyway.
   */
  async heartbeat(owner: string, leaseMs: number, ids?: readonly number[]): Promise<Lease[]> {
    const { rows } = await run<Lease>(
      this.pool,
      `UPDATE jobs SET lease_expires_at = ${NOW_MS} + $2::bigint
       WHERE state = 'running' AND lease_owner = $1 ${ids ? "AND id = ANY($3::bigint[])" : ""}
       RETURNING id, lease_token AS "leaseToken"`,
      ids ? [owner, Math.round(leaseMs), ids] : [owner, Math.round(leaseMs)],
    );
    return rows;
  }

  /**
   * Records the outcome of `owner`'s run of a job. Fenced: it counts only while the job is running
   * under this owner and this lease token, so an instance that stalled past its lease and wakes
   * after another took the job over (or after it claimed the job again itself) changes nothing.
   * Returns undefined when refused.
   */
  async finish(owner: string, lease: Lease, outcome: PgJobOutcome): Promise<Recorded | undefined> {
    if (outcome.status === "done") {
      // One statement: done, earlier dead jobs of the key superseded (jobs are level-triggered, so
      // this success brought the subject to its desired state), and a wake-up if a job of the key
      // waited behind this one.
      const { rows } = await run<{ done: number }>(
        this.pool,
        `WITH d AS (
           UPDATE jobs SET state = 'done', lease_owner = NULL, lease_expires_at = NULL, last_error = NULL,
             updated_at = ${NOW_MS}
           WHERE id = $1 AND state = 'running' AND lease_owner = $2 AND lease_token = $3
           RETURNING id, key),
         s AS (
           UPDATE jobs SET state = 'done', updated_at = ${NOW_MS},
             last_error = 'superseded by job ' || d.id || ', which succeeded; it had failed: ' || coalesce(jobs.last_error, '')
           FROM d WHERE jobs.key = d.key AND jobs.state = 'dead' AND jobs.id < d.id),
         n AS (
           SELECT pg_notify($4, p.lane::text) FROM jobs p JOIN d ON p.key = d.key WHERE p.state = 'pending')
         SELECT (SELECT count(*) FROM d)::int AS done, (SELECT count(*) FROM n)::int AS notified`,
        [lease.id, owner, lease.leaseToken, JOBS_CHANNEL],
      );
      return rows[0]!.done === 1 ? { outcome } : undefined;
    }
    return this.transaction(async (tx) => {
      const current = await this.held(tx, owner, lease);
      if (!current) return undefined;
      // This run failed: one more failed run (as the SQLite queue counts, src/sync/worker.ts finishJob).
      const attempts = current.attempts + 1;
      const exhausted = current.lane !== Lane.deprovision && attempts >= this.maxAttempts;
      if (outcome.status === "dead" || exhausted) {
        const reason =
          outcome.status === "dead" ? outcome.reason : `gave up after ${attempts} attempts: ${outcome.reason}`;
        await run(
          tx,
          `UPDATE jobs SET state = 'dead', attempts = $3, lease_owner = NULL, lease_expires_at = NULL, last_error = $2,
             updated_at = ${NOW_MS} WHERE id = $1`,
          [current.id, reason, attempts],
        );
        return { outcome: { status: "dead", reason } };
      }
      const runAfter = await this.requeue(tx, current, {
        attempts,
        lastError: outcome.reason,
        delayMs: Math.max(0, Math.round(this.backoffMs(attempts, current.lane))),
        notBefore: outcome.retryAt ?? null,
      });
      return { outcome, runAfter };
    });
  }

  /**
   * Hands jobs back to pending without counting the attempt (a graceful stop, or a run superseded
   * by a deactivation), runnable now, merging into a pending job of the same key; wakes the other
   * instances, which may take them at once. Fenced like finish; returns the ids handed back.
   */
  async release(owner: string, leases: readonly Lease[]): Promise<number[]> {
    if (leases.length === 0) return [];
    return this.transaction(async (tx) => {
      const released: number[] = [];
      let lane: number = Lane.background;
      for (const lease of leases) {
        const current = await this.held(tx, owner, lease);
        if (!current) continue;
        await this.requeue(tx, current, {
          attempts: current.attempts,
          lastError: current.lastError,
          delayMs: 0,
          notBefore: null,
        });
        released.push(current.id);
        lane = Math.min(lane, current.lane);
      }
      if (released.length > 0) await run(tx, "SELECT pg_notify($1, $2)", [JOBS_CHANNEL, String(lane)]);
      return released;
    });
  }

  /** Deletes done jobs older than `keepMs` (history only; dead jobs stay until retried). */
  async pruneDone(keepMs = 7 * 86_400_000): Promise<number> {
    const { rowCount } = await run(this.pool, `DELETE FROM jobs WHERE state = 'done' AND updated_at < ${NOW_MS} - $1`, [
      keepMs,
    ]);
    return rowCount ?? 0;
  }

  /** The job, locked, if `owner` still holds this run of it. */
  private async held(tx: pg.PoolClient, owner: string, lease: Lease): Promise<PgJobRow | undefined> {
    const { rows } = await run<PgJobRow>(
      tx,
      `SELECT ${jobColumns} FROM jobs WHERE id = $1 AND state = 'running' AND lease_owner = $2 AND lease_token = $3
       FOR UPDATE`,
      [lease.id, owner, lease.leaseToken],
    );
    return rows[0];
  }

  /**
   * Running jobs whose lease ran out, or whose owner's presence lock is free (the owner's session
   * ended: the process died), go back to pending. The run is not counted as a failed attempt (it never
   * reported an outcome), as on SQLite; its lease token stays spent, so should it still be going, its
   * outcome is refused once the job is claimed again. Rows another claimer is recovering are skipped.
   *
   * The presence test takes each owner's lock for this transaction only; the try-lock runs on the
   * owners after DISTINCT (a volatile function is not pushed into the subquery), once each. Two
   * owners whose names hash alike make a dead one look alive: its jobs then wait for their lease.
   */
  private async recoverExpired(tx: pg.PoolClient): Promise<void> {
    const { rows: gone } = await run<{ owner: string }>(
      tx,
      `WITH o AS MATERIALIZED (
         SELECT DISTINCT lease_owner AS owner FROM jobs WHERE state = 'running' AND starts_with(lease_owner, $2))
       SELECT owner FROM o WHERE pg_try_advisory_xact_lock($1, hashtext(owner))`,
      [WORKER_PRESENCE_LOCK_NAMESPACE, PRESENCE_OWNER_PREFIX],
    );
    const { rows } = await run<PgJobRow>(
      tx,
      `SELECT ${jobColumns} FROM jobs
       WHERE state = 'running' AND (lease_expires_at < ${NOW_MS} OR lease_owner = ANY($1::text[]))
       ORDER BY id LIMIT 100 FOR UPDATE SKIP LOCKED`,
      [gone.map((g) => g.owner)],
    );
    for (const job of rows)
      await this.requeue(tx, job, { attempts: job.attempts, lastError: job.lastError, delayMs: 0, notBefore: null });
  }

  /**
   * Puts a running job back to pending, or merges it into the pending job of its key (the IdP
   * changed the subject meanwhile; one reconcile covers both). Returns when the job is due (the
   * merged job's time when merged). An enqueue committing between the two steps makes the second
   * hit the one-pending-job-per-key index: the savepoint undoes just that, and the merge is retried.
   */
  private async requeue(
    tx: pg.PoolClient,
    job: PgJobRow,
    next: { attempts: number; lastError: string | null; delayMs: number; notBefore: number | null },
  ): Promise<number> {
    for (let round = 0; ; round++) {
      const { rows: merged } = await run<{ runAfter: number }>(
        tx,
        `UPDATE jobs SET lane = least(lane, $2), first_enqueued_at = least(first_enqueued_at, $3::bigint),
           attempts = $4, last_error = $5, updated_at = ${NOW_MS}
         WHERE key = $1 AND state = 'pending' RETURNING run_after AS "runAfter"`,
        [job.key, job.lane, job.firstEnqueuedAt, next.attempts, next.lastError],
      );
      if (merged.length > 0) {
        await run(tx, "DELETE FROM jobs WHERE id = $1", [job.id]);
        return merged[0]!.runAfter;
      }
      await tx.query("SAVEPOINT requeue");
      try {
        const { rows } = await run<{ runAfter: number }>(
          tx,
          `UPDATE jobs SET state = 'pending', attempts = $2, last_error = $3, lease_owner = NULL, lease_expires_at = NULL,
             run_after = greatest(${NOW_MS} + $4::bigint, coalesce($5::bigint, 0)), updated_at = ${NOW_MS}
           WHERE id = $1 RETURNING run_after AS "runAfter"`,
          [job.id, next.attempts, next.lastError, next.delayMs, next.notBefore],
        );
        await tx.query("RELEASE SAVEPOINT requeue");
        return rows[0]!.runAfter;
      } catch (err) {
        if (!isUniqueViolation(err) || round >= 3) throw err;
        await tx.query("ROLLBACK TO SAVEPOINT requeue");
      }
    }
  }
}

export interface PgWorkerPresenceOptions {
  /** Settings of the presence lock's own connection (the pool's): it must be a session of its own, never pooled per transaction. */
  connection: pg.ClientConfig;
  /** The connection failed or dropped; claims fall back to plain leases until it is back. */
  onError?: (err: unknown) => void;
  /** Least time between two connection attempts after a failure (default 5 s). */
  retryMs?: number;
}

/**
 * A worker's presence: one dedicated connection holding the session-level advisory lock
 * (WORKER_PRESENCE_LOCK_NAMESPACE, hashtext(owner)) for as long as the process lives. Other
 * instances' claims then take this worker's jobs over the moment its session ends (see
 * PgOutbox.recoverExpired), not when their leases run out. A graceful stop hands the jobs back
 * before close().
 */
export class PgWorkerPresence {
  private client: pg.Client | undefined;
  private heldOwner: string | undefined;
  private connecting: Promise<boolean> | undefined;
  private failedAt = -Infinity;
  private closed = false;
  private readonly retryMs: number;

  constructor(private readonly options: PgWorkerPresenceOptions) {
    this.retryMs = options.retryMs ?? 5000;
  }

  /**
   * Whether this process's session holds `owner`'s presence lock; when it does not, connects and
   * takes it (one attempt at a time, none within retryMs of a failure) and answers once that settled.
   */
  async hold(owner: string): Promise<boolean> {
    if (this.closed) return false;
    if (this.client && this.heldOwner === owner) return true;
    if (!this.connecting) {
      if (performance.now() - this.failedAt < this.retryMs) return false;
      this.connecting = this.acquire(owner).finally(() => (this.connecting = undefined));
    }
    return this.connecting;
  }

  private async acquire(owner: string): Promise<boolean> {
    const previous = this.client;
    this.client = undefined;
    this.heldOwner = undefined;
    await previous?.end().catch(() => undefined);
    const client = new pg.Client({
      connectionTimeoutMillis: 10_000,
      ...this.options.connection,
      application_name: "scim-bridge worker presence",
      // A peer that vanished without closing the connection is noticed by TCP keepalives.
      keepAlive: true,
    });
    const lost = (err?: unknown) => {
      if (err !== undefined) this.options.onError?.(err);
      if (this.client === client) {
        this.client = undefined;
        this.heldOwner = undefined;
      }
    };
    client.on("error", lost);
    client.on("end", () => lost());
    try {
      await client.connect();
      const { rows } = await client.query<{ held: boolean }>({
        text: "SELECT pg_try_advisory_lock($1, hashtext($2)) AS held",
        values: [WORKER_PRESENCE_LOCK_NAMESPACE, owner],
      });
      // Held by another session: an earlier connection of ours the server has not yet seen end.
      if (!rows[0]?.held) throw new Error(`the presence lock of ${owner} is held by another session`);
    } catch (err) {
      this.options.onError?.(err);
      this.failedAt = performance.now();
      await client.end().catch(() => undefined);
      return false;
    }
    if (this.closed) {
      await client.end().catch(() => undefined);
      return false;
    }
    this.client = client;
    this.heldOwner = owner;
    return true;
  }

  /** Ends the session, and with it the lock. */
  async close(): Promise<void> {
    this.closed = true;
    await this.connecting;
    const client = this.client;
    this.client = undefined;
    this.heldOwner = undefined;
    await client?.end().catch(() => undefined);
  }
}
