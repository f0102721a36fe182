/**
 * Auth0's two paging styles (Auth0 Management API v2 reference, auth0.com/docs/api/management/v2):
 * - offset: `page` (0-based), `per_page` (max 50 on Public Cloud, default half of it), and with
 *   `include_totals=true` a wrapper `{<key>[], start, limit, total}`, else a bare array; past the
 *   end, an empty page.
 * - checkpoint: `from` (opaque, forward-only, valid 24 h) and `take` (max 50); the response is
 *   `{<key>[], next?}` with `next` only while more results remain.
 */
import { ApiError, invalidQuery } from "./errors.js";

export const MAX_PER_PAGE = 50;
export const DEFAULT_PER_PAGE = 25;
const CHECKPOINT_TTL_MS = 24 * 60 * 60 * 1000;

export interface OffsetPage {
  page: number;
  perPage: number;
  includeTotals: boolean;
}

function intParam(query: URLSearchParams, name: string, min: number, max: number): number | undefined {
  const raw = query.get(name);
  if (raw === null || raw === "") return undefined;
  if (!/^-?\d+$/.test(raw)) throw invalidQuery(`'Expected type integer but found type string' on property ${name}.`);
  const value = Number(raw);
  if (value < min) throw invalidQuery(`'Value ${value} is less than minimum ${min}' on property ${name}.`);
  if (value > max) throw invalidQuery(`'Value ${value} is greater than maximum ${max}' on property ${name}.`);
  return value;
}

export function boolParam(query: URLSearchParams, name: string): boolean | undefined {
  const raw = query.get(name);
  if (raw === null || raw === "") return undefined;
  if (raw === "true") return true;
  if (raw === "false") return false;
  throw invalidQuery(`'Expected type boolean but found type string' on property ${name}.`);
}

export function parseOffset(query: URLSearchParams): OffsetPage {
  return {
    page: intParam(query, "page", 0, Number.MAX_SAFE_INTEGER) ?? 0,
    perPage: intParam(query, "per_page", 0, MAX_PER_PAGE) ?? DEFAULT_PER_PAGE,
    includeTotals: boolParam(query, "include_totals") ?? false,
  };
}

/** `withLength` adds the `length` field that GET /users returns. */
export function offsetReply<T>(key: string, all: T[], p: OffsetPage, withLength = false): unknown {
  const start = p.page * p.perPage;
  const items = all.slice(start, start + p.perPage);
  if (!p.includeTotals) return items;
  return { start, limit: p.perPage, ...(withLength ? { length: items.length } : {}), total: all.length, [key]: items };
}

export interface Checkpoint {
  /** Key of the last item already returned. */
  after?: string;
  take: number;
}

export function isCheckpointRequest(query: URLSearchParams): boolean {
  return query.has("from") || query.has("take");
}

export function parseCheckpoint(query: URLSearchParams, now = Date.now()): Checkpoint {
  const take = intParam(query, "take", 1, MAX_PER_PAGE) ?? MAX_PER_PAGE;
  const from = query.get("from");
  if (!from) return { take };
  try {
    const decoded = JSON.parse(Buffer.from(from, "base64url").toString("utf8")) as { k?: unknown; t?: unknown };
    if (typeof decoded.k !== "string" || typeof decoded.t !== "number") throw new Error("shape");
    if (now - decoded.t > CHECKPOINT_TTL_MS)
      throw new ApiError(400, "Query validation error: the checkpoint in 'from' has expired.", "invalid_query_string");
    return { after: decoded.k, take };
  } catch (err) {
    if (err instanceof ApiError) throw err;
    throw invalidQuery("'from' is not a valid checkpoint.");
  }
}

/** `all` must already be sorted by `keyOf`. */
export function checkpointReply<T>(
  key: string,
  all: T[],
  keyOf: (item: T) => string,
  cp: Checkpoint,
  now = Date.now(),
): unknown {
  const rest = cp.after === undefined ? all : all.filter((item) => keyOf(item) > cp.after!);
  const items = rest.slice(0, cp.take);
  const more = rest.length > items.length;
  const next = more
    ? Buffer.from(JSON.stringify({ k: keyOf(items[items.length - 1]!), t: now })).toString("base64url")
    : undefined;
  return { [key]: items, ...(next ? { next } : {}) };
}

export const byKey =
  <T>(keyOf: (item: T) => string) =>
  (a: T, b: T): number => {
    const ka = keyOf(a);
    const kb = keyOf(b);
    return ka < kb ? -1 : ka > kb ? 1 : 0;
  };
