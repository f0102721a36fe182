import { hash, randomBytes, timingSafeEqual } from "node:crypto";
import type { scimTokens } from "../../db/schema.js";
import { conflict, invalidValue, notFound } from "../errors.js";
import { recordAudit } from "./audit.js";
import { lockDirectory } from "./directories.js";
import { newResourceId } from "./ids.js";
import type { SqlStore } from "./sql.js";
import { exec, many, one, type Statement, type StoreOp } from "./store-op.js";
import type { Change } from "./write-context.js";

/**
 * SCIM bearer tokens (docs/design.md, "Concepts"): 256 random bits, shown once, stored only as a SHA-256 hash, at
 * most two active per directory so that a rotation can overlap, with an optional expiry.
 */
export type ScimTokenRow = typeof scimTokens.$inferSelect;

export const maxActiveTokens = 2;
const tokenPrefix = "scimb_";

/** One-shot SHA-256 (crypto.hash): a third of the cost of createHash().update().digest() for a token. */
export const hashToken = (raw: string): string => hash("sha256", raw, "hex");

const scimTokenColumns = `id, directory_id AS "directoryId", token_hash AS "tokenHash", hint, created_at AS "createdAt",
  expires_at AS "expiresAt", revoked_at AS "revokedAt", last_used_at AS "lastUsedAt"`;

export interface IssuedToken {
  /** The secret. Shown to the operator once; never stored, never logged. */
  token: string;
  record: ScimTokenRow;
  /** Tokens this issue revoked to keep at most two active (a rotation), as they now stand. */
  revoked: ScimTokenRow[];
}

/** Whether a token with this expiry (null: none) has expired at `now`. */
const expiredAt = (expiresAt: number | null, now: number): boolean => expiresAt !== null && expiresAt <= now;

export const isActiveScimToken = (t: Pick<ScimTokenRow, "revokedAt" | "expiresAt">, now: number): boolean =>
  t.revokedAt === null && !expiredAt(t.expiresAt, now);

/** A presented secret worth hashing and looking up: issued tokens are far shorter than the bound. */
const presentable = (raw: string): boolean => raw.length > 0 && raw.length <= 512;

/**
 * Issues a token. When two are already active, `whenFull` says what happens: "rotate" (the default)
 * revokes the oldest so that at most two remain; "refuse" answers 409, so that issuing never cuts off
 * a working IdP. `organizationId`, when given, must be the directory's (another tenant's directory does
 * not exist here).
 *
 * Read-then-write (count the active tokens, then revoke and insert): the directory row is locked
 * first (FOR UPDATE on PostgreSQL), so two instances rotating the same directory run one after the
 * other and the second counts the first one's token. Locking the token rows would not do: at READ
 * COMMITTED the second would not see the row the first inserted.
 */
export function* issueScimToken(
  input: { directoryId: string; organizationId?: string; expiresAt?: number | null },
  change: Change,
  whenFull: "rotate" | "refuse" = "rotate",
): StoreOp<IssuedToken> {
  const { actor, requestId, at: now } = change;
  if (expiredAt(input.expiresAt ?? null, now)) throw invalidValue("token expiry must be in the future");
  const directory = yield* lockDirectory(input.directoryId);
  if (!directory || (input.organizationId !== undefined && directory.organizationId !== input.organizationId))
    throw notFound(`directory "${input.directoryId}" not found`);
  const { organizationId } = directory;
  const active = (yield* listScimTokens(directory.id)).filter((t) => isActiveScimToken(t, now));
  if (whenFull === "refuse" && active.length >= maxActiveTokens)
    throw conflict(`directory "${directory.id}" already has ${maxActiveTokens} active tokens; rotate or revoke one`);
  const revoked: ScimTokenRow[] = [];
  for (const old of active.slice(0, Math.max(0, active.length - (maxActiveTokens - 1)))) {
    revoked.push(
      (yield* one<ScimTokenRow>(`UPDATE scim_tokens SET revoked_at = ? WHERE id = ? RETURNING ${scimTokenColumns}`, [
        now,
        old.id,
      ]))!,
    );
    yield* recordAudit({
      actor,
      organizationId,
      directoryId: directory.id,
      action: "token.revoke",
      targetType: "scim_token",
      targetId: old.id,
      after: { hint: old.hint, reason: "rotation" },
      requestId,
      at: now,
    });
  }
  const token = tokenPrefix + randomBytes(32).toString("base64url");
  const record = (yield* one<ScimTokenRow>(
    `INSERT INTO scim_tokens (id, directory_id, token_hash, hint, created_at, expires_at)
     VALUES (?, ?, ?, ?, ?, ?) RETURNING ${scimTokenColumns}`,
    [newResourceId(), directory.id, hashToken(token), token.slice(-4), now, input.expiresAt ?? null],
  ))!;
  yield* recordAudit({
    actor,
    organizationId,
    directoryId: directory.id,
    action: "token.issue",
    targetType: "scim_token",
    targetId: record.id,
    after: { hint: record.hint, expiresAt: record.expiresAt },
    requestId,
    at: now,
  });
  return { token, record, revoked };
}

