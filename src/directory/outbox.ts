import { dialect, jsonTextList, later, type StoreOp } from "./store-op.js";

/** Lanes in priority order: deprovisioning always runs first (docs/design.md, invariant 3). */
export const Lane = { deprovision: 0, provision: 1, background: 2 } as const;
export type Lane = (typeof Lane)[keyof typeof Lane];

/** Lane names as the admin API, the CLI and metrics show them, indexed by lane. */
export const laneNames = ["deprovision", "provision", "background"] as const;
export const laneName = (lane: number): string => laneNames[lane] ?? String(lane);

export type JobKind = "user" | "group" | "organization" | "drift";

/**
 * Jobs that scan a whole organization: they are claimed apart from the per-user jobs (the worker's
 * scanConcurrency), each claim on its own partial index, whose predicate names this kind.
 */
export const SCAN_KIND = "drift" satisfies JobKind;

/** One range of due jobs a claim reads: drift scans, or one lane's other jobs; at most `limit`. */
export interface ClaimRange {
  /** Undefined: the drift scans (any lane). */
  lane?: Lane;
  limit: number;
}

/**
 * What a claim of up to `limit` jobs reads, of which at most `nonUrgent` outside the deprovision
 * lane: the drift scans alone (`scans`), or each lane in order (deprovision first). Each range is
 * read in order of due time on a partial index (jobs_work_claim_idx, jobs_drift_claim_idx), so a
 * claim reads the due jobs it may take and never walks the jobs not yet due, nor the other claim's.
 * Both queues read these ranges and take what `claimable` keeps.
 */
export function claimRanges(limit: number, nonUrgent: number, scans: boolean): ClaimRange[] {
  if (scans) return limit > 0 ? [{ limit }] : [];
  return [Lane.deprovision, Lane.provision, Lane.background]
    .map((lane) => ({ lane, limit: lane === Lane.deprovision ? limit : Math.min(limit, nonUrgent) }))
    .filter((r) => r.limit > 0);
}

/** Of candidates in claim order, those a claim takes: deprovision-lane jobs, then the others while ordinary slots are free. */
export function claimable<T extends { lane: number }>(candidates: readonly T[], limit: number, nonUrgent: number): T[] {
  let ordinary = nonUrgent;
  return candidates.filter((c) => c.lane === Lane.deprovision || ordinary-- > 0).slice(0, limit);
}

export interface EnqueueJob {
  organizationId: string;
  directoryId?: string | null;
  kind: JobKind;
  subjectId: string;
  lane: Lane;
  /** Epoch ms; defaults to now. */
  now?: number;
}

export const jobKey = (kind: JobKind, subjectId: string): string => `${kind}:${subjectId}`;

/** jobKey of a user job as SQL, for the user id the SQL expression `userId` gives. */
export const userJobKeyOf = (userId: string): string => `'${jobKey("user", "")}' || ${userId}`;

const enqueueListeners = new Set<() => void>();

/**
 * Calls `listener` after a job is enqueued anywhere in this process, so that a worker starts it at
 * once instead of at its next poll (which remains for jobs other processes enqueue). It runs on the
 * next turn of the event loop: the enqueue happens inside a synchronous transaction, which has
 * committed (or rolled back, making it a harmless spurious wake) by then. Returns an unsubscribe.
 */
export function onJobEnqueued(listener: () => void): () => void {
  enqueueListeners.add(listener);
  return () => enqueueListeners.delete(listener);
}

/**
 * Least time between two wakes. Each wake costs the worker a claim transaction, and a client
 * writing in sequence would otherwise pay one per write; enqueues within the spacing are claimed
 * together by one trailing wake. A lone enqueue (a deactivation) still wakes it at the next turn.
 */
const WAKE_SPACING_MS = 5;
let wakeScheduled = false;
let lastWake = -Infinity;
function signalEnqueued(): void {
  if (wakeScheduled || enqueueListeners.size === 0) return;
  wakeScheduled = true;
  const fire = (): void => {
    wakeScheduled = false;
    lastWake = performance.now();
    for (const listener of enqueueListeners) listener();
  };
  // After the enqueuing transaction's turn either way, so the worker sees the committed job.
  const wait = lastWake + WAKE_SPACING_MS - performance.now();
  if (wait <= 0) setImmediate(fire);
  else setTimeout(fire, wait).unref();
}

/** Epoch milliseconds on PostgreSQL's clock (the transaction's start). */
export const PG_NOW_MS = "CAST(extract(epoch from now()) * 1000 AS bigint)";

/** NOTIFY channel on PostgreSQL: enqueues (and jobs handed back) wake every listening instance when they commit. */
export const JOBS_CHANNEL = "scim_bridge_jobs";

