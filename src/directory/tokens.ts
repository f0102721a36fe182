import { hash, randomBytes, timingSafeEqual } from "node:crypto";
import type Database from "better-sqlite3";
import { and, asc, eq, isNull } from "drizzle-orm";
import { scimTokens } from "../../db/schema.js";
import { invalidValue, notFound } from "../errors.js";
import { recordAudit } from "./audit.js";
import { prepareOwn, type DbOrTx } from "./database.js";
import { newResourceId } from "./ids.js";
import { connectionOf } from "./statements.js";
import type { Change } from "./write-context.js";
import { runSync } from "./store-op.js";

/**
 * SCIM bearer tokens (docs/design.md, "Concepts"): 256 random bits, shown once, stored only as a SHA-256 hash, at
 * most two active per directory so that a rotation can overlap, with an optional expiry.
 */
export type ScimTokenRow = typeof scimTokens.$inferSelect;

export const maxActiveTokens = 2;
const tokenPrefix = "scimb_";

/** One-shot SHA-256 (crypto.hash): a third of the cost of createHash().update().digest() for a token. */
export const hashToken = (raw: string): string => hash("sha256", raw, "hex");

export interface IssuedToken {
  /** The secret. Shown to the operator once; never stored, never logged. */
  token: string;
  record: ScimTokenRow;
  /** Tokens this issue revoked to keep at most two active (a rotation), as they now stand. */
  revoked: ScimTokenRow[];
}

export const isActiveScimToken = (t: ScimTokenRow, now: number): boolean =>
  t.revokedAt === null && (t.expiresAt === null || t.expiresAt > now);

/** Issues a token; when two are already active, the oldest is revoked so that at most two remain. */
export function issueScimToken(
  tx: DbOrTx,
  input: { directoryId: string; organizationId: string; expiresAt?: number | null },
  change: Change,
): IssuedToken {
  const { actor, requestId, at: now } = change;
  if (input.expiresAt != null && input.expiresAt <= now) throw invalidValue("token expiry must be in the future");
  const active = listScimTokens(tx, input.directoryId).filter((t) => isActiveScimToken(t, now));
  const revoked: ScimTokenRow[] = [];
  for (const old of active.slice(0, Math.max(0, active.length - (maxActiveTokens - 1)))) {
    revoked.push(tx.update(scimTokens).set({ revokedAt: now }).where(eq(scimTokens.id, old.id)).returning().get());
    runSync(
      tx,
      recordAudit({
        actor,
        organizationId: input.organizationId,
        directoryId: input.directoryId,
        action: "token.revoke",
        targetType: "scim_token",
        targetId: old.id,
        after: { hint: old.hint, reason: "rotation" },
        requestId,
        at: now,
      }),
    );
  }
  const token = tokenPrefix + randomBytes(32).toString("base64url");
  const record = tx
    .insert(scimTokens)
    .values({
      id: newResourceId(),
      directoryId: input.directoryId,
      tokenHash: hashToken(token),
      hint: token.slice(-4),
      createdAt: now,
      expiresAt: input.expiresAt ?? null,
    })
    .returning()
    .get();
  runSync(
    tx,
    recordAudit({
      actor,
      organizationId: input.organizationId,
      directoryId: input.directoryId,
      action: "token.issue",
      targetType: "scim_token",
      targetId: record.id,
      after: { hint: record.hint, expiresAt: record.expiresAt },
      requestId,
      at: now,
    }),
  );
  return { token, record, revoked };
}

export function listScimTokens(db: DbOrTx, directoryId: string): ScimTokenRow[] {
  return db
    .select()
    .from(scimTokens)
    .where(eq(scimTokens.directoryId, directoryId))
    .orderBy(asc(scimTokens.createdAt))
    .all();
}

/**
 * Revokes one of a directory's tokens now (idempotent: a revoked token is returned as it is and no
 * audit entry is written). Another directory's token id does not exist here.
 */
export function revokeScimToken(
  tx: DbOrTx,
  target: { organizationId: string; directoryId: string; tokenId: string },
  change: Change,
): ScimTokenRow {
  const token = tx
    .select()
    .from(scimTokens)
    .where(and(eq(scimTokens.id, target.tokenId), eq(scimTokens.directoryId, target.directoryId)))
    .get();
  if (!token) throw notFound(`token "${target.tokenId}" not found`);
  if (token.revokedAt !== null) return token;
  const row = tx
    .update(scimTokens)
    .set({ revokedAt: change.at })
    .where(and(eq(scimTokens.id, token.id), isNull(scimTokens.revokedAt)))
    .returning()
    .get();
  runSync(
    tx,
    recordAudit({
      actor: change.actor,
      organizationId: target.organizationId,
      directoryId: target.directoryId,
      action: "token.revoke",
      targetType: "scim_token",
      targetId: token.id,
      before: { hint: token.hint, revokedAt: null },
      after: { hint: token.hint, revokedAt: change.at },
      requestId: change.requestId,
      at: change.at,
    }),
  );
  return row;
}

