/**
 * The per-directory SCIM request log (scim_request_log): rows written in batches by
 * src/http/scim-request-log.ts, trimmed to the newest rows of each directory, read by the admin API.
 */
import type { scimRequestLog } from "../../db/schema.js";
import { dialect, exec, many, type StoreOp } from "./store-op.js";
import { storableText } from "./text.js";

export type ScimRequestLogEntry = typeof scimRequestLog.$inferSelect;
export type NewScimRequestLogEntry = typeof scimRequestLog.$inferInsert;

// One fixed text, run per row: a multi-row INSERT built per batch would be a new statement each time.
const insertRow = `INSERT INTO scim_request_log (directory_id, at, method, path, status, scim_type, detail, request_id,
  duration_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`;

// PostgreSQL: the whole batch as one JSON parameter, one statement and one round trip whatever its
// size (the text stays fixed, so it stays prepared); in the batch's order, which the ids keep.
const insertRowsPg = `INSERT INTO scim_request_log (directory_id, at, method, path, status, scim_type, detail, request_id,
  duration_ms)
  SELECT r.d, r.a, r.m, r.p, r.s, r.t, r.x, r.q, r.u
  FROM ROWS FROM (json_to_recordset(CAST(? AS json))
    AS (d text, a bigint, m text, p text, s int, t text, x text, q text, u int)) WITH ORDINALITY AS r(d, a, m, p, s, t, x, q, u, n)
  ORDER BY r.n`;

/** Appends a batch of rows. */
export function* insertScimRequestLog(rows: readonly NewScimRequestLogEntry[]): StoreOp<void> {
  if (rows.length === 0) return;
  // A path or request id as the client sent it may hold what PostgreSQL's text or JSON input
  // refuses, which would lose the whole batch: such characters are replaced, on both stores alike.
  const text = (v: string | null | undefined) => (v == null ? null : storableText(v));
  const batch = rows.map((r) => ({
    d: r.directoryId,
    a: r.at,
    m: text(r.method),
    p: text(r.path),
    s: r.status,
    t: text(r.scimType),
    x: text(r.detail),
    q: text(r.requestId),
    u: r.durationMs,
  }));
  if ((yield* dialect()) === "postgres") {
    yield* exec(insertRowsPg, [JSON.stringify(batch)]);
    return;
  }
  // SQLite: a statement per row costs no round trip.
  for (const r of batch) yield* exec(insertRow, [r.d, r.a, r.m, r.p, r.s, r.t, r.x, r.q, r.u]);
}

/**
 * Keeps the directory's newest `keep` rows: deletes everything at or below the id of the row just
 * past them (an index range on (directory_id, id); no row to delete when there are `keep` or fewer).
 */
export function* trimScimRequestLog(directoryId: string, keep: number): StoreOp<number> {
  return yield* exec(
    `DELETE FROM scim_request_log WHERE directory_id = ? AND id <= (
       SELECT id FROM scim_request_log WHERE directory_id = ? ORDER BY id DESC LIMIT 1 OFFSET ?)`,
    [directoryId, directoryId, keep],
  );
}

const columns = `id, directory_id AS "directoryId", at, method, path, status, scim_type AS "scimType", detail,
  request_id AS "requestId", duration_ms AS "durationMs"`;

/** The directory's last `limit` requests, newest first; optionally only answers with status 400 or above. */
export function* listScimRequestLog(
  directoryId: string,
  options: { limit: number; errorsOnly?: boolean },
): StoreOp<ScimRequestLogEntry[]> {
  return options.errorsOnly
    ? yield* many<ScimRequestLogEntry>(
        `SELECT ${columns} FROM scim_request_log WHERE directory_id = ? AND status >= 400 ORDER BY id DESC LIMIT ?`,
        [directoryId, options.limit],
      )
    : yield* many<ScimRequestLogEntry>(
        `SELECT ${columns} FROM scim_request_log WHERE directory_id = ? ORDER BY id DESC LIMIT ?`,
        [directoryId, options.limit],
      );
}

/** A flush of the request log: its buffered rows, then the trim of each directory that is due, in one unit. */
export function* appendScimRequestLog(
  rows: readonly NewScimRequestLogEntry[],
  trim: readonly string[],
  keep: number,
): StoreOp<void> {
  yield* insertScimRequestLog(rows);
  for (const directoryId of trim) yield* trimScimRequestLog(directoryId, keep);
}
