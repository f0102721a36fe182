/**
 * Structured logs (pino, JSON lines on stdout by default). Secrets never reach a log (docs/design.md,
 * invariant 7): every key that can hold one is redacted wherever it appears in a logged object, up
 * to four levels deep. Request lines carry the route template and query parameter names only, never
 * query values (filters hold userNames and emails), bodies or headers.
 */
import type { Request, RequestHandler } from "express";
import { pino, stdSerializers, stdTimeFunctions, type DestinationStream, type Logger } from "pino";
import type { Config } from "./config.js";

/** Object keys whose values are secrets. Header names are lower case in Node. */
export const secretKeys = [
  "authorization",
  "Authorization",
  "proxy-authorization",
  "cookie",
  "Cookie",
  "set-cookie",
  "x-scim-bridge-signature",
  "x-api-key",
  "password",
  "newPassword",
  "secret",
  "token",
  "rawToken",
  "accessToken",
  "access_token",
  "refreshToken",
  "refresh_token",
  "idToken",
  "id_token",
  "clientSecret",
  "client_secret",
  "hookSecret",
  "adminToken",
  "apiKey",
  "api_key",
] as const;

const censor = "[redacted]";

/** pino redact paths for each key at the top level and under up to `depth - 1` levels of nesting. */
export function redactPaths(keys: readonly string[] = secretKeys, depth = 4): string[] {
  const paths: string[] = [];
  for (const key of keys) {
    const access = /^[A-Za-z_$][\w$]*$/.test(key) ? `.${key}` : `["${key}"]`;
    for (let level = 0; level < depth; level++) {
      const prefix = level === 0 ? "" : "*" + ".*".repeat(level - 1);
      paths.push(level === 0 && access.startsWith(".") ? key : `${prefix}${access}`);
    }
  }
  return paths;
}

export interface LoggerOptions {
  level: Config["logLevel"];
  /** Where lines go (default stdout); tests pass a stream that collects them. */
  destination?: DestinationStream;
}

/**
 * Standard output, written in batches: lines gather up to 4 KiB and are written at least every
 * 100 ms, instead of one write per line (a request line per SCIM request made that write a
 * measurable share of a GET by id). pino writes what is buffered synchronously when the process
 * exits, a crash included; only a SIGKILL can lose the last tenth of a second. When something has
 * replaced process.stdout.write (a test runner), lines go through it, as pino does by default.
 */
function standardOutput(): DestinationStream {
  const stdout = process.stdout;
  if (stdout.write !== (stdout.constructor as { prototype: { write: unknown } }).prototype.write) return stdout;
  return pino.destination({ dest: stdout.fd || 1, sync: false, minLength: 4096, periodicFlush: 100 });
}

export function createLogger(options: LoggerOptions): Logger {
  return pino(
    {
      level: options.level,
      base: { service: "scim-bridge" },
      timestamp: stdTimeFunctions.isoTime, // UTC (NIST AU-8)
      formatters: { level: (label) => ({ level: label }) },
      serializers: { err: stdSerializers.err },
      redact: { paths: redactPaths(), censor },
    },
    options.destination ?? standardOutput(),
  );
}

// ── Route templates, shared with the metrics (src/http/metrics.ts) ─────────────────────────────────

interface RouteCapture {
  template?: string;
}
const captures = new WeakMap<Request, RouteCapture>();

/** Mount segments that are ids even when no route parameter names them (a safety net for labels). */
const idLike = (segment: string): boolean =>
  /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(segment) ||
  /^\d+$/.test(segment) ||
  segment.includes("@") ||
  (segment.length >= 8 && /\d/.test(segment));

/** The name of the parameter whose value is `value` (the last one, if several), as the template shows it. */
function parameterNamed(params: Record<string, unknown> | undefined, value: string): string | undefined {
  let found: string | undefined;
  for (const name in params) if (params[name] === value && value !== "") found = name;
  return found;
}

/**
 * The mount path with each parameter value replaced by its name, other id-like segments by `:id`.
 * Runs on every routed request: no allocation beyond the segments, and a segment without `%` is
 * not decoded (decodeURIComponent would return it unchanged).
 */
