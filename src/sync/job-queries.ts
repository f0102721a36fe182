import { recordAudit } from "../directory/audit.js";
import type { Change } from "../directory/write-context.js";
import { conflict, notFound } from "../errors.js";
import { enqueueJob, jobKey, Lane, type JobKind } from "../directory/outbox.js";
import { exec, forUpdate, jsonTextList, many, one, type SqlParam, type StoreOp } from "../directory/store-op.js";
import type { jobs } from "../../db/schema.js";

/** A row of the job queue. */
export type JobRow = typeof jobs.$inferSelect;

/**
 * Read side of the job queue for operators and customer admins: lists with keyset paging,
 * dead letters, per-user pending work, counts for sync health, and retry.
 */
export type JobState = "pending" | "running" | "done" | "dead";

export const jobStates: readonly JobState[] = ["pending", "running", "done", "dead"];

/** Every column of jobs, aliased to JobRow's fields (the worker's queue statements use it too). */
export const jobColumns = `id, organization_id AS "organizationId", directory_id AS "directoryId", kind, key,
  subject_id AS "subjectId", lane, state, attempts, lease_token AS "leaseToken", run_after AS "runAfter", lease_owner AS "leaseOwner",
  lease_expires_at AS "leaseExpiresAt", last_error AS "lastError", first_enqueued_at AS "firstEnqueuedAt",
  created_at AS "createdAt", updated_at AS "updatedAt"`;

export interface JobQuery {
  organizationId?: string;
  state?: JobState;
  lane?: number;
  kind?: JobKind;
  /** Default 50, at most 500. */
  limit?: number;
  /** Keyset cursor: jobs with a smaller id (the list is newest first). */
  before?: number;
}

export interface JobPage {
  jobs: JobRow[];
  /** Pass as `before` for the next page; null on the last page. */
  next: number | null;
}

export function* listJobs(q: JobQuery = {}): StoreOp<JobPage> {
  const limit = Math.min(Math.max(q.limit ?? 50, 1), 500);
  // The WHERE clause names only the filters given: at most 32 texts, each cached once.
  const where: string[] = [];
  const params: SqlParam[] = [];
  const filter = (clause: string, value: SqlParam | undefined): void => {
    if (value === undefined) return;
    where.push(clause);
    params.push(value);
  };
  filter("organization_id = ?", q.organizationId);
  filter("state = ?", q.state);
  filter("lane = ?", q.lane);
  filter("kind = ?", q.kind);
  filter("id < ?", q.before);
  const rows = yield* many<JobRow>(
    `SELECT ${jobColumns} FROM jobs ${where.length > 0 ? `WHERE ${where.join(" AND ")}` : ""} ORDER BY id DESC LIMIT ?`,
    [...params, limit + 1],
  );
  const page = rows.slice(0, limit);
  return { jobs: page, next: rows.length > limit ? page[page.length - 1]!.id : null };
}

/** Dead letters: jobs that gave up (fatal error, or a provisioning job out of attempts). */
export const listDeadJobs = (q: Omit<JobQuery, "state"> = {}): StoreOp<JobPage> => listJobs({ ...q, state: "dead" });

export function* getJob(id: number): StoreOp<JobRow | undefined> {
  return yield* one<JobRow>(`SELECT ${jobColumns} FROM jobs WHERE id = ?`, [id]);
}

/** Unfinished (pending or running) and dead "user" jobs of these users, for their sync state. */
export function* userJobs(
  organizationId: string,
  userIds: readonly string[],
): StoreOp<Map<string, { open?: JobRow; dead?: JobRow }>> {
  const out = new Map<string, { open?: JobRow; dead?: JobRow }>();
  if (userIds.length === 0) return out;
  const rows = yield* many<JobRow>(
    `SELECT ${jobColumns} FROM jobs
     WHERE organization_id = ? AND key IN (${yield* jsonTextList()}) AND state IN ('pending', 'running', 'dead')
     ORDER BY id DESC`,
    [organizationId, JSON.stringify(userIds.map((id) => jobKey("user", id)))],
  );
  for (const job of rows) {
    const entry = out.get(job.subjectId) ?? {};
    if (job.state === "dead") entry.dead ??= job;
    // A running job is what happens now; a pending one behind it waits.
    else if (!entry.open || job.state === "running") entry.open = job;
    out.set(job.subjectId, entry);
  }
  return out;
}

export interface JobCounts {
  organizationId: string;
  state: JobState;
  lane: number;
  count: number;
  /** Oldest acknowledged change still waiting in this group (epoch ms): the sync lag. */
  oldestFirstEnqueuedAt: number;
}

/** Unfinished and dead jobs per organization, state and lane: the numbers behind "is sync healthy". */
export function* jobCounts(organizationId?: string): StoreOp<JobCounts[]> {
  return yield* many<JobCounts>(
    `SELECT organization_id AS "organizationId", state, lane, count(*) AS count,
       min(first_enqueued_at) AS "oldestFirstEnqueuedAt"
     FROM jobs
     WHERE state IN ('pending', 'running', 'dead') ${organizationId !== undefined ? "AND organization_id = ?" : ""}
     GROUP BY organization_id, state, lane
     ORDER BY organization_id, state, lane`,
    organizationId !== undefined ? [organizationId] : [],
  );
}

export interface QueueDepth {
  lane: number;
  state: Exclude<JobState, "done">;
  count: number;
  /** Oldest acknowledged change still waiting in this group (epoch ms). */
  oldestFirstEnqueuedAt: number;
}

