import { createHash, randomBytes, timingSafeEqual } from "node:crypto";
import { and, desc, eq, isNull } from "drizzle-orm";
import { adminTokens } from "../../db/schema.js";
import { invalidValue, notFound } from "../errors.js";
import { recordAudit } from "./audit.js";
import type { DbOrTx } from "./database.js";
import { newResourceId } from "./ids.js";
import type { Change } from "./write-context.js";
import { runSync } from "./store-op.js";

/**
 * Admin API tokens. Scope "operator" reaches every organization; "org_admin" one. Like SCIM
 * tokens (docs/design.md, "Concepts" and invariant 7): 256 random bits, shown once, stored only as a SHA-256 hash,
 * always with an expiry (RFC 7644 §7.4 asks for a limited lifetime), revocable, last use recorded.
 */
export type AdminTokenRow = typeof adminTokens.$inferSelect;
export type AdminScope = "operator" | "org_admin";

/** Issued tokens live 90 days unless the operator says otherwise, and never more than a year. */
export const defaultAdminTokenDays = 90;
export const maxAdminTokenDays = 365;
const dayMs = 86_400_000;
const tokenPrefix = "sba_";

export const hashAdminToken = (raw: string): string => createHash("sha256").update(raw, "utf8").digest("hex");

export interface IssuedAdminToken {
  /** The secret: returned to the caller once; never stored, never logged, never audited. */
  token: string;
  record: AdminTokenRow;
}

export interface NewAdminToken {
  scope: AdminScope;
  /** Required for org_admin, refused for operator. */
  organizationId?: string | null;
  name: string;
  expiresInDays?: number;
}

/** What an audit entry or an API response may say about a token: never the hash, never the secret. */
export function adminTokenSummary(t: AdminTokenRow): Record<string, unknown> {
  return {
    id: t.id,
    name: t.name,
    scope: t.scope,
    organizationId: t.organizationId,
    hint: t.hint,
    createdAt: t.createdAt,
    expiresAt: t.expiresAt,
    revokedAt: t.revokedAt,
    lastUsedAt: t.lastUsedAt,
  };
}

export function issueAdminToken(tx: DbOrTx, input: NewAdminToken, change: Change): IssuedAdminToken {
  const { actor, requestId, at: now } = change;
  const name = input.name.trim();
  if (name.length === 0 || name.length > 100) throw invalidValue("name must be 1 to 100 characters");
  if (input.scope === "org_admin" && !input.organizationId)
    throw invalidValue("an org_admin token needs an organization");
  if (input.scope === "operator" && input.organizationId)
    throw invalidValue("an operator token reaches every organization; do not name one");
  const days = input.expiresInDays ?? defaultAdminTokenDays;
  if (!Number.isInteger(days) || days < 1 || days > maxAdminTokenDays) {
    throw invalidValue(`expiresInDays must be a whole number from 1 to ${maxAdminTokenDays}`);
  }
  const token = tokenPrefix + randomBytes(32).toString("base64url");
  const record = tx
    .insert(adminTokens)
    .values({
      id: newResourceId(),
      tokenHash: hashAdminToken(token),
      hint: token.slice(-4),
      scope: input.scope,
      organizationId: input.organizationId ?? null,
      name,
      createdAt: now,
      expiresAt: now + days * dayMs,
    })
    .returning()
    .get();
  runSync(
    tx,
    recordAudit({
      actor,
      organizationId: record.organizationId,
      action: "admin_token.issue",
      targetType: "admin_token",
      targetId: record.id,
      after: { name: record.name, scope: record.scope, hint: record.hint, expiresAt: record.expiresAt },
      requestId,
      at: now,
    }),
  );
  return { token, record };
}

export function listAdminTokens(db: DbOrTx, organizationId?: string): AdminTokenRow[] {
  return db
    .select()
    .from(adminTokens)
    .where(organizationId ? eq(adminTokens.organizationId, organizationId) : undefined)
    .orderBy(desc(adminTokens.createdAt))
    .all();
}

export function getAdminToken(db: DbOrTx, id: string): AdminTokenRow | undefined {
  return db.select().from(adminTokens).where(eq(adminTokens.id, id)).get();
}

/** Revokes a token (idempotent: revoking a revoked token changes nothing and writes no audit entry). */
export function revokeAdminToken(tx: DbOrTx, id: string, change: Change): AdminTokenRow {
  const { actor, requestId, at: now } = change;
  const existing = getAdminToken(tx, id);
  if (!existing) throw notFound(`admin token "${id}" not found`);
  if (existing.revokedAt !== null) return existing;
  const row = tx
    .update(adminTokens)
    .set({ revokedAt: now })
    .where(and(eq(adminTokens.id, id), isNull(adminTokens.revokedAt)))
    .returning()
    .get();
  runSync(
    tx,
    recordAudit({
      actor,
      organizationId: existing.organizationId,
      action: "admin_token.revoke",
      targetType: "admin_token",
      targetId: id,
      before: { name: existing.name, scope: existing.scope, hint: existing.hint },
      after: { revokedAt: now },
      requestId,
      at: now,
    }),
  );
  return row ?? existing;
}

/** Who a presented admin token speaks for. */
export interface AdminPrincipal {
  tokenId: string;
  scope: AdminScope;
  /** Set for org_admin tokens only. */
  organizationId: string | null;
}

export type AdminTokenCheck =
  { ok: true; principal: AdminPrincipal } | { ok: false; reason: "unknown" | "expired" | "revoked" };

/** The bootstrap operator token (BRIDGE_ADMIN_TOKEN) speaks as this token id in audit entries. */
export const bootstrapTokenId = "bootstrap";

/**
 * Resolves a presented token. The lookup is by hash, so the index comparison reveals nothing about
 * the secret; the bootstrap token's hash (never the token) is compared in constant time.
 */
export function verifyAdminToken(
  db: DbOrTx,
  raw: string,
  options: { bootstrapHash?: string; now?: number } = {},
): AdminTokenCheck {
  if (raw.length === 0 || raw.length > 512) return { ok: false, reason: "unknown" };
  const presented = hashAdminToken(raw);
  const presentedBytes = Buffer.from(presented, "hex");
  if (options.bootstrapHash && timingSafeEqual(Buffer.from(options.bootstrapHash, "hex"), presentedBytes)) {
    return { ok: true, principal: { tokenId: bootstrapTokenId, scope: "operator", organizationId: null } };
  }
  const row = db.select().from(adminTokens).where(eq(adminTokens.tokenHash, presented)).get();
  if (!row || !timingSafeEqual(Buffer.from(row.tokenHash, "hex"), presentedBytes))
    return { ok: false, reason: "unknown" };
  if (row.revokedAt !== null) return { ok: false, reason: "revoked" };
  if (row.expiresAt !== null && row.expiresAt <= (options.now ?? Date.now())) return { ok: false, reason: "expired" };
  return {
    ok: true,
    principal: { tokenId: row.id, scope: row.scope as AdminScope, organizationId: row.organizationId },
  };
}

export function touchAdminToken(db: DbOrTx, tokenId: string, now = Date.now()): void {
  db.update(adminTokens).set({ lastUsedAt: now }).where(eq(adminTokens.id, tokenId)).run();
}
