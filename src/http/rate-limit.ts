import { createHash } from "node:crypto";
import type { Request, RequestHandler } from "express";
import { rateLimited } from "../errors.js";

/**
 * Per-token rate limits (OWASP API4; reliability-and-security.md §1.2, §1.4): a token bucket per key,
 * refilled continuously. An empty bucket answers 429 with Retry-After in whole seconds, the only form
 * Okta honours (§2.1), rendered by the route's own error middleware so SCIM clients get a SCIM Error
 * and admin clients an admin error.
 *
 * The limiter runs before authentication, keyed by the presented token (its hash, never the token), so
 * guessing tokens is throttled too; requests without a token share a bucket per client address.
 */
export interface TokenRateLimitOptions {
  /** Sustained requests per second per key. */
  ratePerSecond: number;
  /** Bucket size: requests a key may send at once after being idle. */
  burst: number;
  /** The bucket a request draws from; undefined lets it through unmetered. */
  keyOf: (req: Request) => string | undefined;
  /** Keys held in memory before idle buckets are dropped (a full bucket carries no state). */
  maxKeys?: number;
  now?: () => number;
}

/**
 * SCIM: Entra's gallery requirement is "at least 25 requests per second per tenant" and its observed
 * peak is about 17 req/s (reliability-and-security.md §3.2); Okta publishes no rate and pushes per
 * event. 50 req/s sustained with a burst of 200 per token is twice the requirement, so an IdP at its
 * documented rates never sees a 429, while a runaway client cannot monopolise the server.
 */
export const scimRateLimitDefaults = { ratePerSecond: 50, burst: 200 } as const;

/** Admin API: people and scripts, not bulk sync. 10 req/s with a burst of 40 covers a console paging users. */
export const adminRateLimitDefaults = { ratePerSecond: 10, burst: 40 } as const;

interface Bucket {
  tokens: number;
  updatedAt: number;
}

/** The bucket key of a request: a digest of its bearer token, else its client address. */
export function bearerKey(req: Request): string {
  const match = /^bearer\s+(\S+)/i.exec(req.get("authorization") ?? "");
  if (match) return `t:${createHash("sha256").update(match[1]!, "utf8").digest("base64url").slice(0, 32)}`;
  return `ip:${req.ip ?? req.socket.remoteAddress ?? "unknown"}`;
}

export function tokenRateLimit(options: TokenRateLimitOptions): RequestHandler {
  const { ratePerSecond, burst, keyOf } = options;
  // Fail at construction, not per request (code-style-anchors.md §6.7).
  if (!(Number.isFinite(ratePerSecond) && ratePerSecond > 0)) throw new TypeError("ratePerSecond must be a positive number");
  if (!(Number.isInteger(burst) && burst >= 1)) throw new TypeError("burst must be a whole number of at least 1");
  const maxKeys = options.maxKeys ?? 10_000;
  const now = options.now ?? Date.now;
  const fullAfterMs = (burst / ratePerSecond) * 1000;
  const buckets = new Map<string, Bucket>();

  const sweep = (t: number): void => {
    for (const [key, b] of buckets) if (t - b.updatedAt >= fullAfterMs) buckets.delete(key);
    // Still too many active keys: forget the oldest (they start again with a full bucket).
    for (const key of buckets.keys()) {
      if (buckets.size <= maxKeys) break;
      buckets.delete(key);
    }
  };

  return (req, _res, next) => {
    const key = keyOf(req);
    if (key === undefined) return next();
    const t = now();
    if (buckets.size >= maxKeys) sweep(t);
    const bucket = buckets.get(key) ?? { tokens: burst, updatedAt: t };
    bucket.tokens = Math.min(burst, bucket.tokens + ((t - bucket.updatedAt) / 1000) * ratePerSecond);
    bucket.updatedAt = t;
    // Re-inserted so that Map order is least recently used first, for the sweep above.
    buckets.delete(key);
    buckets.set(key, bucket);
    if (bucket.tokens >= 1) {
      bucket.tokens -= 1;
      return next();
    }
    const retryAfter = Math.max(1, Math.ceil((1 - bucket.tokens) / ratePerSecond));
    next(rateLimited(`too many requests: at most ${ratePerSecond} per second (bursts of ${burst}) per token; retry after ${retryAfter} s`, retryAfter));
  };
}
