import { createHash } from "node:crypto";
import type { Request, RequestHandler, Response } from "express";
import { rateLimited, type BridgeError } from "../errors.js";
import { hasBody } from "./body.js";
import { metered, msSince, outOfTime, runningMeter, type LoopMeter } from "../scim/cost.js";

/**
 * Per-token rate limits (OWASP API Security Top 10 2023, API4 "Unrestricted Resource Consumption"): a
 * token bucket per key, refilled continuously. An empty bucket answers 429 with Retry-After in whole
 * seconds, the only form Okta honours (Okta developer docs, SCIM concepts, "Handle SCIM server rate
 * limiting"), rendered by the route's own error middleware so SCIM clients get a SCIM Error and admin
 * clients an admin error.
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
  keyOf: (req: Request, res: Response) => string | undefined;
  /** Keys held in memory before idle buckets are dropped (a full bucket carries no state). */
  maxKeys?: number;
  now?: () => number;
}

/** SCIM, per directory: the defaults and why are with the configuration that overrides them. */
export { scimRateLimitDefaults } from "../config.js";

/**
 * SCIM requests of one directory being served at once. The rate limit bounds requests per second,
 * not their cost: 50 writes a second that each carry the maximum number of values are more work
 * than one process does in a second, and the excess queues in front of every other tenant's
 * requests and every login. With at most this many of a directory's requests in the process, what
 * another tenant's request or a login can find queued ahead of it from that directory is bounded
 * by this many requests' work, whatever the client sends. A directory's further requests wait their
 * turn rather than being refused: Okta pauses a whole provisioning task on a 429 ("Handle SCIM server
 * rate limiting"), so a parallel push must be slowed, not failed.
 */
export const scimConcurrencyDefault = 4;

/** Requests of one directory that may wait for a slot before the next is refused 429: more than an IdP keeps open. */
export const scimWaitingDefault = 256;

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
  // Fail at construction, not per request: a bad setting should stop start-up, not every request.
  if (!(Number.isFinite(ratePerSecond) && ratePerSecond > 0))
    throw new TypeError("ratePerSecond must be a positive number");
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

  return (req, res, next) => {
    const key = keyOf(req, res);
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
    next(
      rateLimited(
        `too many requests: at most ${ratePerSecond} per second (bursts of ${burst}) per token; retry after ${retryAfter} s`,
        retryAfter,
      ),
    );
  };
}

/** The client's address as Express sees it (the socket's, or the proxy's X-Forwarded-For under "trust proxy"). */
export const clientAddress = (req: Request): string => req.ip ?? req.socket.remoteAddress ?? "unknown";

/**
 * SCIM: authenticated requests draw from their directory's bucket, whichever of its tokens they
 * carry; unauthenticated ones are metered by unauthenticatedLimit instead.
 */
export const directoryKey = (_req: Request, res: Response): string | undefined => {
  const scim = res.locals.scim as { directoryId?: string } | undefined;
  return scim?.directoryId === undefined ? undefined : `d:${scim.directoryId}`;
};

export interface UnauthenticatedLimitOptions {
  /** Failed authentications per second a client address may make against one directory URL. */
  ratePerSecond: number;
  burst: number;
  maxKeys?: number;
  now?: () => number;
  /** Told of every refusal: "rejected" (401: bad or missing credentials) or "limited" (429: too many of them). */
  onRefused?: (outcome: "rejected" | "limited") => void;
}

/**
 * Failed authentications: 1 req/s with a burst of 20 per client address and directory URL. An IdP
 * with a wrong token retries far slower (Entra quarantines after repeated failures); a token
 * guesser is held to one guess a second per address.
 */
export const unauthenticatedLimitDefaults = { ratePerSecond: 1, burst: 20 } as const;

export interface UnauthenticatedLimit {
  /**
   * After a failed authentication: takes one failure from the bucket of (client address, directory
   * URL); returns the 429 to answer instead of the 401 when the bucket was already empty.
   */
  failed(req: Request): BridgeError | undefined;
}

/**
 * Throttles failed authentication per client address and addressed directory, never per presented
 * secret: keyed by the secret, each random token would get a fresh bucket and a flood of garbage
 * tokens would never be refused. Only failures are throttled, after the token was checked (a hash
 * and one indexed lookup, what a 401 costs anyway): a request with a valid token always passes, so an
 * attacker sharing an address (a NAT, a proxy) with an IdP cannot lock the IdP out.
 */
