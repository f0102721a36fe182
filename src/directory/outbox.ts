import type { DbOrTx } from "./database.js";
import { prepared } from "./statements.js";

/** Lanes in priority order: deprovisioning always runs first (docs/design.md, invariant 3). */
export const Lane = { deprovision: 0, provision: 1, background: 2 } as const;
export type Lane = (typeof Lane)[keyof typeof Lane];

/** Lane names as the admin API, the CLI and metrics show them, indexed by lane. */
export const laneNames = ["deprovision", "provision", "background"] as const;
export const laneName = (lane: number): string => laneNames[lane] ?? String(lane);

export type JobKind = "user" | "group" | "organization" | "drift";

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

/**
 * Enqueues a level-triggered reconcile job inside the caller's transaction. A pending job for the
 * same key absorbs it (docs/design.md, invariant 4): it keeps the most urgent lane, the earliest
 * run time and the earliest acknowledgement time, so merging never delays a deprovision.
 */
export function enqueueJob(tx: DbOrTx, job: EnqueueJob): void {
  const now = job.now ?? Date.now();
  // Every SCIM write enqueues one: a cached statement rather than drizzle's builder.
  prepared(
    tx,
    `INSERT INTO jobs (organization_id, directory_id, kind, key, subject_id, lane, state, attempts, run_after, first_enqueued_at, created_at, updated_at)
     VALUES (@org, @dir, @kind, @key, @subject, @lane, 'pending', 0, @now, @now, @now, @now)
     ON CONFLICT (key) WHERE state = 'pending' DO UPDATE SET lane = min(jobs.lane, excluded.lane), attempts = 0, run_after = min(jobs.run_after, excluded.run_after), updated_at = @now`,
  ).run({
    org: job.organizationId,
    dir: job.directoryId ?? null,
    kind: job.kind,
    key: jobKey(job.kind, job.subjectId),
    subject: job.subjectId,
    lane: job.lane,
    now,
  });
  signalEnqueued();
}

/**
 * enqueueJob for many subjects of one kind, organization and lane at once: one cached statement
 * over a JSON list instead of a statement built per subject, so a group replace that changes
 * 10,000 memberships enqueues them in milliseconds. Same merge rules as enqueueJob.
 */
export function enqueueJobs(tx: DbOrTx, job: Omit<EnqueueJob, "subjectId">, subjectIds: Iterable<string>): void {
  const subjects = [...subjectIds];
  if (subjects.length === 0) return;
  const now = job.now ?? Date.now();
  prepared(
    tx,
    `INSERT INTO jobs (organization_id, directory_id, kind, key, subject_id, lane, state, attempts, run_after, first_enqueued_at, created_at, updated_at)
     SELECT @org, @dir, @kind, @kind || ':' || value, value, @lane, 'pending', 0, @now, @now, @now, @now FROM json_each(@subjects) WHERE true
     ON CONFLICT (key) WHERE state = 'pending' DO UPDATE SET lane = min(jobs.lane, excluded.lane), attempts = 0, run_after = min(jobs.run_after, excluded.run_after), updated_at = @now`,
  ).run({
    org: job.organizationId,
    dir: job.directoryId ?? null,
    kind: job.kind,
    lane: job.lane,
    now,
    subjects: JSON.stringify(subjects),
  });
  signalEnqueued();
}
