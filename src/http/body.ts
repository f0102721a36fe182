import express, { type NextFunction, type Request, type RequestHandler, type Response } from "express";
import { unstorableRefusal, unstorableText } from "../directory/text.js";
import { invalidSyntax, invalidValue, payloadTooLarge, type BridgeError } from "../errors.js";

/** Default request body limit: 1 MiB holds a PATCH adding ~15,000 members (Entra sends far fewer per request). */
export const defaultBodyLimit = 1024 * 1024;
/**
 * /Groups bodies may be larger: Okta's AIW apps PUT a group with its full member list, about 90
 * bytes a member, so 8 MiB carries ~90,000 (Okta developer docs, "Okta and SCIM Version 2.0").
 */
export const groupBodyLimit = 8 * 1024 * 1024;

/**
 * Deepest JSON nesting accepted in a body. A SCIM resource is at most four levels deep (an extension's
 * complex attribute's sub-attribute) and a mapping document about eight; a thousand-level array costs
 * nothing to parse but overflows the stack of any recursive walk after it, so it is refused up front.
 */
export const maxJsonDepth = 64;

const scimTypes = ["application/scim+json", "application/json", "application/*+json"];

/** The nesting depth of a parsed JSON value, iteratively (a recursive walk would overflow on the input it guards against). */
export function jsonDepth(value: unknown, stopAt = Number.POSITIVE_INFINITY): number {
  let deepest = 0;
  const stack: [unknown, number][] = [[value, 1]];
  while (stack.length > 0) {
    const [v, depth] = stack.pop()!;
    if (typeof v !== "object" || v === null) continue;
    if (depth > deepest) deepest = depth;
    if (deepest > stopAt) return deepest;
    for (const child of Array.isArray(v) ? v : Object.values(v as Record<string, unknown>)) {
      if (typeof child === "object" && child !== null) stack.push([child, depth + 1]);
    }
  }
  return deepest;
}

/** Refuses a parsed value nested deeper than maxJsonDepth with 400 invalidSyntax. */
export function assertJsonDepth(value: unknown): void {
  if (jsonDepth(value, maxJsonDepth) > maxJsonDepth)
    throw invalidSyntax(`JSON nested deeper than ${maxJsonDepth} levels is not accepted`);
}

/**
 * Refuses a parsed body in one walk: nested deeper than maxJsonDepth (400 invalidSyntax, as
 * assertJsonDepth), or holding a string or member name that PostgreSQL cannot store (400
 * invalidValue): U+0000 (text cannot hold it: "Character Types") and an unpaired surrogate (JSON
 * escapes it as a \u sequence, which PostgreSQL's JSON input refuses: every filter reading the
 * resource would then fail). Refused the same way on SQLite, so that both stores answer alike; RFC
 * 7643 §2.3.1 strings are Unicode characters, and neither is one a client means to send (RFC 8259
 * §8.2). Depth is checked first, whatever the order the walk meets them in.
 */
export function assertStorableJson(value: unknown): void {
  let unstorableSeen = false;
  const stack: [unknown, number][] = [[value, 1]];
  while (stack.length > 0) {
    const [v, depth] = stack.pop()!;
    if (typeof v === "string") {
      if (!unstorableSeen && unstorableText.test(v)) unstorableSeen = true;
      continue;
    }
    if (typeof v !== "object" || v === null) continue;
    if (depth > maxJsonDepth) throw invalidSyntax(`JSON nested deeper than ${maxJsonDepth} levels is not accepted`);
    if (Array.isArray(v)) {
      for (const item of v) stack.push([item, depth + 1]);
      continue;
    }
    for (const [key, item] of Object.entries(v)) {
      if (!unstorableSeen && unstorableText.test(key)) unstorableSeen = true;
      stack.push([item, depth + 1]);
    }
  }
  if (unstorableSeen) throw invalidValue(unstorableRefusal("strings"));
}

/**
 * Every failure while reading a body is the client's: a truncated or corrupt gzip/deflate/br stream
 * (zlib errors carry no HTTP status), an unknown Content-Encoding, a bad charset, malformed JSON.
 * They become 400 (413 for size) here, so the error middleware never mistakes them for our own faults.
 */
export function bodyReadError(err: unknown): BridgeError {
  const e = (typeof err === "object" && err !== null ? err : {}) as {
    type?: unknown;
    status?: unknown;
    code?: unknown;
  };
  if (e.type === "entity.too.large" || e.status === 413) return payloadTooLarge("request body exceeds the size limit");
  if (e.type === "entity.parse.failed") return invalidSyntax("request body is not valid JSON");
  if (e.type === "encoding.unsupported" || e.status === 415)
    return invalidSyntax("request Content-Encoding is not supported; send identity, gzip, deflate or br");
  if (e.type === "charset.unsupported") return invalidSyntax("request body charset is not supported; send UTF-8 JSON");
  if (typeof e.code === "string" && e.code.startsWith("Z_"))
    return invalidSyntax("request body does not match its Content-Encoding");
  return invalidSyntax("request body could not be read");
}

/**
 * Wraps a body parser: its errors become client errors, and parsed JSON deeper than maxJsonDepth or
 * holding a string no store can keep is refused (assertStorableJson).
 */
function guarded(parser: RequestHandler, checkDepth: boolean): RequestHandler {
  return (req: Request, res: Response, next: NextFunction) => {
    let ran = false;
    void parser(req, res, (err?: unknown) => {
      if (ran) return;
      ran = true;
      if (err) return next(bodyReadError(err));
      if (checkDepth) {
        try {
          assertStorableJson(req.body);
        } catch (refused) {
          return next(refused);
        }
      }
      next();
    });
  };
}

/**
 * JSON bodies as SCIM clients send them: application/scim+json (RFC 7644 §8.1) and plain
 * application/json (Okta POSTs it). Oversized bodies become 413, malformed JSON and broken
 * encodings 400 invalidSyntax.
 */
export const scimJsonBody = (
  limit = defaultBodyLimit,
  groupsLimit = Math.max(limit, groupBodyLimit),
): RequestHandler => {
  const small = guarded(express.json({ type: scimTypes, limit, strict: true }), true);
  const large = guarded(express.json({ type: scimTypes, limit: groupsLimit, strict: true }), true);
  return (req, res, next) => {
    // Nothing to read or parse (a GET): what body-parser would conclude, without its detour.
    if (!hasBody(req)) {
      req.body = undefined;
      return next();
    }
    (/^\/groups(\/|$)/i.test(req.path) ? large : small)(req, res, next);
  };
};

/** Whether a request carries a body (RFC 9112 §6.3: Transfer-Encoding or a Content-Length), as body-parser decides it. */
export const hasBody = (req: Request): boolean =>
  req.headers["transfer-encoding"] !== undefined || !Number.isNaN(Number(req.headers["content-length"]));

/** Plain JSON bodies for the other routers (admin API, hooks), with the same limit and error mapping. */
export const jsonBody = (limit: number | string = defaultBodyLimit): RequestHandler =>
  guarded(express.json({ limit, strict: true }), true);

/** A raw body (the post-login hook verifies a signature over the exact bytes), with the same error mapping. */
export const rawBody = (limit: number | string): RequestHandler =>
  guarded(express.raw({ type: () => true, limit }), false);