export function unauthenticatedLimit(options: UnauthenticatedLimitOptions): UnauthenticatedLimit {
  const { ratePerSecond, burst } = options;
  if (!(Number.isFinite(ratePerSecond) && ratePerSecond > 0))
    throw new TypeError("ratePerSecond must be a positive number");
  if (!(Number.isInteger(burst) && burst >= 1)) throw new TypeError("burst must be a whole number of at least 1");
  const maxKeys = options.maxKeys ?? 10_000;
  const now = options.now ?? Date.now;
  const buckets = new Map<string, Bucket>();
  return {
    failed(req) {
      const t = now();
      const key = `${clientAddress(req)}|${String(req.params?.directoryId ?? "")}`;
      const bucket = buckets.get(key) ?? { tokens: burst, updatedAt: t };
      bucket.tokens = Math.min(burst, bucket.tokens + ((t - bucket.updatedAt) / 1000) * ratePerSecond);
      bucket.updatedAt = t;
      buckets.delete(key);
      buckets.set(key, bucket);
      if (buckets.size > maxKeys) {
        // Full buckets carry no state; then the least recently failed go first.
        for (const [k, b] of buckets) if (t - b.updatedAt >= (burst / ratePerSecond) * 1000) buckets.delete(k);
        for (const k of buckets.keys()) {
          if (buckets.size <= maxKeys) break;
          buckets.delete(k);
        }
      }
      if (bucket.tokens >= 1) {
        bucket.tokens -= 1;
        options.onRefused?.("rejected");
        return undefined;
      }
      options.onRefused?.("limited");
      const retryAfter = Math.max(1, Math.ceil((1 - bucket.tokens) / ratePerSecond));
      return rateLimited(`too many failed authentications from this address; retry after ${retryAfter} s`, retryAfter);
    },
  };
}

export interface EventLoopLag {
  overloaded(): boolean;
  stop(): void;
}

let sharedLag: EventLoopLag | undefined;
/** One sampler per process, started on first use (every app of a process shares the event loop). */
export const processEventLoopLag = (): EventLoopLag => (sharedLag ??= eventLoopLag());

/**
 * Whether the event loop is falling behind: a timer every `intervalMs` notes how late it fired, and
 * the process counts as overloaded while a delay over `thresholdMs` was seen in the last `windowMs`.
 * Late timers mean queued work: every request, the post-login hook's included, waits that long.
 */
export function eventLoopLag(thresholdMs = 50, intervalMs = 10, windowMs = 1000): EventLoopLag {
  let expected = performance.now() + intervalMs;
  let lastLate = -Infinity;
  const timer = setInterval(() => {
    const t = performance.now();
    if (t - expected > thresholdMs) lastLate = t;
    expected = t + intervalMs;
  }, intervalMs);
  timer.unref();
  return { overloaded: () => performance.now() - lastLate < windowMs, stop: () => clearInterval(timer) };
}

/**
 * At most `max` requests per key in flight (from this middleware to the end of the response); the
 * next ones wait their turn in arrival order, before their body is read, so a directory's burst costs
 * other tenants and the post-login hook no more than `max` requests' work at a time, and a client that
 * sends in parallel is served, not refused. Only beyond `maxWaiting` waiting requests is the next one
 * answered 429 with Retry-After: 1. While `overloaded()` says the process is behind, every key is held
 * to one request at a time, so the queue in front of the hook and /healthz drains instead of growing.
 * See scimConcurrencyDefault.
 */
