/**
 * The per-directory SCIM request log (scim_request_log): rows written in batches by
 * src/http/scim-request-log.ts, trimmed to the newest rows of each directory, read by the admin API.
 */
import type { scimRequestLog } from "../../db/schema.js";
import { exec, many, type StoreOp } from "./store-op.js";

export type ScimRequestLogEntry = typeof scimRequestLog.$inferSelect;
export type NewScimRequestLogEntry = typeof scimRequestLog.$inferInsert;

// One fixed text, run per row: a multi-row INSERT built per batch would be a new statement each time.
const insertRow = `INSERT INTO scim_request_log (directory_id, at, method, path, status, scim_type, detail, request_id,
  duration_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`;

/** Appends a batch of rows. */
export function* insertScimRequestLog(rows: readonly NewScimRequestLogEntry[]): StoreOp<void> {
  for (const r of rows)
    yield* exec(insertRow, [
      r.directoryId,
      r.at,
      r.method,
      r.path,
      r.status,
      r.scimType ?? null,
      r.detail ?? null,
      r.requestId ?? null,
      r.durationMs,
    ]);
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
