import { isTransientStoreError } from "../directory/sql.js";
import type { ErrorRequestHandler, Request, RequestHandler, Response } from "express";
import type { Logger } from "pino";
import { BridgeError, isBridgeError, notFound, payloadTooLarge, invalidSyntax } from "../errors.js";
import { scimContentType, scimErrorBody } from "../scim/error-body.js";

/**
 * The one place where errors become responses. BridgeError (src/errors.ts) maps to its status; the
 * few foreign errors that can reach the edge (body-parser, SQLite busy) are translated here, once.
 * Anything else is a bug: logged with its stack, answered 500 without internals.
 */
export type ErrorShape = "scim" | "admin";

interface HttpishError {
  type?: unknown;
  status?: unknown;
  code?: unknown;
}

/** Narrows foreign errors with a known meaning to BridgeError; undefined for anything unexpected. */
export function toBridgeError(err: unknown): BridgeError | undefined {
  if (isBridgeError(err)) return err;
  if (typeof err !== "object" || err === null) return undefined;
  const e = err as HttpishError;
  // body-parser (express.json) errors carry a `type`.
  if (e.type === "entity.too.large") return payloadTooLarge("request body exceeds the size limit");
  if (e.type === "entity.parse.failed") return invalidSyntax("request body is not valid JSON");
  if (e.type === "encoding.unsupported" || e.type === "charset.unsupported") {
    return invalidSyntax("request body encoding or charset is not supported; send UTF-8 JSON");
  }
  if (typeof e.type === "string" && typeof e.status === "number" && e.status >= 400 && e.status < 500) {
    return invalidSyntax("request body could not be read");
  }
  // Express's router decodes path parameters with decodeURIComponent: "%ZZ" or a lone "%E0" is a
  // malformed URI (RFC 3986 §2.1), the client's fault. The offending text is not echoed.
  if (err instanceof URIError) return invalidSyntax("the request path holds a malformed percent-escape");
  // Any other http-errors error (expose: true, 4xx) is a client fault Express detected.
  const exposed = err as { expose?: unknown; status?: unknown };
  if (exposed.expose === true && typeof exposed.status === "number" && exposed.status >= 400 && exposed.status < 500) {
    return exposed.status === 413
      ? payloadTooLarge("request body exceeds the size limit")
      : invalidSyntax("the request is malformed");
  }
  // The store failed for a reason a retry may cure (SQLite's write lock held beyond busy_timeout,
  // a PostgreSQL deadlock victim, a lost connection…); the unit was rolled back whole.
  if (isTransientStoreError(err)) {
    return new BridgeError("unavailable", "the directory store is busy; retry shortly", { cause: err, retryAfter: 1 });
  }
  return undefined;
}

export function adminErrorBody(kind: string, detail: string, requestId: string): Record<string, unknown> {
  return { error: kind, message: detail, requestId };
}

function setErrorHeaders(req: Request, res: Response, err: BridgeError): void {
  if (err.kind === "unauthorized") {
    // RFC 6750 §3: name the error only when a token was actually presented.
    const presented = /^bearer\s+\S/i.test(req.get("authorization") ?? "");
    res.setHeader("WWW-Authenticate", `Bearer realm="scim-bridge"${presented ? ', error="invalid_token"' : ""}`);
  }
  // Okta honours Retry-After only as integer seconds (Okta developer docs, SCIM concepts,
  // "Handle SCIM server rate limiting").
  if (err.retryAfter !== undefined) res.setHeader("Retry-After", String(Math.max(1, Math.ceil(err.retryAfter))));
}

export function sendError(req: Request, res: Response, err: BridgeError, shape: ErrorShape): void {
  setErrorHeaders(req, res, err);
  res.status(err.status);
  if (shape === "scim") {
    res.type(scimContentType).send(JSON.stringify(scimErrorBody(err.status, err.message, err.scimType)));
  } else {
    res.json(adminErrorBody(err.kind, err.message, res.locals.requestId));
  }
}

const pathOnly = (url: string): string => url.split("?")[0]!.slice(0, 512);

/** The error middleware; `shape` decides the body format, "auto" picks SCIM under /scim/. */
export function errorMiddleware(shape: ErrorShape | "auto", log: Logger): ErrorRequestHandler {
  return (err: unknown, req, res, next) => {
    if (res.headersSent) return next(err);
    const chosen: ErrorShape = shape === "auto" ? (req.originalUrl.startsWith("/scim/") ? "scim" : "admin") : shape;
    const known = toBridgeError(err);
    if (known) {
      if (known.status >= 500) log.warn({ err, requestId: res.locals.requestId }, known.message);
      return sendError(req, res, known, chosen);
    }
    // The path only: query strings carry filter values (userNames, emails), never logged.
    log.error(
      { err, requestId: res.locals.requestId, method: req.method, path: pathOnly(req.originalUrl) },
      "unhandled error: a bug; report it with this log line",
    );
    const detail = `internal error (request ${res.locals.requestId})`;
    res.status(500);
    if (chosen === "scim") res.type(scimContentType).send(JSON.stringify(scimErrorBody(500, detail)));
    else res.json(adminErrorBody("internal", detail, res.locals.requestId));
  };
}

/**
 * Final handler for unmatched routes: a 404 in the caller's error shape. The path is quoted, so the
 * SCIM request log keeps it only as "…" (the path column already holds it, cut to its length limit).
 */
export const endpointNotFound = (): RequestHandler => (req, _res, next) => {
  next(notFound(`no endpoint ${req.method} "${req.path.slice(0, 200)}"`));
};
