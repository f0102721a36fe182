import { createHash, randomBytes, timingSafeEqual } from "node:crypto";
import type { adminTokens } from "../../db/schema.js";
import { invalidValue, notFound } from "../errors.js";
import { recordAudit } from "./audit.js";
import { newResourceId } from "./ids.js";
import { exec, many, one, type StoreOp } from "./store-op.js";
import type { Change } from "./write-context.js";

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

const adminTokenColumns = `id, token_hash AS "tokenHash", hint, scope, organization_id AS "organizationId", name,
  created_at AS "createdAt", expires_at AS "expiresAt", revoked_at AS "revokedAt", last_used_at AS "lastUsedAt"`;

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

export function* issueAdminToken(input: NewAdminToken, change: Change): StoreOp<IssuedAdminToken> {
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
  const record = (yield* one<AdminTokenRow>(
    `INSERT INTO admin_tokens (id, token_hash, hint, scope, organization_id, name, created_at, expires_at)
     VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING ${adminTokenColumns}`,
    [
      newResourceId(),
      hashAdminToken(token),
      token.slice(-4),
      input.scope,
      input.organizationId ?? null,
      name,
      now,
      now + days * dayMs,
    ],
  ))!;
  yield* recordAudit({
    actor,
    organizationId: record.organizationId,
    action: "admin_token.issue",
    targetType: "admin_token",
    targetId: record.id,
    after: { name: record.name, scope: record.scope, hint: record.hint, expiresAt: record.expiresAt },
    requestId,
    at: now,
  });
  return { token, record };
}

/** Every admin token, or those of one organization; newest first. */
export function* listAdminTokens(organizationId?: string): StoreOp<AdminTokenRow[]> {
  return organizationId === undefined
    ? yield* many<AdminTokenRow>(`SELECT ${adminTokenColumns} FROM admin_tokens ORDER BY created_at DESC, id DESC`)
    : yield* many<AdminTokenRow>(
        `SELECT ${adminTokenColumns} FROM admin_tokens WHERE organization_id = ? ORDER BY created_at DESC, id DESC`,
        [organizationId],
      );
}

export function* getAdminToken(id: string): StoreOp<AdminTokenRow | undefined> {
  return yield* one<AdminTokenRow>(`SELECT ${adminTokenColumns} FROM admin_tokens WHERE id = ?`, [id]);
}

/**
 * Revokes a token (idempotent: revoking a revoked token changes nothing and writes no audit entry).
 * The update is conditional (revoked_at IS NULL), so of two concurrent revocations only one audits.
 */
export function* revokeAdminToken(id: string, change: Change): StoreOp<AdminTokenRow> {
  const { actor, requestId, at: now } = change;
  const existing = yield* getAdminToken(id);
  if (!existing) throw notFound(`admin token "${id}" not found`);
  if (existing.revokedAt !== null) return existing;
  const row = yield* one<AdminTokenRow>(
    `UPDATE admin_tokens SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL RETURNING ${adminTokenColumns}`,
    [now, id],
  );
  if (!row) return (yield* getAdminToken(id)) ?? existing;
  yield* recordAudit({
    actor,
    organizationId: existing.organizationId,
    action: "admin_token.revoke",
    targetType: "admin_token",
    targetId: id,
    before: { name: existing.name, scope: existing.scope, hint: existing.hint },
    after: { revokedAt: now },
    requestId,
    at: now,
  });
  return row;
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

const adminTokenByHash = `SELECT id, token_hash AS "tokenHash", scope, organization_id AS "organizationId",
  expires_at AS "expiresAt", revoked_at AS "revokedAt" FROM admin_tokens WHERE token_hash = ?`;

/**
 * Resolves a presented token. The lookup is by hash, so the index comparison reveals nothing about
 * the secret; the bootstrap token's hash (never the token) is compared in constant time.
 */
export function* verifyAdminToken(
  raw: string,
  options: { bootstrapHash?: string; now?: number } = {},
): StoreOp<AdminTokenCheck> {
  if (raw.length === 0 || raw.length > 512) return { ok: false, reason: "unknown" };
  const presented = hashAdminToken(raw);
  const presentedBytes = Buffer.from(presented, "hex");
  if (options.bootstrapHash && timingSafeEqual(Buffer.from(options.bootstrapHash, "hex"), presentedBytes)) {
    return { ok: true, principal: { tokenId: bootstrapTokenId, scope: "operator", organizationId: null } };
  }
  const row = yield* one<
    Pick<AdminTokenRow, "id" | "tokenHash" | "scope" | "organizationId" | "expiresAt" | "revokedAt">
  >(adminTokenByHash, [presented]);
  if (!row || !timingSafeEqual(Buffer.from(row.tokenHash, "hex"), presentedBytes))
    return { ok: false, reason: "unknown" };
  if (row.revokedAt !== null) return { ok: false, reason: "revoked" };
  if (row.expiresAt !== null && row.expiresAt <= (options.now ?? Date.now())) return { ok: false, reason: "expired" };
  return {
    ok: true,
    principal: { tokenId: row.id, scope: row.scope as AdminScope, organizationId: row.organizationId },
  };
}

/** Records the token's last use. */
export function* touchAdminToken(tokenId: string, now = Date.now()): StoreOp<void> {
  yield* exec("UPDATE admin_tokens SET last_used_at = ? WHERE id = ?", [now, tokenId]);
}
