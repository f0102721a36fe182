import { auditEntries } from "../../db/schema.js";
import type { DbOrTx } from "./database.js";

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

/** Appends one audit entry inside the caller's transaction (the audit log is append-only). */
export function recordAudit(tx: DbOrTx, entry: AuditEntry): void {
  tx.insert(auditEntries)
    .values({
      at: entry.at ?? Date.now(),
      actorType: entry.actor.type,
      actorId: entry.actor.id,
      organizationId: entry.organizationId ?? null,
      directoryId: entry.directoryId ?? null,
      action: entry.action,
      targetType: entry.targetType,
      targetId: entry.targetId ?? null,
      before: entry.before === undefined ? null : JSON.stringify(entry.before),
      after: entry.after === undefined ? null : JSON.stringify(entry.after),
      requestId: entry.requestId ?? null,
    })
    .run();
}
