import { exec, type StoreOp } from "./store-op.js";

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
  yield* exec(insertAudit, [
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
