import { createHash, randomBytes } from "node:crypto";
import type { setupLinks } from "../../db/schema.js";
import { invalidValue, notFound } from "../errors.js";
import { recordAudit } from "./audit.js";
import { newResourceId } from "./ids.js";
import { many, one, type StoreOp } from "./store-op.js";
import type { Change } from "./write-context.js";

/**
 * Self-service setup links: an operator gives a customer's IT admin, who has no account, a link that
 * lets them set up one organization's directories (SCIM base URL, token, guided IdP steps) and nothing
 * else. The token is 256 random bits shown once; only its SHA-256 is stored. A link can be opened
 * again until it expires or is revoked (an IdP setup often takes more than one sitting), and every
 * opening is audited.
 */
export type SetupLinkRow = typeof setupLinks.$inferSelect;

const setupLinkColumns = `id, token_hash AS "tokenHash", organization_id AS "organizationId", created_by AS "createdBy",
  created_at AS "createdAt", expires_at AS "expiresAt", revoked_at AS "revokedAt", last_used_at AS "lastUsedAt"`;

const hourMs = 3_600_000;
export const defaultSetupLinkHours = 72;
export const maxSetupLinkHours = 7 * 24;
const tokenPrefix = "sbs_";

export const hashSetupToken = (raw: string): string => createHash("sha256").update(raw, "utf8").digest("hex");

/** "24h", "3d", "90m" → milliseconds; undefined input gives the default. */
export function parseSetupLinkLifetime(text: string | undefined): number {
  if (text === undefined) return defaultSetupLinkHours * hourMs;
  const m = /^(\d{1,4})\s*([mhd])$/.exec(text.trim());
  if (!m) throw invalidValue(`expiry must look like 30m, 24h or 3d (got "${text}")`);
  const ms = Number(m[1]) * { m: 60_000, h: hourMs, d: 24 * hourMs }[m[2] as "m" | "h" | "d"];
  if (ms < 60_000 || ms > maxSetupLinkHours * hourMs)
    throw invalidValue(`expiry must be from 1 minute to ${maxSetupLinkHours / 24} days`);
  return ms;
}

export const setupLinkUrl = (publicUrl: string, token: string): string =>
  `${publicUrl.replace(/\/+$/, "")}/console/setup/${token}`;

export function* createSetupLink(
  input: { organizationId: string; lifetimeMs: number },
  change: Change,
): StoreOp<{ token: string; record: SetupLinkRow }> {
  const { actor, requestId, at: now } = change;
  const token = tokenPrefix + randomBytes(32).toString("base64url");
  const record = (yield* one<SetupLinkRow>(
    `INSERT INTO setup_links (id, token_hash, organization_id, created_by, created_at, expires_at)
     VALUES (?, ?, ?, ?, ?, ?) RETURNING ${setupLinkColumns}`,
    [
      newResourceId(),
      hashSetupToken(token),
      input.organizationId,
      `${actor.type}:${actor.id}`,
      now,
      now + input.lifetimeMs,
    ],
  ))!;
  yield* recordAudit({
    actor,
    organizationId: input.organizationId,
    action: "setup_link.create",
    targetType: "setup_link",
    targetId: record.id,
    after: { expiresAt: record.expiresAt },
    requestId,
    at: now,
  });
  return { token, record };
}

/** An organization's links, newest first. */
export function* listSetupLinks(organizationId: string): StoreOp<SetupLinkRow[]> {
  return yield* many<SetupLinkRow>(
    `SELECT ${setupLinkColumns} FROM setup_links WHERE organization_id = ? ORDER BY created_at DESC, id DESC`,
    [organizationId],
  );
}

export const setupLinkState = (l: SetupLinkRow, now: number): "active" | "expired" | "revoked" =>
  l.revokedAt !== null ? "revoked" : l.expiresAt <= now ? "expired" : "active";