/** Who a valid token speaks for. */
export interface ScimPrincipal {
  tokenId: string;
  directoryId: string;
  organizationId: string;
}

const tokenByHash = `SELECT t.id AS id, t.token_hash AS tokenHash, t.revoked_at AS revokedAt, t.expires_at AS expiresAt,
  t.directory_id AS directoryId, d.organization_id AS organizationId
  FROM scim_tokens t JOIN directories d ON d.id = t.directory_id WHERE t.token_hash = ?`;
const scimTokenEpoch = "SELECT epoch FROM credential_epochs WHERE name = 'scim_tokens'";

interface CachedToken {
  principal: ScimPrincipal;
  expiresAt: number | null;
}

/**
 * Valid tokens already checked, per connection, keyed by the token's SHA-256, as of one value of the
 * scim_tokens epoch. Every revocation, expiry change or deletion of a token (by this process, the CLI
 * or another instance) moves the epoch in the database in the same transaction (triggers, see
 * ./database.ts); each request reads the epoch (one indexed row) and drops the whole cache when it
 * moved, so revocation takes effect on the very next request. Unknown and invalid tokens are never
 * cached: guessing cannot fill the cache. Expiry is checked against the clock on every hit.
 */
interface TokenCache {
  /** Prepared once per connection: the read every request makes. */
  epochOf: Database.Statement<[], number>;
  lookup: Database.Statement<[string], TokenRow>;
  epoch: number;
  tokens: Map<string, CachedToken>;
}
interface TokenRow {
  id: string;
  tokenHash: string;
  revokedAt: number | null;
  expiresAt: number | null;
  directoryId: string;
  organizationId: string;
}
const tokenCaches = new WeakMap<Database.Database, TokenCache>();
/** Two active tokens for each of 10,000 directories fit; beyond that the oldest entry goes. */
const maxCachedTokens = 20_000;

function tokenCacheOf(db: DbOrTx): TokenCache {
  const client = connectionOf(db);
  let cache = tokenCaches.get(client);
  if (!cache) {
    // Statements of their own (not the connection's shared cache), so no other caller can change their mode.
    // pluck(): the epoch itself, without a row object per request.
    const epochOf = (prepareOwn(client, scimTokenEpoch) as Database.Statement<[], number>).pluck();
    const lookup = prepareOwn(client, tokenByHash) as Database.Statement<[string], TokenRow>;
    cache = { epochOf, lookup, epoch: -1, tokens: new Map() };
    tokenCaches.set(client, cache);
  }
  const epoch = cache.epochOf.get() ?? 0;
  if (cache.epoch !== epoch) {
    cache.epoch = epoch;
    cache.tokens.clear();
  }
  return cache;
}

/**
 * Resolves a presented token, on every SCIM request: a hash (no lookup of the secret itself) then the
 * cache, else a cached statement. The lookup is by hash, so the index comparison reveals nothing about
 * the secret; the final check is constant-time anyway (hono bearer-auth does the same).
 */
export function verifyScimToken(db: DbOrTx, raw: string, now = Date.now()): ScimPrincipal | undefined {
  if (raw.length === 0 || raw.length > 512) return undefined;
  const presented = hashToken(raw);
  const cache = tokenCacheOf(db);
  const hit = cache.tokens.get(presented);
  if (hit) return hit.expiresAt !== null && hit.expiresAt <= now ? undefined : hit.principal;
  const row = cache.lookup.get(presented);
  if (!row) return undefined;
  if (!timingSafeEqual(Buffer.from(row.tokenHash, "hex"), Buffer.from(presented, "hex"))) return undefined;
  if (row.revokedAt !== null || (row.expiresAt !== null && row.expiresAt <= now)) return undefined;
  const principal = Object.freeze({
    tokenId: row.id,
    directoryId: row.directoryId,
    organizationId: row.organizationId,
  });
  if (cache.tokens.size >= maxCachedTokens) cache.tokens.delete(cache.tokens.keys().next().value!);
  cache.tokens.set(presented, { principal, expiresAt: row.expiresAt });
  return principal;
}

export function touchScimToken(db: DbOrTx, tokenId: string, now = Date.now()): void {
  db.update(scimTokens).set({ lastUsedAt: now }).where(eq(scimTokens.id, tokenId)).run();
}