// The merge rules of both enqueue statements (the partial unique index jobs_pending_key_uq
// arbitrates concurrent enqueues). SQLite's two-argument min() is PostgreSQL's least().
const sqliteMerge = `ON CONFLICT (key) WHERE state = 'pending' DO UPDATE SET lane = min(jobs.lane, excluded.lane), attempts = 0,
  run_after = min(jobs.run_after, excluded.run_after), updated_at = excluded.updated_at`;
const pgMerge = `ON CONFLICT (key) WHERE state = 'pending' DO UPDATE SET lane = least(jobs.lane, excluded.lane), attempts = 0,
  run_after = least(jobs.run_after, excluded.run_after), updated_at = excluded.updated_at`;
const jobInsert = `INSERT INTO jobs (organization_id, directory_id, kind, key, subject_id, lane, state, attempts, run_after,
  first_enqueued_at, created_at, updated_at)`;

/**
 * Enqueues a level-triggered reconcile job inside the caller's transaction. A pending job for the
 * same key absorbs it (docs/design.md, invariant 4): it keeps the most urgent lane, the earliest
 * run time and the earliest acknowledgement time, so merging never delays a deprovision.
 *
 * On PostgreSQL the job is runnable from the database's now (instances whose clocks disagree still
 * agree on when it is due; `now` stamps only the acknowledgement), and a NOTIFY in the same
 * transaction wakes every instance's worker when it commits, never for a rollback.
 */
export function* enqueueJob(job: EnqueueJob): StoreOp<void> {
  const subject = [
    job.organizationId,
    job.directoryId ?? null,
    job.kind,
    jobKey(job.kind, job.subjectId),
    job.subjectId,
    job.lane,
  ];
  if ((yield* dialect()) === "postgres") {
    const at = `coalesce(CAST(? AS bigint), ${PG_NOW_MS})`;
    yield* later(
      `WITH j AS (${jobInsert} VALUES (?, ?, ?, ?, ?, ?, 'pending', 0, ${PG_NOW_MS}, ${at}, ${at}, ${at}) ${pgMerge}
         RETURNING lane)
       SELECT pg_notify(?, CAST(lane AS text)) FROM j`,
      [...subject, ...Array(3).fill(job.now ?? null), JOBS_CHANNEL],
    );
  } else {
    const now = job.now ?? Date.now();
    yield* later(`${jobInsert} VALUES (?, ?, ?, ?, ?, ?, 'pending', 0, ?, ?, ?, ?) ${sqliteMerge}`, [
      ...subject,
      now,
      now,
      now,
      now,
    ]);
  }
  signalEnqueued();
}

/**
 * enqueueJob for many subjects of one kind, organization and lane at once: one statement over a
 * JSON list instead of a statement per subject, so a group replace that changes 10,000 memberships
 * enqueues them in milliseconds. Same merge rules as enqueueJob.
 */
export function* enqueueJobs(job: Omit<EnqueueJob, "subjectId">, subjectIds: Iterable<string>): StoreOp<void> {
  // One row per subject: a repeated subject would make ON CONFLICT touch one row twice, an error on PostgreSQL.
  const subjects = [...new Set(subjectIds)];
  if (subjects.length === 0) return;
  const list = JSON.stringify(subjects);
  if ((yield* dialect()) === "postgres") {
    const at = `coalesce(CAST(? AS bigint), ${PG_NOW_MS})`;
    yield* later(
      `WITH j AS (${jobInsert}
         SELECT ?, ?, ?, CAST(? AS text) || ':' || s.value, s.value, ?, 'pending', 0, ${PG_NOW_MS}, ${at}, ${at}, ${at}
         FROM (${yield* jsonTextList()}) AS s ${pgMerge}
         RETURNING lane)
       SELECT pg_notify(?, CAST(min(lane) AS text)) FROM j HAVING count(*) > 0`,
      [
        job.organizationId,
        job.directoryId ?? null,
        job.kind,
        job.kind,
        job.lane,
        ...Array(3).fill(job.now ?? null),
        list,
        JOBS_CHANNEL,
      ],
    );
  } else {
    const now = job.now ?? Date.now();
    yield* later(
      `${jobInsert}
       SELECT ?, ?, ?, CAST(? AS text) || ':' || s.value, s.value, ?, 'pending', 0, ?, ?, ?, ? FROM (${yield* jsonTextList()}) AS s WHERE true
       ${sqliteMerge}`,
      [job.organizationId, job.directoryId ?? null, job.kind, job.kind, job.lane, now, now, now, now, list],
    );
  }
  signalEnqueued();
}