/** Whether the link behind a setup session still works (checked on every request of that session). */
export function* setupLinkUsable(linkId: string, now = Date.now()): StoreOp<boolean> {
  const row = yield* one<SetupLinkRow>(`SELECT ${setupLinkColumns} FROM setup_links WHERE id = ?`, [linkId]);
  return row !== undefined && setupLinkState(row, now) === "active";
}

export type SetupLinkRedemption =
  { ok: true; link: SetupLinkRow } | { ok: false; reason: "unknown" | "expired" | "revoked" };

/**
 * Opens a link: the link when it works (the use is audited), else why not. A link may be opened
 * again until it expires or is revoked (an IdP setup often takes more than one sitting). The use is
 * recorded with a conditional update (still unrevoked and unexpired, the count checked), so an opening
 * that races a revocation by another instance either commits before it or is refused: never a session
 * from a link already revoked.
 */
export function* redeemSetupLink(
  raw: string,
  who: { ip?: string; userAgent?: string; requestId?: string | null },
  now = Date.now(),
): StoreOp<SetupLinkRedemption> {
  if (raw.length === 0 || raw.length > 200) return { ok: false, reason: "unknown" };
  const byHash = `SELECT ${setupLinkColumns} FROM setup_links WHERE token_hash = ?`;
  const tokenHash = hashSetupToken(raw);
  const row = yield* one<SetupLinkRow>(byHash, [tokenHash]);
  if (!row) return { ok: false, reason: "unknown" };
  const state = setupLinkState(row, now);
  if (state !== "active") return { ok: false, reason: state };
  const used = yield* one<SetupLinkRow>(
    `UPDATE setup_links SET last_used_at = ? WHERE id = ? AND revoked_at IS NULL AND expires_at > ?
     RETURNING ${setupLinkColumns}`,
    [now, row.id, now],
  );
  if (!used) {
    const current = yield* one<SetupLinkRow>(byHash, [tokenHash]);
    const reason = current ? setupLinkState(current, now) : "unknown";
    return { ok: false, reason: reason === "active" ? "revoked" : reason };
  }
  yield* recordAudit({
    actor: { type: "org_admin", id: `setup-link:${row.id}` },
    organizationId: row.organizationId,
    action: "setup_link.open",
    targetType: "setup_link",
    targetId: row.id,
    after: { ip: who.ip ?? null, userAgent: (who.userAgent ?? "").slice(0, 200) },
    requestId: who.requestId,
    at: now,
  });
  return { ok: true, link: row };
}

/** Revokes one link, or every active link of the organization (`id` undefined). Returns the ids revoked, sorted. */
export function* revokeSetupLinks(organizationId: string, id: string | undefined, change: Change): StoreOp<string[]> {
  const { actor, requestId, at: now } = change;
  let rows: { id: string }[];
  if (id !== undefined) {
    const exists = yield* one<{ id: string }>(`SELECT id FROM setup_links WHERE id = ? AND organization_id = ?`, [
      id,
      organizationId,
    ]);
    if (!exists) throw notFound(`setup link "${id}" not found`);
    rows = yield* many<{ id: string }>(
      `UPDATE setup_links SET revoked_at = ? WHERE organization_id = ? AND id = ? AND revoked_at IS NULL RETURNING id`,
      [now, organizationId, id],
    );
  } else {
    rows = yield* many<{ id: string }>(
      `UPDATE setup_links SET revoked_at = ? WHERE organization_id = ? AND revoked_at IS NULL RETURNING id`,
      [now, organizationId],
    );
  }
  // RETURNING gives no order on PostgreSQL: audit entries and the answer in id order on both.
  const ids = rows.map((r) => r.id).sort();
  for (const revoked of ids)
    yield* recordAudit({
      actor,
      organizationId,
      action: "setup_link.revoke",
      targetType: "setup_link",
      targetId: revoked,
      after: { revokedAt: now },
      requestId,
      at: now,
    });
  return ids;
}