/** A directory's tokens, oldest first. */
export function* listScimTokens(directoryId: string): StoreOp<ScimTokenRow[]> {
  return yield* many<ScimTokenRow>(
    `SELECT ${scimTokenColumns} FROM scim_tokens WHERE directory_id = ? ORDER BY created_at, id`,
    [directoryId],
  );
}

/** The tokens of every directory of an organization, oldest first. */
export function* listOrganizationScimTokens(organizationId: string): StoreOp<ScimTokenRow[]> {
  return yield* many<ScimTokenRow>(
    `SELECT ${scimTokenColumns} FROM scim_tokens
     WHERE directory_id IN (SELECT id FROM directories WHERE organization_id = ?) ORDER BY created_at, id`,
    [organizationId],
  );
}

/**
 * Revokes one of a directory's tokens now (idempotent: a revoked token is returned as it is and no
 * audit entry is written). Another directory's token id does not exist here. The update is
 * conditional (revoked_at IS NULL), so of two concurrent revocations only one writes the audit entry.
 */
export function* revokeScimToken(
  target: { organizationId: string; directoryId: string; tokenId: string },
  change: Change,
): StoreOp<ScimTokenRow> {
  const byId = `SELECT ${scimTokenColumns} FROM scim_tokens WHERE id = ? AND directory_id = ?`;
  const token = yield* one<ScimTokenRow>(byId, [target.tokenId, target.directoryId]);
  if (!token) throw notFound(`token "${target.tokenId}" not found`);
  if (token.revokedAt !== null) return token;
  const row = yield* one<ScimTokenRow>(
    `UPDATE scim_tokens SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL RETURNING ${scimTokenColumns}`,
    [change.at, token.id],
  );
  // Revoked meanwhile by another instance: as it now stands, without a second audit entry.
  if (!row) return (yield* one<ScimTokenRow>(byId, [target.tokenId, target.directoryId])) ?? token;
  yield* recordAudit({
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
  });
  return row;
}

/** Who a valid token speaks for. */
export interface ScimPrincipal {
  tokenId: string;
  directoryId: string;
  organizationId: string;
}

const tokenByHash = `SELECT t.id AS id, t.token_hash AS "tokenHash", t.revoked_at AS "revokedAt",
  t.expires_at AS "expiresAt", t.directory_id AS "directoryId", d.organization_id AS "organizationId"
  FROM scim_tokens t JOIN directories d ON d.id = t.directory_id WHERE t.token_hash = ?`;
/**
 * The read every SCIM request makes, as a `value` statement built once (what `yield* value(text)`
 * yields, without a generator and a statement object per request).
 */
const scimTokenEpoch: Statement = Object.freeze({
  kind: "value",
  text: "SELECT epoch FROM credential_epochs WHERE name = 'scim_tokens'",
  params: Object.freeze([]),
});

interface TokenRow {
  id: string;
  tokenHash: string;
  revokedAt: number | null;
  expiresAt: number | null;
  directoryId: string;
  organizationId: string;
}

interface CachedToken {
  principal: ScimPrincipal;
  expiresAt: number | null;
}

/**
 * Valid tokens already checked, keyed by the token's SHA-256, as of one value of the scim_tokens
 * epoch. Every revocation, expiry change or deletion of a token (by this process, the CLI or another
 * instance) moves the epoch in the database in the same transaction (triggers: ./database.ts on
 * SQLite, db/pg/0002_credential_epochs.sql on PostgreSQL); each check reads the epoch (one indexed
 * row) and drops the whole cache when it moved, so revocation takes effect on the very next request.
 * Unknown and invalid tokens are never cached: guessing cannot fill the cache. Expiry is checked
 * against the clock on every hit.
 */
interface TokenCache {
  epoch: number;
  tokens: Map<string, CachedToken>;
}
/** Two active tokens for each of 10,000 directories fit; beyond that the oldest entry goes. */
const maxCachedTokens = 20_000;