export function concurrencyLimit(
  max: number,
  keyOf: (req: Request, res: Response) => string | undefined,
  overloaded: () => boolean = () => false,
  maxWaiting = scimWaitingDefault,
): RequestHandler {
  if (!(Number.isInteger(max) && max >= 1)) throw new TypeError("max must be a whole number of at least 1");
  if (!(Number.isInteger(maxWaiting) && maxWaiting >= 0)) throw new TypeError("maxWaiting must be a whole number");
  const slots = new Map<string, { inFlight: number; waiting: (() => void)[] }>();
  const admits = (slot: { inFlight: number }): boolean => slot.inFlight < (overloaded() ? 1 : max);
  const start = (
    key: string,
    slot: { inFlight: number; waiting: (() => void)[] },
    res: Response,
    next: () => void,
  ): void => {
    slot.inFlight++;
    let released = false;
    const release = (): void => {
      if (released) return;
      released = true;
      slot.inFlight--;
      // Hand the freed slot on; a waiter whose client went away just passes it further.
      while (slot.waiting.length > 0 && admits(slot)) slot.waiting.shift()!();
      if (slot.inFlight === 0 && slot.waiting.length === 0) slots.delete(key);
    };
    // "close" also covers a client that went away before the answer.
    res.once("finish", release);
    res.once("close", release);
    next();
  };
  return (req, res, next) => {
    const key = keyOf(req, res);
    if (key === undefined) return next();
    // The client went away while an earlier middleware awaited (the token check's store read): its
    // "close" has fired already, so a slot taken now would never be handed back, and after `max`
    // such requests the directory would wait for good. Nothing is left to answer.
    if (res.destroyed || res.writableEnded) return;
    let slot = slots.get(key);
    if (!slot) slots.set(key, (slot = { inFlight: 0, waiting: [] }));
    if (slot.waiting.length === 0 && admits(slot)) return start(key, slot, res, next);
    if (slot.waiting.length >= maxWaiting) {
      const why = overloaded()
        ? "the server is busy: one request at a time per directory for now"
        : `too many requests at once: at most ${max} at a time per directory`;
      return next(rateLimited(`${why}, and ${maxWaiting} waiting; retry after 1 s`, 1));
    }
    const owner = slot;
    let gone = false;
    const leave = (): void => {
      gone = true;
      clearTimeout(timer);
      const i = owner.waiting.indexOf(resume);
      if (i >= 0) owner.waiting.splice(i, 1);
    };
    res.once("close", leave);
    // Still waiting when its time budget is spent: answered without running (it would only run late).
    const meter = meterOf(res);
    const timer = meter
      ? setTimeout(
          () => {
            if (gone) return;
            leave();
            metered(meter, () => next(outOfTime(meter.budgetMs)));
          },
          // Whole milliseconds: Node keeps a timer list per distinct duration, and fractional ones
          // made a new list (and a priority-queue insert) for nearly every waiting request.
          Math.max(0, Math.ceil(meter.deadline - performance.now())),
        ).unref()
      : undefined;
    function resume(): void {
      if (gone) return;
      clearTimeout(timer);
      // Its turn comes in another request's "finish": the time from here on is this request's.
      metered(meter, () => start(key!, owner, res, next));
    }
    owner.waiting.push(resume);
  };
}

/** The event-loop share and the request time budget: defaults, and why, are with the configuration. */
export { scimLoopBudgetDefaults, scimRequestBudgetDefaultMs } from "../config.js";

export const meterOf = (res: Response): LoopMeter | undefined =>
  (res.locals as { loopMeter?: LoopMeter } | undefined)?.loopMeter;

interface Metered extends LoopMeter {
  /** performance.now() when the request body's last byte arrived (its parse runs then). */
  bodyEndedAt?: number;
}

/**
 * The SCIM pipeline's first middleware: opens the request's meter (deadline `budgetMs` from now),
 * times everything it runs synchronously, and the response's send; calls `done` once the request is
 * answered or its client gone, with what it held.
 */
export function requestMeter(
  budgetMs: number,
  done?: (req: Request, res: Response, meter: LoopMeter) => void,
): RequestHandler {
  if (!(Number.isFinite(budgetMs) && budgetMs > 0)) throw new TypeError("budgetMs must be a positive number");
  return (req, res, next) => {
    const meter: Metered = { ms: 0, deadline: performance.now() + budgetMs, budgetMs };
    res.locals.loopMeter = meter;
    // Registered before the body parser's own listener, so this runs first, as the parse starts. A
    // request without a body (RFC 9112 §6.3: neither Transfer-Encoding nor Content-Length, as a GET)
    // has no parse to time.
    if (hasBody(req)) req.once("end", () => (meter.bodyEndedAt = performance.now()));
    const end = res.end.bind(res) as (...args: unknown[]) => Response;
    (res as { end: unknown }).end = (...args: unknown[]) => metered(meter, () => end(...args));
    if (done) {
      let charged = false;
      const finish = (): void => {
        if (charged) return;
        charged = true;
        done(req, res, meter);
      };
      res.once("finish", finish);
      res.once("close", finish);
    }
    metered(meter, next);
  };
}

/**
 * After the body parser: the route runs in the next check phase of the event loop (setImmediate),
 * not in the I/O callback that read the request. Node runs every I/O callback that is ready before
 * the check phase, so a login (the post-login hook) or a /healthz probe that has arrived meanwhile is
 * answered before the SCIM routes waiting there, instead of behind them in arrival order. When the
 * body arrived later than the request's head, its parse (from its last byte) is timed too; a request
 * whose budget is spent by the time its route would run (a body trickling in, a busy process) is
 * answered 503 without running.
 */
