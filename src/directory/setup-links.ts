import { createHash, randomBytes } from "node:crypto";
import { and, desc, eq, isNull } from "drizzle-orm";
import { setupLinks } from "../../db/schema.js";
import { invalidValue, notFound } from "../errors.js";
import { recordAudit } from "./audit.js";
import type { Change } from "./write-context.js";
import type { DbOrTx } from "./database.js";
import { newResourceId } from "./ids.js";
import { runSync } from "./store-op.js";

/**
 * Self-service setup links: an operator gives a customer's IT admin, who has no account, a link that
 * lets them set up one organization's directories (SCIM base URL, token, guided IdP steps) and nothing
 * else. The token is 256 random bits shown once; only its SHA-256 is stored. A link can be opened
 * again until it expires or is revoked (an IdP setup often takes more than one sitting), and every
 * opening is audited.
 */
export type SetupLinkRow = typeof setupLinks.$inferSelect;

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

export function createSetupLink(tx: DbOrTx, input: { organizationId: string; lifetimeMs: number }, change: Change) {
  const { actor, requestId, at: now } = change;
  const token = tokenPrefix + randomBytes(32).toString("base64url");
  const record = tx
    .insert(setupLinks)
    .values({
      id: newResourceId(),
      tokenHash: hashSetupToken(token),
      organizationId: input.organizationId,
      createdBy: `${actor.type}:${actor.id}`,
      createdAt: now,
      expiresAt: now + input.lifetimeMs,
    })
    .returning()
    .get();
  runSync(
    tx,
    recordAudit({
      actor,
      organizationId: input.organizationId,
      action: "setup_link.create",
      targetType: "setup_link",
      targetId: record.id,
      after: { expiresAt: record.expiresAt },
      requestId,
      at: now,
    }),
  );
  return { token, record };
}

export function listSetupLinks(db: DbOrTx, organizationId: string): SetupLinkRow[] {
  return db
    .select()
    .from(setupLinks)
    .where(eq(setupLinks.organizationId, organizationId))
    .orderBy(desc(setupLinks.createdAt))
    .all();
}

export const setupLinkState = (l: SetupLinkRow, now: number): "active" | "expired" | "revoked" =>
  l.revokedAt !== null ? "revoked" : l.expiresAt <= now ? "expired" : "active";

/** Whether the link behind a setup session still works (checked on every request of that session). */
export function setupLinkUsable(db: DbOrTx, linkId: string, now = Date.now()): boolean {
  const row = db.select().from(setupLinks).where(eq(setupLinks.id, linkId)).get();
  return row !== undefined && setupLinkState(row, now) === "active";
}

/** Opens a link: the link when it works (the use is audited), else why not. */
export function redeemSetupLink(
  tx: DbOrTx,
  raw: string,
  who: { ip?: string; userAgent?: string; requestId?: string | null },
  now = Date.now(),
): { ok: true; link: SetupLinkRow } | { ok: false; reason: "unknown" | "expired" | "revoked" } {
  if (raw.length === 0 || raw.length > 200) return { ok: false, reason: "unknown" };
  const row = tx
    .select()
    .from(setupLinks)
    .where(eq(setupLinks.tokenHash, hashSetupToken(raw)))
    .get();
  if (!row) return { ok: false, reason: "unknown" };
  const state = setupLinkState(row, now);
  if (state !== "active") return { ok: false, reason: state };
  tx.update(setupLinks).set({ lastUsedAt: now }).where(eq(setupLinks.id, row.id)).run();
  runSync(
    tx,
    recordAudit({
      actor: { type: "org_admin", id: `setup-link:${row.id}` },
      organizationId: row.organizationId,
      action: "setup_link.open",
      targetType: "setup_link",
      targetId: row.id,
      after: { ip: who.ip ?? null, userAgent: (who.userAgent ?? "").slice(0, 200) },
      requestId: who.requestId,
      at: now,
    }),
  );
  return { ok: true, link: row };
}

/** Revokes one link, or every active link of the organization (`id` undefined). Returns the ids revoked. */
export function revokeSetupLinks(tx: DbOrTx, organizationId: string, id: string | undefined, change: Change): string[] {
  const { actor, requestId, at: now } = change;
  if (
    id !== undefined &&
    !tx
      .select()
      .from(setupLinks)
      .where(and(eq(setupLinks.id, id), eq(setupLinks.organizationId, organizationId)))
      .get()
  ) {
    throw notFound(`setup link "${id}" not found`);
  }
  const rows = tx
    .update(setupLinks)
    .set({ revokedAt: now })
    .where(
      and(
        eq(setupLinks.organizationId, organizationId),
        isNull(setupLinks.revokedAt),
        id !== undefined ? eq(setupLinks.id, id) : undefined,
      ),
    )
    .returning({ id: setupLinks.id })
    .all();
  for (const r of rows)
    runSync(
      tx,
      recordAudit({
        actor,
        organizationId,
        action: "setup_link.revoke",
        targetType: "setup_link",
        targetId: r.id,
        after: { revokedAt: now },
        requestId,
        at: now,
      }),
    );
  return rows.map((r) => r.id);
}