/**
 * Resolves a presented token, on every SCIM request: a hash (no lookup of the secret itself), the
 * epoch, then the cache, else the lookup. The lookup is by hash, so the index comparison reveals
 * nothing about the secret; the final check is constant-time anyway (hono bearer-auth does the same).
 *
 * The epoch is read first, so the lookup sees at least what it counted (verifyScimToken). Checks on
 * PostgreSQL can interleave at their awaits: an entry is only stored while the cache is still at the epoch its
 * own check read, so a check that read an older epoch cannot leave a revoked token in the cache.
 */
function* checkScimToken(cache: TokenCache, raw: string, now: number): StoreOp<ScimPrincipal | undefined> {
  if (!presentable(raw)) return undefined;
  const presented = hashToken(raw);
  const epoch = ((yield scimTokenEpoch) as number | undefined) ?? 0;
  if (cache.epoch !== epoch) {
    cache.epoch = epoch;
    cache.tokens.clear();
  }
  const hit = cache.tokens.get(presented);
  if (hit) return expiredAt(hit.expiresAt, now) ? undefined : hit.principal;
  const row = yield* one<TokenRow>(tokenByHash, [presented]);
  if (!row) return undefined;
  if (!timingSafeEqual(Buffer.from(row.tokenHash, "hex"), Buffer.from(presented, "hex"))) return undefined;
  if (!isActiveScimToken(row, now)) return undefined;
  const principal = Object.freeze({
    tokenId: row.id,
    directoryId: row.directoryId,
    organizationId: row.organizationId,
  });
  if (cache.epoch === epoch) {
    if (cache.tokens.size >= maxCachedTokens) cache.tokens.delete(cache.tokens.keys().next().value!);
    cache.tokens.set(presented, { principal, expiresAt: row.expiresAt });
  }
  return principal;
}

/** A token check with a cache of its own: one per store (per process and database). */
export type ScimTokenVerifier = (raw: string, now?: number) => StoreOp<ScimPrincipal | undefined>;

const newTokenCache = (): TokenCache => ({ epoch: -1, tokens: new Map() });

export function scimTokenVerifier(): ScimTokenVerifier {
  const cache = newTokenCache();
  return (raw, now = Date.now()) => checkScimToken(cache, raw, now);
}

/**
 * One token cache per store (per process and database). Correct with several instances on one
 * PostgreSQL database although another instance may revoke, expire or delete a cached token: every
 * check reads the scim_tokens epoch before the lookup, and any such change moves the
 * epoch in its own transaction, so revocation takes effect on the very next request of every instance.
 */
const caches = new WeakMap<SqlStore, TokenCache>();
const cacheOf = (store: SqlStore): TokenCache => {
  let cache = caches.get(store);
  if (!cache) caches.set(store, (cache = newTokenCache()));
  return cache;
};

/**
 * The token check of a SCIM request, with that store's cache: the epoch, then the cache or the
 * lookup. They need no common snapshot (`readCommitted`): the lookup runs after the epoch read, so it
 * sees every change the epoch counted and maybe later ones; a later change moves the epoch past the
 * value the entry is cached under, and the next check drops it.
 */
export function verifyScimToken(store: SqlStore, raw: string, now = Date.now()): Promise<ScimPrincipal | undefined> {
  const cache = cacheOf(store);
  return store.readCommitted(checkScimToken(cache, raw, now));
}

/**
 * A token's principal from the store's cache alone, with the epoch it is cached under, or undefined
 * when the cache does not hold it (or it expired). Not a check by itself: the epoch may have moved
 * since. A request authenticated this way reads the epoch in its own first statement and compares
 * (getUserAtEpoch); only that saves its round trip on PostgreSQL.
 */
export function cachedScimToken(
  store: SqlStore,
  raw: string,
  now = Date.now(),
): { principal: ScimPrincipal; epoch: number } | undefined {
  const cache = caches.get(store);
  if (!cache || cache.epoch === -1 || !presentable(raw)) return undefined;
  const hit = cache.tokens.get(hashToken(raw));
  if (!hit || expiredAt(hit.expiresAt, now)) return undefined;
  return { principal: hit.principal, epoch: cache.epoch };
}

/** The scim_tokens epoch moved since a request's token was taken from the cache: check the token again. */
export class CredentialEpochMoved extends Error {
  constructor() {
    super("the SCIM token epoch moved since the token was cached");
  }
}

/** The scim_tokens epoch as a subquery (0 before any change), for a statement that confirms it. */
export const scimTokenEpochValue = "COALESCE((SELECT epoch FROM credential_epochs WHERE name = 'scim_tokens'), 0)";

/** Records the token's last use (bookkeeping: does not move the credential epoch). */
export function* touchScimToken(tokenId: string, now = Date.now()): StoreOp<void> {
  yield* exec("UPDATE scim_tokens SET last_used_at = ? WHERE id = ?", [now, tokenId]);
}