/** Queue depth by lane and state, of every organization or one: jobCounts summed over organizations. */
export function* queueDepth(organizationId?: string): StoreOp<QueueDepth[]> {
  const out = new Map<string, QueueDepth>();
  for (const g of yield* jobCounts(organizationId)) {
    if (g.state === "done") continue;
    const key = `${g.lane}:${g.state}`;
    const d = out.get(key);
    if (!d)
      out.set(key, {
        lane: Number(g.lane),
        state: g.state,
        count: Number(g.count),
        oldestFirstEnqueuedAt: Number(g.oldestFirstEnqueuedAt),
      });
    else {
      d.count += Number(g.count);
      d.oldestFirstEnqueuedAt = Math.min(d.oldestFirstEnqueuedAt, Number(g.oldestFirstEnqueuedAt));
    }
  }
  return [...out.values()];
}

export interface RetryResult {
  job: JobRow;
  /** Set when a pending job of the same key absorbed the retried one (which is then removed). */
  mergedInto: number | null;
}

/**
 * Retry: a dead (or waiting) job goes back to pending with attempts 0, runnable now. Jobs are
 * level-triggered, so when the same key already has a pending job the two merge (the partial unique
 * index allows one pending job per key), keeping the more urgent lane and the earlier acknowledgement.
 * One write transaction: run it with store.write.
 */
export function* retryJob(id: number, change: Change, options: { organizationId?: string } = {}): StoreOp<RetryResult> {
  const { actor, requestId, at: now } = change;
  // Both rows are read, then written from what was read: locked on PostgreSQL so a worker's finish
  // or a second retry waits. An enqueue racing the un-merged branch meets the partial unique index.
  const lock = yield* forUpdate();
  const job = yield* one<JobRow>(`SELECT ${jobColumns} FROM jobs WHERE id = ? ${lock}`, [id]);
  if (!job || (options.organizationId !== undefined && job.organizationId !== options.organizationId))
    throw notFound(`job ${id} not found`);
  if (job.state === "running") throw conflict(`job ${id} is running now; wait for its outcome`);
  if (job.state === "done")
    throw conflict(`job ${id} is done; a reconcile is enqueued by changing the user or by a drift reconcile`);
  const other = yield* one<JobRow>(`SELECT ${jobColumns} FROM jobs WHERE key = ? AND state = 'pending' ${lock}`, [
    job.key,
  ]);
  let result: RetryResult;
  if (other && other.id !== job.id) {
    const merged = (yield* one<JobRow>(
      `UPDATE jobs SET lane = ?, first_enqueued_at = ?, run_after = ?, attempts = 0, updated_at = ?
       WHERE id = ? RETURNING ${jobColumns}`,
      [Math.min(other.lane, job.lane), Math.min(other.firstEnqueuedAt, job.firstEnqueuedAt), now, now, other.id],
    ))!;
    yield* exec(`DELETE FROM jobs WHERE id = ?`, [job.id]);
    result = { job: merged, mergedInto: other.id };
  } else {
    const updated = (yield* one<JobRow>(
      `UPDATE jobs SET state = 'pending', attempts = 0, run_after = ?, lease_owner = NULL, lease_expires_at = NULL,
         updated_at = ?
       WHERE id = ? RETURNING ${jobColumns}`,
      [now, now, job.id],
    ))!;
    result = { job: updated, mergedInto: null };
  }
  yield* recordAudit({
    actor,
    organizationId: job.organizationId,
    directoryId: job.directoryId,
    action: "job.retry",
    targetType: "job",
    targetId: String(job.id),
    before: {
      state: job.state,
      kind: job.kind,
      subjectId: job.subjectId,
      attempts: job.attempts,
      lastError: job.lastError,
    },
    after: {
      state: "pending",
      attempts: 0,
      ...(result.mergedInto !== null ? { mergedInto: result.mergedInto } : {}),
    },
    requestId,
    at: now,
  });
  return result;
}

/**
 * An operator's drift reconcile of an organization: enqueues the drift job (background lane; it
 * merges into a waiting one), audits the request, and gives the pending drift job.
 */
export function* requestDriftReconcile(
  organizationId: string,
  change: Pick<Change, "actor" | "requestId" | "at">,
): StoreOp<JobRow | undefined> {
  yield* enqueueJob({
    organizationId,
    kind: "drift",
    subjectId: organizationId,
    lane: Lane.background,
    now: change.at,
  });
  yield* recordAudit({
    actor: change.actor,
    organizationId,
    action: "drift.request",
    targetType: "organization",
    targetId: organizationId,
    requestId: change.requestId,
    at: change.at,
  });
  return (yield* listJobs({ organizationId, kind: "drift", state: "pending", limit: 1 })).jobs[0];
}

/** Jobs of the organization still to run (pending or running): what `users import` and `reconcile` wait for. */
export function* openJobCount(organizationId: string): StoreOp<number> {
  const row = yield* one<{ n: number }>(
    `SELECT count(*) AS n FROM jobs WHERE organization_id = ? AND state IN ('pending', 'running')`,
    [organizationId],
  );
  return row?.n ?? 0;
}

export interface DeadJob {
  kind: JobKind;
  subjectId: string;
  lastError: string | null;
  /** The user's userName when the job is a user's and the user is still stored. */
  userName: string | null;
}

/** The organization's jobs that went dead at or after `since` (epoch ms), oldest first: what a repair did not converge. */
export function* deadJobsSince(organizationId: string, since: number): StoreOp<DeadJob[]> {
  return yield* many<DeadJob>(
    `SELECT j.kind, j.subject_id AS "subjectId", j.last_error AS "lastError", u.user_name AS "userName"
     FROM jobs j LEFT JOIN users u ON u.id = j.subject_id
     WHERE j.organization_id = ? AND j.state = 'dead' AND j.updated_at >= ? ORDER BY j.updated_at, j.id`,
    [organizationId, since],
  );
}
