/**
 * Read models of the operator tools (`scim-bridge jobs`, `status`, the readiness check): the queue
 * with its organizations and users.
 */
import { jsonTextList, many, one, type SqlParam, type StoreOp } from "./store-op.js";

export type QueueState = "pending" | "running" | "dead";

export interface QueueJobRow {
  id: number;
  organizationId: string;
  kind: string;
  subjectId: string;
  lane: number;
  state: string;
  attempts: number;
  runAfter: number;
  firstEnqueuedAt: number;
  updatedAt: number;
  lastError: string | null;
  /** The organization's slug (null once it is deleted). */
  slug: string | null;
  /** The user's userName for user jobs. */
  userName: string | null;
}

/**
 * Jobs in `states` (optionally of one organization), running first, then pending, then dead, each by
 * lane, due time and id; with the total that matched.
 */
export function* queueJobs(q: {
  states: readonly QueueState[];
  organizationId?: string;
  limit: number;
}): StoreOp<{ total: number; jobs: QueueJobRow[] }> {
  const where = [`j.state IN (${yield* jsonTextList()})`];
  const params: SqlParam[] = [JSON.stringify(q.states)];
  if (q.organizationId !== undefined) {
    where.push("j.organization_id = ?");
    params.push(q.organizationId);
  }
  const condition = where.join(" AND ");
  const total = (yield* one<{ n: number }>(`SELECT count(*) AS n FROM jobs j WHERE ${condition}`, params))?.n ?? 0;
  const jobs = yield* many<QueueJobRow>(
    `SELECT j.id, j.organization_id AS "organizationId", j.kind, j.subject_id AS "subjectId", j.lane, j.state,
       j.attempts, j.run_after AS "runAfter", j.first_enqueued_at AS "firstEnqueuedAt", j.updated_at AS "updatedAt",
       j.last_error AS "lastError", o.slug, u.user_name AS "userName"
     FROM jobs j
     LEFT JOIN organizations o ON o.id = j.organization_id
     LEFT JOIN users u ON j.kind = 'user' AND u.id = j.subject_id
     WHERE ${condition}
     ORDER BY CASE j.state WHEN 'running' THEN 0 WHEN 'pending' THEN 1 ELSE 2 END, j.lane, j.run_after, j.id
     LIMIT ?`,
    [...params, q.limit],
  );
  return { total, jobs };
}

/** Whether the database answers a trivial query (readiness checks). */
export function* ping(): StoreOp<boolean> {
  return (yield* one<{ ok: number }>("SELECT 1 AS ok"))?.ok === 1;
}
