import { and, desc, eq, inArray, lt, sql } from "drizzle-orm";
import { jobs } from "../../db/schema.js";
import { recordAudit } from "../directory/audit.js";
import type { Db, DbOrTx } from "../directory/database.js";
import type { Change } from "../directory/write-context.js";
import { conflict, notFound } from "../errors.js";
import { jobKey, type JobKind } from "../directory/outbox.js";
import type { JobRow } from "./worker.js";
import { runSync } from "../directory/store-op.js";

/**
 * Read side of the job queue for operators and customer admins: lists with keyset paging,
 * dead letters, per-user pending work, counts for sync health, and retry.
 */
export type JobState = "pending" | "running" | "done" | "dead";

export const jobStates: readonly JobState[] = ["pending", "running", "done", "dead"];

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

export function listJobs(db: DbOrTx, q: JobQuery = {}): JobPage {
  const limit = Math.min(Math.max(q.limit ?? 50, 1), 500);
  const rows = db
    .select()
    .from(jobs)
    .where(
      and(
        q.organizationId !== undefined ? eq(jobs.organizationId, q.organizationId) : undefined,
        q.state !== undefined ? eq(jobs.state, q.state) : undefined,
        q.lane !== undefined ? eq(jobs.lane, q.lane) : undefined,
        q.kind !== undefined ? eq(jobs.kind, q.kind) : undefined,
        q.before !== undefined ? lt(jobs.id, q.before) : undefined,
      ),
    )
    .orderBy(desc(jobs.id))
    .limit(limit + 1)
    .all();
  const page = rows.slice(0, limit);
  return { jobs: page, next: rows.length > limit ? page[page.length - 1]!.id : null };
}

/** Dead letters: jobs that gave up (fatal error, or a provisioning job out of attempts). */
export const listDeadJobs = (db: DbOrTx, q: Omit<JobQuery, "state"> = {}): JobPage =>
  listJobs(db, { ...q, state: "dead" });

export function getJob(db: DbOrTx, id: number): JobRow | undefined {
  return db.select().from(jobs).where(eq(jobs.id, id)).get();
}

/** Unfinished (pending or running) and dead "user" jobs of these users, for their sync state. */
export function userJobs(
  db: DbOrTx,
  organizationId: string,
  userIds: readonly string[],
): Map<string, { open?: JobRow; dead?: JobRow }> {
  const out = new Map<string, { open?: JobRow; dead?: JobRow }>();
  if (userIds.length === 0) return out;
  const rows = db
    .select()
    .from(jobs)
    .where(
      and(
        eq(jobs.organizationId, organizationId),
        inArray(
          jobs.key,
          userIds.map((id) => jobKey("user", id)),
        ),
        inArray(jobs.state, ["pending", "running", "dead"]),
      ),
    )
    .orderBy(desc(jobs.id))
    .all();
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
export function jobCounts(db: DbOrTx, organizationId?: string): JobCounts[] {
  return db
    .select({
      organizationId: jobs.organizationId,
      state: sql<JobState>`${jobs.state}`,
      lane: jobs.lane,
      count: sql<number>`count(*)`,
      oldestFirstEnqueuedAt: sql<number>`min(${jobs.firstEnqueuedAt})`,
    })
    .from(jobs)
    .where(
      and(
        inArray(jobs.state, ["pending", "running", "dead"]),
        organizationId !== undefined ? eq(jobs.organizationId, organizationId) : undefined,
      ),
    )
    .groupBy(jobs.organizationId, jobs.state, jobs.lane)
    .orderBy(jobs.organizationId, jobs.state, jobs.lane)
    .all();
}

export interface QueueDepth {
  lane: number;
  state: Exclude<JobState, "done">;
  count: number;
  /** Oldest acknowledged change still waiting in this group (epoch ms). */
  oldestFirstEnqueuedAt: number;
}

/** Queue depth by lane and state, of every organization or one: jobCounts summed over organizations. */
export function queueDepth(db: DbOrTx, organizationId?: string): QueueDepth[] {
  const out = new Map<string, QueueDepth>();
  for (const g of jobCounts(db, organizationId)) {
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
 */
export function retryJob(db: Db, id: number, change: Change, options: { organizationId?: string } = {}): RetryResult {
  const { actor, requestId, at: now } = change;
  return db.transaction(
    (tx) => {
      const job = getJob(tx, id);
      if (!job || (options.organizationId !== undefined && job.organizationId !== options.organizationId))
        throw notFound(`job ${id} not found`);
      if (job.state === "running") throw conflict(`job ${id} is running now; wait for its outcome`);
      if (job.state === "done")
        throw conflict(`job ${id} is done; a reconcile is enqueued by changing the user or by a drift reconcile`);
      const other = tx
        .select()
        .from(jobs)
        .where(and(eq(jobs.key, job.key), eq(jobs.state, "pending")))
        .get();
      let result: RetryResult;
      if (other && other.id !== job.id) {
        const merged = tx
          .update(jobs)
          .set({
            lane: Math.min(other.lane, job.lane),
            firstEnqueuedAt: Math.min(other.firstEnqueuedAt, job.firstEnqueuedAt),
            runAfter: now,
            attempts: 0,
            updatedAt: now,
          })
          .where(eq(jobs.id, other.id))
          .returning()
          .get();
        tx.delete(jobs).where(eq(jobs.id, job.id)).run();
        result = { job: merged, mergedInto: other.id };
      } else {
        const updated = tx
          .update(jobs)
          .set({ state: "pending", attempts: 0, runAfter: now, leaseOwner: null, leaseExpiresAt: null, updatedAt: now })
          .where(eq(jobs.id, job.id))
          .returning()
          .get();
        result = { job: updated, mergedInto: null };
      }
      runSync(
        tx,
        recordAudit({
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
        }),
      );
      return result;
    },
    { behavior: "immediate" },
  );
}
