import type { RequestHandler } from "express";
import type { Logger } from "pino";
import { appendScimRequestLog, type NewScimRequestLogEntry } from "../directory/scim-request-log.js";
import type { SqlStore } from "../directory/sql.js";
import { groupSchema, resolveAttribute, userSchema } from "../scim/schema.js";

/**
 * The last SCIM requests per directory, so that a customer can debug its IdP setup itself
 * through the admin API: method, path, status, and for errors the SCIM scimType and detail.
 *
 * What is kept, and why:
 * - the path below the directory's base URL (`/Users/<id>`: ids are ours, not personal data), and of
 *   the query string only the parameter NAMES (`/Users?filter&count`): filter values carry userNames
 *   and emails (RFC 7644 §7.5.1 PII), which a debugging log has no need to retain;
 * - authenticated requests only: whoever knows a directory's URL could otherwise fill its log with
 *   401s and, through the trim, wipe the real entries. Failed authentications are counted in
 *   /metrics (scim_bridge_unauthenticated_requests_total) and throttled per client address;
 * - for errors, the detail with every quoted text replaced by "…" unless it names a schema attribute:
 *   details quote filter values, paths and ids, and the log keeps no request values.
 *
 * Cost on the SCIM path: rows are buffered in memory and written in one unit of the bookkeeping
 * store every
 * `flushIntervalMs` (a debugging log may lose its last fraction of a second in a crash; the audit
 * trail, written with each change, may not). Each directory keeps its last `keepPerDirectory` rows,
 * trimmed every `trimEvery` inserts for that directory rather than on every request.
 */
export interface ScimRequestLogOptions {
  flushIntervalMs?: number;
  /** Buffered rows that trigger an immediate flush. */
  maxBuffered?: number;
  keepPerDirectory?: number;
  trimEvery?: number;
  log?: Logger;
  now?: () => number;
}

export type ScimRequestLogRow = NewScimRequestLogEntry;

export interface ScimRequestLogMiddleware extends RequestHandler {
  /**
   * Writes buffered rows now (tests, shutdown); never rejects. On SQLite the rows are committed when
   * it returns.
   */
  flush(): Promise<void>;
  /** Flushes and stops the timer. */
  close(): Promise<void>;
}

const maxDetail = 500;
const maxPath = 512;
const basePath = /^\/scim\/v2\/([^/?#]+)(\/[^?#]*)?(?:\?([^#]*))?/;

/** `/scim/v2/dir-1/Users?filter=…&count=5` → `/Users?filter&count`. */
export function loggedPath(originalUrl: string): string {
  const m = basePath.exec(originalUrl);
  const path = m ? (m[2] ?? "/") : (originalUrl.split("?")[0] ?? "/");
  const names = m?.[3] ? [...new Set([...new URLSearchParams(m[3]).keys()])] : [];
  const out = names.length > 0 ? `${path}?${names.join("&")}` : path;
  return out.length > maxPath ? `${out.slice(0, maxPath - 1)}…` : out;
}

const isSchemaAttributeName = (text: string): boolean =>
  /^[A-Za-z$][\w$.:-]*$/.test(text) &&
  (resolveAttribute(userSchema, text) !== undefined || resolveAttribute(groupSchema, text) !== undefined);

const quoted = /"((?:[^"\\]|\\.)*)"/g;

/**
 * A detail without request values: quoted text stays only when it names a schema attribute
 * ("emails", "name.givenName", an extension URN), which helps debugging and is no one's data.
 */
export function redactDetail(detail: string, isAttributeName: (text: string) => boolean): string {
  return detail.replace(quoted, (whole, inner: string) =>
    inner.length <= 200 && isAttributeName(inner) ? whole : '"…"',
  );
}

/** scimType and detail of a SCIM Error body (RFC 7644 §3.12), if the body is one. */
function errorFields(body: unknown): { scimType: string | null; detail: string | null } {
  let parsed: unknown = body;
  if (typeof body === "string" || Buffer.isBuffer(body)) {
    const text = body.toString();
    if (text.length > 65_536) return { scimType: null, detail: null };
    try {
      parsed = JSON.parse(text);
    } catch {
      return { scimType: null, detail: null };
    }
  }
  if (typeof parsed !== "object" || parsed === null) return { scimType: null, detail: null };
  const e = parsed as { scimType?: unknown; detail?: unknown; message?: unknown };
  const detail = typeof e.detail === "string" ? e.detail : typeof e.message === "string" ? e.message : null;
  const safe = detail === null ? null : redactDetail(detail, isSchemaAttributeName);
  return {
    scimType: typeof e.scimType === "string" ? e.scimType : null,
    detail: safe === null ? null : safe.length > maxDetail ? `${safe.slice(0, maxDetail - 1)}…` : safe,
  };
}

export function scimRequestLog(store: SqlStore, options: ScimRequestLogOptions = {}): ScimRequestLogMiddleware {
  const flushIntervalMs = options.flushIntervalMs ?? 250;
  const maxBuffered = options.maxBuffered ?? 500;
  const keep = options.keepPerDirectory ?? 1000;
  const trimEvery = options.trimEvery ?? 100;
  const now = options.now ?? Date.now;
  let buffer: ScimRequestLogRow[] = [];
  let timer: NodeJS.Timeout | undefined;
  const sinceTrim = new Map<string, number>();

  // The writes under way, one after another: flush (and close) resolve once every row buffered
  // before the call is stored, also when a timer's write is still running (on PostgreSQL a write
  // takes round trips; a close that did not wait would end the pool under it).
  let written: Promise<void> = Promise.resolve();
  const flush = (): Promise<void> => {
    clearTimeout(timer);
    timer = undefined;
    if (buffer.length === 0) return written;
    const rows = buffer;
    buffer = [];
    for (const row of rows) sinceTrim.set(row.directoryId, (sinceTrim.get(row.directoryId) ?? 0) + 1);
    const trim: string[] = [];
    for (const [directoryId, n] of sinceTrim) {
      if (n < trimEvery) continue;
      sinceTrim.set(directoryId, 0);
      trim.push(directoryId);
    }
    written = written.then(async () => {
      try {
        await store.write(appendScimRequestLog(rows, trim, keep));
      } catch (err) {
        // Losing debugging rows must never fail or slow a SCIM request.
        options.log?.warn({ err, rows: rows.length }, "could not write the SCIM request log");
      }
    });
    return written;
  };

  const middleware = ((req, res, next) => {
    const started = now();
    let errorBody: unknown;
    const send = res.send.bind(res);
    res.send = (body?: unknown) => {
      if (res.statusCode >= 400 && errorBody === undefined) errorBody = body;
      return send(body);
    };
    res.on("finish", () => {
      const directoryId = res.locals.scim?.directoryId;
      if (!directoryId) return;
      const fields = res.statusCode >= 400 ? errorFields(errorBody) : { scimType: null, detail: null };
      buffer.push({
        directoryId,
        at: started,
        method: req.method,
        path: loggedPath(req.originalUrl),
        status: res.statusCode,
        scimType: fields.scimType,
        detail: fields.detail,
        requestId: res.locals.requestId ?? null,
        durationMs: Math.max(0, Math.round(now() - started)),
      });
      if (buffer.length >= maxBuffered) void flush();
      else timer ??= setTimeout(() => void flush(), flushIntervalMs).unref();
    });
    next();
  }) as ScimRequestLogMiddleware;
  middleware.flush = flush;
  middleware.close = flush;
  return middleware;
}