function templateBase(baseUrl: string, params: Record<string, unknown> | undefined): string {
  const segments = baseUrl.split("/");
  for (let i = 0; i < segments.length; i++) {
    const segment = segments[i]!;
    if (segment === "") continue;
    let decoded = segment;
    if (segment.includes("%"))
      try {
        decoded = decodeURIComponent(segment);
      } catch {
        // keep the raw segment
      }
    const name = parameterNamed(params, decoded);
    if (name) segments[i] = `:${name}`;
    else if (idLike(decoded)) segments[i] = ":id";
  }
  return segments.join("/");
}

function routePathOf(route: unknown): string | undefined {
  if (typeof route !== "object" || route === null) return undefined;
  const path = (route as { path?: unknown }).path;
  if (typeof path === "string") return path;
  if (Array.isArray(path)) return path.map(String).join("|");
  return path === undefined ? undefined : "(pattern)";
}

/**
 * Starts recording the route template of a request. Express sets `req.route` when a route matches,
 * while req.baseUrl still holds the mount path; by the time the response finishes (or an error
 * handler at the app level answers) the router has restored baseUrl, so the template is captured
 * at that moment. Idempotent, so the logger and the metrics middleware can both call it.
 */
export function trackRoute(req: Request): void {
  if (captures.has(req)) return;
  const capture: RouteCapture = {};
  captures.set(req, capture);
  let current: unknown = (req as { route?: unknown }).route;
  Object.defineProperty(req, "route", {
    configurable: true,
    enumerable: true,
    get: () => current,
    set: (route: unknown) => {
      current = route;
      const path = routePathOf(route);
      if (path === undefined) return;
      const base = templateBase(req.baseUrl ?? "", req.params as Record<string, unknown> | undefined);
      capture.template = path === "/" && base !== "" ? base : `${base}${path}`;
    },
  });
}

/** The matched route template, e.g. "/scim/v2/:directory/Users/:id"; undefined when no route matched. */
export const routeTemplate = (req: Request): string | undefined => captures.get(req)?.template;

/** Names of the query parameters, at most ten; the values stay out of the log. */
function queryNames(originalUrl: string): string[] | undefined {
  const q = originalUrl.indexOf("?");
  if (q < 0) return undefined;
  const names = [...new Set(new URLSearchParams(originalUrl.slice(q + 1)).keys())].slice(0, 10);
  return names.length > 0 ? names : undefined;
}

/**
 * One line per request when it ends: request id, method, route template, status, duration.
 * Mount after requestId() and before the routes. A request that matched no route logs its path
 * (without query) instead, so that a misconfigured IdP base URL can be seen.
 */
export function requestLogger(log: Logger): RequestHandler {
  // The line's keys are fixed above and none can hold a secret (its values are an id, a template, query
  // parameter names, numbers), so pino's per-line walk of every redaction path finds nothing to do here:
  // on a GET by id it was most of the line's cost. Everything else logged keeps the redaction.
  const lines = log.child({}, { redact: [] });
  return (req, res, next) => {
    trackRoute(req);
    const started = process.hrtime.bigint();
    let logged = false;
    const done = (aborted: boolean): void => {
      if (logged) return;
      logged = true;
      const route = routeTemplate(req);
      const entry = {
        requestId: res.locals.requestId,
        method: req.method,
        route: route ?? "(unmatched)",
        ...(route ? {} : { path: req.originalUrl.split("?")[0]!.slice(0, 200) }),
        query: queryNames(req.originalUrl),
        status: aborted ? undefined : res.statusCode,
        durationMs: Math.round(Number(process.hrtime.bigint() - started) / 1e4) / 100,
        ...(aborted ? { aborted: true } : {}),
      };
      if (aborted) lines.warn(entry, "request aborted by the client");
      else if (res.statusCode >= 500) lines.error(entry, "request failed");
      else lines.info(entry, "request");
    };
    res.once("finish", () => done(false));
    res.once("close", () => done(!res.writableFinished));
    next();
  };
}
