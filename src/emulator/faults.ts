/**
 * Injected faults, set through setFaults() or PUT /__emulator/faults: an error rate by path pattern
 * and status, added latency, an outage window, and a 429 storm. Windows are given relative to the
 * moment they are set and stored as absolute times.
 */
import { ApiError, errorName, tooManyRequests } from "./errors.js";
import type { ErrorFault, FaultsInput } from "./types.js";
import { globToRegExp, isPlainObject, seededRandom } from "./util.js";

interface ActiveErrorFault extends ErrorFault {
  pattern: RegExp;
  injected: number;
}

interface Window {
  start: number;
  end: number;
}

/** What GET /__emulator/faults shows. */
export interface FaultsView {
  errors: (ErrorFault & { injected: number })[];
  latency?: { ms: number; path?: string; method?: string };
  outage?: Window & { status: number };
  rateLimitStorm?: Window & { path?: string };
}

const DEFAULT_MESSAGES: Record<number, string> = {
  500: "Internal Server Error",
  502: "Bad Gateway",
  503: "The service is unavailable. Please try again later.",
  504: "Gateway Timeout",
};

export class Faults {
  private errors: ActiveErrorFault[] = [];
  private latency?: { ms: number; pattern?: RegExp; path?: string; method?: string };
  private outage?: Window & { status: number };
  private storm?: Window & { pattern?: RegExp; path?: string };
  private random: () => number;

  constructor(private readonly seed: number) {
    this.random = seededRandom(seed);
  }

  /** Replace the whole configuration; validates first so a bad input changes nothing. */
  set(input: FaultsInput, now = Date.now()): void {
    if (input.errors !== undefined && !Array.isArray(input.errors))
      throw new ApiError(400, "errors must be an array", "invalid_body");
    for (const key of ["latency", "outage", "rateLimitStorm"] as const) {
      if (input[key] !== undefined && !isPlainObject(input[key]))
        throw new ApiError(400, `${key} must be an object`, "invalid_body");
    }
    const errors = (input.errors ?? []).map((e) => {
      if (!isPlainObject(e)) throw new ApiError(400, "errors[] entries must be objects", "invalid_body");
      if (typeof e.path !== "string" || !Number.isInteger(e.status) || e.status < 400 || e.status > 599) {
        throw new ApiError(400, "errors[] need a path (glob) and a status between 400 and 599", "invalid_body");
      }
      if (e.rate !== undefined && (typeof e.rate !== "number" || e.rate < 0 || e.rate > 1)) {
        throw new ApiError(400, "errors[].rate must be a number between 0 and 1", "invalid_body");
      }
      if (e.count !== undefined && (!Number.isInteger(e.count) || e.count < 0))
        throw new ApiError(400, "errors[].count must be a non-negative integer", "invalid_body");
      if (e.method !== undefined && typeof e.method !== "string")
        throw new ApiError(400, "errors[].method must be a string", "invalid_body");
      return { ...e, pattern: globToRegExp(e.path), injected: 0 };
    });
    const window = (w: { startInMs?: number; durationMs: number }, what: string): Window => {
      if (
        typeof w.durationMs !== "number" ||
        w.durationMs < 0 ||
        (w.startInMs !== undefined && typeof w.startInMs !== "number")
      ) {
        throw new ApiError(400, `${what}.durationMs must be a non-negative number`, "invalid_body");
      }
      const start = now + (w.startInMs ?? 0);
      return { start, end: start + w.durationMs };
    };
    const optionalString = (v: unknown) => v === undefined || typeof v === "string";
    if (
      !optionalString(input.latency?.path) ||
      !optionalString(input.latency?.method) ||
      !optionalString(input.rateLimitStorm?.path)
    ) {
      throw new ApiError(400, "path and method must be strings", "invalid_body");
    }
    if (input.latency && (typeof input.latency.ms !== "number" || input.latency.ms < 0)) {
      throw new ApiError(400, "latency.ms must be a non-negative number", "invalid_body");
    }
    const outage = input.outage ? { ...window(input.outage, "outage"), status: input.outage.status ?? 503 } : undefined;
    if (outage && (!Number.isInteger(outage.status) || outage.status < 400 || outage.status > 599)) {
      throw new ApiError(400, "outage.status must be between 400 and 599", "invalid_body");
    }
    const storm = input.rateLimitStorm
      ? {
          ...window(input.rateLimitStorm, "rateLimitStorm"),
          path: input.rateLimitStorm.path,
          pattern: input.rateLimitStorm.path ? globToRegExp(input.rateLimitStorm.path) : undefined,
        }
      : undefined;

    this.errors = errors;
    this.latency = input.latency
      ? { ...input.latency, pattern: input.latency.path ? globToRegExp(input.latency.path) : undefined }
      : undefined;
    this.outage = outage;
    this.storm = storm;
  }

  clear(): void {
    this.errors = [];
    this.latency = undefined;
    this.outage = undefined;
    this.storm = undefined;
    this.random = seededRandom(this.seed);
  }

  view(): FaultsView {
    return {
      errors: this.errors.map(({ pattern: _p, ...e }) => e),
      ...(this.latency
        ? { latency: { ms: this.latency.ms, path: this.latency.path, method: this.latency.method } }
        : {}),
      ...(this.outage ? { outage: this.outage } : {}),
      ...(this.storm
        ? { rateLimitStorm: { start: this.storm.start, end: this.storm.end, path: this.storm.path } }
        : {}),
    };
  }

  /** The outage answer for any tenant call (API or /oauth/token) inside the window. */
  outageError(now = Date.now()): ApiError | undefined {
    const o = this.outage;
    if (!o || now < o.start || now >= o.end) return undefined;
    return new ApiError(o.status, DEFAULT_MESSAGES[o.status] ?? errorName(o.status));
  }

  stormError(path: string, now = Date.now()): ApiError | undefined {
    const s = this.storm;
    if (!s || now < s.start || now >= s.end || (s.pattern && !s.pattern.test(path))) return undefined;
    return tooManyRequests({
      "x-ratelimit-limit": "0",
      "x-ratelimit-remaining": "0",
      "x-ratelimit-reset": String(Math.ceil(s.end / 1000)),
    });
  }

  latencyFor(method: string, path: string): number {
    const l = this.latency;
    if (!l || (l.method && l.method.toUpperCase() !== method) || (l.pattern && !l.pattern.test(path))) return 0;
    return l.ms;
  }

  injectedError(method: string, path: string): ApiError | undefined {
    for (const fault of this.errors) {
      if (fault.method && fault.method.toUpperCase() !== method) continue;
      if (!fault.pattern.test(path)) continue;
      if (fault.count !== undefined && fault.injected >= fault.count) continue;
      if (this.random() >= (fault.rate ?? 1)) continue;
      fault.injected++;
      const message = fault.message ?? DEFAULT_MESSAGES[fault.status] ?? errorName(fault.status);
      return new ApiError(fault.status, message, fault.errorCode);
    }
    return undefined;
  }
}
