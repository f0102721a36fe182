import type { consoleSessions } from "../../db/schema.js";
import { exec, one, type StoreOp } from "./store-op.js";

/**
 * The web console's server-side sessions (src/console/session.ts holds the cookie and the rules):
 * only an HMAC of the session id is stored, with who the session speaks for as JSON.
 */
export type ConsoleSessionRow = typeof consoleSessions.$inferSelect;

const consoleSessionColumns = `id_hash AS "idHash", principal, csrf_token AS "csrfToken", created_at AS "createdAt",
  last_seen_at AS "lastSeenAt", expires_at AS "expiresAt"`;

/** The session row stored under `idHash`, as it is (expired or not): for a read unit. */
export function* findConsoleSession(idHash: string): StoreOp<ConsoleSessionRow | undefined> {
  return yield* one<ConsoleSessionRow>(`SELECT ${consoleSessionColumns} FROM console_sessions WHERE id_hash = ?`, [
    idHash,
  ]);
}

/** Whether loadConsoleSession would write (delete the expired session or move last-seen) at `now`. */
export const consoleSessionNeedsWrite = (row: ConsoleSessionRow, now: number, idleMs: number): boolean =>
  row.expiresAt <= now || row.lastSeenAt + idleMs <= now || now - row.lastSeenAt >= 60_000;

/**
 * The live session stored under `idHash`, or undefined. A session past its absolute lifetime or idle
 * for `idleMs` is deleted; last-seen moves at most once a minute (the idle timeout needs no finer
 * grain, and a durable write per page view costs an fsync).
 */
export function* loadConsoleSession(
  idHash: string,
  now: number,
  idleMs: number,
): StoreOp<ConsoleSessionRow | undefined> {
  const row = yield* findConsoleSession(idHash);
  if (!row) return undefined;
  if (row.expiresAt <= now || row.lastSeenAt + idleMs <= now) {
    yield* deleteConsoleSession(idHash);
    return undefined;
  }
  if (now - row.lastSeenAt >= 60_000) {
    // Never backwards: a concurrent request on another instance may have moved it further already.
    yield* exec("UPDATE console_sessions SET last_seen_at = ? WHERE id_hash = ? AND last_seen_at < ?", [
      now,
      idHash,
      now,
    ]);
  }
  return row;
}

/**
 * Stores a new session, ending `previousIdHash` (no session fixation) and sweeping expired rows:
 * sign-ins are rare, and each sweep is one indexed delete, so no timer is needed.
 */
export function* startConsoleSession(row: ConsoleSessionRow, previousIdHash?: string): StoreOp<void> {
  if (previousIdHash !== undefined) yield* deleteConsoleSession(previousIdHash);
  yield* exec("DELETE FROM console_sessions WHERE expires_at < ?", [row.createdAt]);
  yield* exec(
    `INSERT INTO console_sessions (id_hash, principal, csrf_token, created_at, last_seen_at, expires_at)
     VALUES (?, ?, ?, ?, ?, ?)`,
    [row.idHash, row.principal, row.csrfToken, row.createdAt, row.lastSeenAt, row.expiresAt],
  );
}

/** Replaces who the session speaks for (JSON text). */
export function* updateConsoleSessionPrincipal(idHash: string, principal: string): StoreOp<void> {
  yield* exec("UPDATE console_sessions SET principal = ? WHERE id_hash = ?", [principal, idHash]);
}

export function* deleteConsoleSession(idHash: string): StoreOp<void> {
  yield* exec("DELETE FROM console_sessions WHERE id_hash = ?", [idHash]);
}