export const afterBody = (): RequestHandler => (_req, res, next) => {
  const meter = meterOf(res) as Metered | undefined;
  if (!meter) return next();
  if (runningMeter() !== meter && meter.bodyEndedAt !== undefined) meter.ms += msSince(meter.bodyEndedAt);
  meter.bodyEndedAt = undefined;
  setImmediate(() => {
    if (res.writableEnded || res.destroyed) return; // the client went away meanwhile
    if (performance.now() > meter.deadline) return metered(meter, () => next(outOfTime(meter.budgetMs)));
    metered(meter, next);
  });
};

export interface LoopBudgetOptions {
  /** Event-loop milliseconds per second a key may take, sustained, while another key is active. */
  msPerSecond: number;
  /** What an idle key may hold at once. */
  burstMs: number;
  keyOf: (req: Request, res: Response) => string | undefined;
  maxKeys?: number;
  now?: () => number;
}

export interface LoopBudget {
  /** Refuses (429, Retry-After) a request whose key has spent its share; lets it through otherwise. */
  gate: RequestHandler;
  /** Takes what an answered request took from its key's bucket (requestMeter's `done`). */
  charge: (req: Request, res: Response, meter: LoopMeter) => void;
}

/**
 * A directory's share of the event loop (scimLoopBudgetDefaults): a token bucket of event-loop CPU
 * milliseconds, charged with what each request took (LoopMeter in src/scim/cost.ts). Requests are
 * charged after they ran (their cost is known only then), so a bucket may go below zero by what the
 * key's requests in flight took; it is refused until refilled above zero, and told how long that
 * takes. The share is enforced only while another key was active in the last second: a directory
 * alone in the process hurts nobody, and a conformance run or an initial push at full speed is not
 * refused for want of competition (nor does it run up a debt meanwhile).
 */
export function loopBudget(options: LoopBudgetOptions): LoopBudget {
  const { msPerSecond, burstMs, keyOf } = options;
  if (!(Number.isFinite(msPerSecond) && msPerSecond > 0)) throw new TypeError("msPerSecond must be a positive number");
  if (!(Number.isFinite(burstMs) && burstMs > 0)) throw new TypeError("burstMs must be a positive number");
  const maxKeys = options.maxKeys ?? 10_000;
  const now = options.now ?? Date.now;
  const buckets = new Map<string, Bucket>();
  const bucketOf = (key: string): Bucket => {
    const t = now();
    const bucket = buckets.get(key) ?? { tokens: burstMs, updatedAt: t };
    bucket.tokens = Math.min(burstMs, bucket.tokens + ((t - bucket.updatedAt) / 1000) * msPerSecond);
    bucket.updatedAt = t;
    buckets.delete(key);
    buckets.set(key, bucket);
    if (buckets.size > maxKeys) {
      for (const [k, b] of buckets) if (b.tokens >= burstMs) buckets.delete(k);
      for (const k of buckets.keys()) {
        if (buckets.size <= maxKeys) break;
        buckets.delete(k);
      }
    }
    return bucket;
  };
  // The two most recently active distinct keys: the latest key other than k is one of them.
  let latest: { key: string; at: number } | undefined;
  let before: { key: string; at: number } | undefined;
  const contended = (key: string, t: number): boolean => {
    const other = latest?.key !== key ? latest : before;
    return other !== undefined && t - other.at < 1000;
  };
  const seen = (key: string, t: number): void => {
    if (latest?.key === key) latest.at = t;
    else {
      before = latest;
      latest = { key, at: t };
    }
  };
  return {
    gate: (req, res, next) => {
      const key = keyOf(req, res);
      if (key === undefined) return next();
      const bucket = bucketOf(key);
      const t = now();
      const refuse = bucket.tokens <= 0 && contended(key, t);
      seen(key, t);
      if (!refuse) return next();
      const retryAfter = Math.max(1, Math.ceil(-bucket.tokens / msPerSecond));
      next(
        rateLimited(
          `this directory's requests have used their share of the server's time (${msPerSecond} ms per second while other directories are served); retry after ${retryAfter} s`,
          retryAfter,
        ),
      );
    },
    charge: (req, res, meter) => {
      const key = keyOf(req, res);
      if (key === undefined || !(meter.ms > 0)) return;
      const bucket = bucketOf(key);
      bucket.tokens -= meter.ms;
      if (!contended(key, now())) bucket.tokens = Math.max(bucket.tokens, 0);
    },
  };
}
