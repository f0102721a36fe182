import type { auditEntries } from "../../db/schema.js";
import { later, many, type SqlParam, type StoreOp } from "./store-op.js";

export type ActorType = "directory" | "operator" | "org_admin" | "system";

export interface Actor {
  type: ActorType;
  /** Directory id, admin token id, or a system component name. Never a secret. */
  id: string;
}

export interface AuditEntry {
  actor: Actor;
  organizationId?: string | null;
  directoryId?: string | null;
  /** Dotted verb, e.g. "user.create", "group.members.add", "hold.place", "token.rotate". */
  action: string;
  targetType: string;
  targetId?: string | null;
  /** Summaries without secrets; stored as JSON. */
  before?: unknown;
  after?: unknown;
  requestId?: string | null;
  at?: number;
}

const insertAudit = `INSERT INTO audit_entries
  (at, actor_type, actor_id, organization_id, directory_id, action, target_type, target_id, before, after, request_id)
  VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`;

/**
 * Appends one audit entry inside the caller's transaction (the audit log is append-only). Every SCIM
 * write makes one: one fixed statement text, so it stays prepared.
 */
export function* recordAudit(entry: AuditEntry): StoreOp<void> {
  yield* later(insertAudit, [
    entry.at ?? Date.now(),
    entry.actor.type,
    entry.actor.id,
    entry.organizationId ?? null,
    entry.directoryId ?? null,
    entry.action,
    entry.targetType,
    entry.targetId ?? null,
    entry.before === undefined ? null : JSON.stringify(entry.before),
    entry.after === undefined ? null : JSON.stringify(entry.after),
    entry.requestId ?? null,
  ]);
}

export type AuditRow = typeof auditEntries.$inferSelect;

export interface AuditQuery {
  organizationId?: string;
  actorType?: ActorType;
  actorId?: string;
  /** An exact action, or a prefix ending in "." (e.g. "hold."). */
  action?: string;
  targetType?: string;
  targetId?: string;
  directory?: string;
  requestId?: string;
  /** Epoch ms, inclusive. */
  since?: number;
  until?: number;
  limit: number;
  /** Cursor: entries with a smaller id. */
  before?: number;
}

const auditColumns = `id, at, actor_type AS "actorType", actor_id AS "actorId", organization_id AS "organizationId",
  directory_id AS "directoryId", action, target_type AS "targetType", target_id AS "targetId", before, after,
  request_id AS "requestId"`;

const escapeLike = (s: string): string => s.replace(/[\\%_]/g, (c) => `\\${c}`);

/**
 * A page of the audit trail, newest first, with `next` the cursor of the following page. The
 * statement text depends only on which filters are set.
 */
export function* queryAudit(q: AuditQuery): StoreOp<{ entries: AuditRow[]; next: number | null }> {
  const where: string[] = [];
  const params: SqlParam[] = [];
  const add = (condition: string, value: SqlParam | undefined): void => {
    if (value === undefined) return;
    where.push(condition);
    params.push(value);
  };
  add("organization_id = ?", q.organizationId);
  add("actor_type = ?", q.actorType || undefined);
  add("actor_id = ?", q.actorId || undefined);
  if (q.action) {
    // ESCAPE is needed for the escaped "_" of actions such as "setup_link." to match literally.
    if (q.action.endsWith(".")) add("action LIKE ? ESCAPE '\\'", `${escapeLike(q.action)}%`);
    else add("action = ?", q.action);
  }
  add("target_type = ?", q.targetType || undefined);
  add("target_id = ?", q.targetId || undefined);
  add("directory_id = ?", q.directory || undefined);
  add("request_id = ?", q.requestId || undefined);
  add("at >= ?", q.since);
  add("at <= ?", q.until);
  add("id < ?", q.before);
  const rows = yield* many<AuditRow>(
    `SELECT ${auditColumns} FROM audit_entries ${where.length > 0 ? `WHERE ${where.join(" AND ")}` : ""}
     ORDER BY id DESC LIMIT ?`,
    [...params, q.limit + 1],
  );
  const page = rows.slice(0, q.limit);
  return { entries: page, next: rows.length > q.limit ? page[page.length - 1]!.id : null };
}
