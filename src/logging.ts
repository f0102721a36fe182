/**
 * Structured logs (pino, JSON lines on stdout by default). Secrets never reach a log (DESIGN.md §6,
 * invariant 7): every key that can hold one is redacted wherever it appears in a logged object, up
 * to four levels deep. Request lines carry the route template and query parameter names only, never
 * query values (filters hold userNames and emails), bodies or headers.
 */
import type { RequestHandler } from "express";
import { pino, stdSerializers, stdTimeFunctions, type DestinationStream, type Logger } from "pino";
import type { Config } from "./config.js";
import { routeTemplate, trackRoute } from "./http/metrics.js";

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
    options.destination,
  );
}

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
      if (aborted) log.warn(entry, "request aborted by the client");
      else if (res.statusCode >= 500) log.error(entry, "request failed");
      else log.info(entry, "request");
    };
    res.once("finish", () => done(false));
    res.once("close", () => done(!res.writableFinished));
    next();
  };
}
