/**
 * Token buckets mirroring the Auth0 Management API's own (reference/auth0-management-api.md §2), so
 * that the bridge spends the tenant's budget instead of collecting 429s. Each call takes one token
 * from every bucket its endpoint class draws on (e.g. the enterprise global bucket and the
 * organization-members bucket). The buckets start from the plan profile and are corrected by every
 * response's x-ratelimit-* headers; a 429 empties the bucket until its reset.
 *
 * The deprovision lane has strict priority, and a reserved share of every bucket's burst is kept for
 * it, so a deactivation never queues behind a provisioning backlog (DESIGN.md §6, invariant 3).
 */

export type Auth0Plan = "free" | "essentials" | "enterprise";

/** Endpoint classes the gateway tags each call with. */
export type EndpointClass =
  | "usersRead"
  | "usersWrite"
  | "usersDelete"
  | "orgMembersWrite"
  | "orgMemberRolesWrite"
  | "orgsRead"
  | "orgsByName"
  | "orgsWrite"
  | "other";

export interface BucketSpec {
  name: string;
  capacity: number;
  refillPerSecond: number;
}

export interface RateProfile {
  buckets: BucketSpec[];
  /** Buckets each class draws from, most specific first. */
  classes: Record<EndpointClass, string[]>;
}

const perMinute = (n: number): number => n / 60;
const allClasses: EndpointClass[] = [
  "usersRead",
  "usersWrite",
  "usersDelete",
  "orgMembersWrite",
  "orgMemberRolesWrite",
  "orgsRead",
  "orgsByName",
  "orgsWrite",
  "other",
];

/** Plan profiles from Auth0's rate-limit configuration pages (reference §2 table). */
export function rateProfile(plan: Auth0Plan): RateProfile {
  if (plan === "free") {
    return {
      buckets: [{ name: "global", capacity: 2, refillPerSecond: 2 }],
      classes: Object.fromEntries(allClasses.map((c) => [c, ["global"]])) as Record<EndpointClass, string[]>,
    };
  }
  if (plan === "essentials") {
    return {
      buckets: [
        { name: "usersRead", capacity: 40, refillPerSecond: perMinute(500) },
        { name: "usersWrite", capacity: 20, refillPerSecond: perMinute(200) },
        { name: "usersDelete", capacity: 20, refillPerSecond: perMinute(200) },
        { name: "orgMembersWrite", capacity: 20, refillPerSecond: perMinute(200) },
        { name: "orgMemberRolesWrite", capacity: 20, refillPerSecond: perMinute(200) },
        { name: "orgsRead", capacity: 5, refillPerSecond: perMinute(50) },
        { name: "orgsByName", capacity: 10, refillPerSecond: perMinute(100) },
        { name: "other", capacity: 10, refillPerSecond: perMinute(150) },
      ],
      classes: {
        usersRead: ["usersRead"],
        usersWrite: ["usersWrite"],
        usersDelete: ["usersDelete"],
        orgMembersWrite: ["orgMembersWrite"],
        orgMemberRolesWrite: ["orgMemberRolesWrite"],
        orgsRead: ["orgsRead"],
        orgsByName: ["orgsByName"],
        orgsWrite: ["other"],
        other: ["other"],
      },
    };
  }
  return {
    buckets: [
      { name: "global", capacity: 50, refillPerSecond: 16 },
      { name: "orgMembersWrite", capacity: 20, refillPerSecond: perMinute(200) },
      { name: "orgMemberRolesWrite", capacity: 20, refillPerSecond: perMinute(200) },
      { name: "orgsRead", capacity: 10, refillPerSecond: perMinute(100) },
      { name: "orgsByName", capacity: 20, refillPerSecond: perMinute(200) },
      { name: "orgsWrite", capacity: 5, refillPerSecond: perMinute(150) },
    ],
    classes: {
      usersRead: ["global"],
      usersWrite: ["global"],
      usersDelete: ["global"],
      orgMembersWrite: ["orgMembersWrite", "global"],
      orgMemberRolesWrite: ["orgMemberRolesWrite", "global"],
      orgsRead: ["orgsRead", "global"],
      orgsByName: ["orgsByName", "global"],
      orgsWrite: ["orgsWrite", "global"],
      other: ["global"],
    },
  };
}

interface Bucket extends BucketSpec {
  tokens: number;
  updatedAt: number;
  /** No token is handed out before this time (after a 429). */
  pausedUntil: number;
}

interface Waiter {
  lane: number;
  seq: number;
  buckets: Bucket[];
  resolve: () => void;
}

export interface RateLimiterOptions {
  /** Multiplies the profile's refill rates: a tenant with raised limits, or a time-compressed emulator. */
  rateScale?: number;
  /** Share of each bucket's burst held back for the deprovision lane (lane 0). */
  reserveShare?: number;
  now?: () => number;
}

export interface RateSnapshot {
  name: string;
  capacity: number;
  tokens: number;
  refillPerSecond: number;
  pausedUntil: number;
}

export class RateLimiter {
  private readonly buckets = new Map<string, Bucket>();
  private readonly waiters: Waiter[] = [];
  private readonly reserveShare: number;
  private readonly now: () => number;
  private seq = 0;
  private timer: NodeJS.Timeout | undefined;
  /** Count of 429s observed, for metrics. */
  rateLimitedResponses = 0;

  constructor(private readonly profile: RateProfile, options: RateLimiterOptions = {}) {
    this.reserveShare = options.reserveShare ?? 0.2;
    this.now = options.now ?? Date.now;
    const t = this.now();
    const scale = options.rateScale ?? 1;
    for (const spec of profile.buckets) {
      this.buckets.set(spec.name, { ...spec, refillPerSecond: spec.refillPerSecond * scale, tokens: spec.capacity, updatedAt: t, pausedUntil: 0 });
    }
  }

  private bucketsFor(cls: EndpointClass): Bucket[] {
    return (this.profile.classes[cls] ?? []).map((n) => this.buckets.get(n)!).filter(Boolean);
  }

  private refill(b: Bucket, t: number): void {
    if (t > b.updatedAt) {
      b.tokens = Math.min(b.capacity, b.tokens + ((t - b.updatedAt) / 1000) * b.refillPerSecond);
      b.updatedAt = t;
    }
  }

  private reserve(b: Bucket): number {
    return Math.max(1, Math.floor(b.capacity * this.reserveShare));
  }

  private available(b: Bucket, lane: number, t: number): boolean {
    if (t < b.pausedUntil) return false;
    const floor = lane === 0 ? 0 : this.reserve(b);
    // Refill is fractional; the epsilon keeps 1.9999999 tokens from counting as "not yet 2".
    return b.tokens >= 1 + floor - 1e-9;
  }

  /** Waits until a call of this class may go out, then takes its tokens. Lane 0 = deprovision. */
  acquire(cls: EndpointClass, lane: number): Promise<void> {
    return new Promise((resolve) => {
      this.waiters.push({ lane, seq: this.seq++, buckets: this.bucketsFor(cls), resolve });
      this.waiters.sort((a, b) => a.lane - b.lane || a.seq - b.seq);
      this.drain();
    });
  }

  private drain(): void {
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
    const t = this.now();
    for (const b of this.buckets.values()) this.refill(b, t);
    // Strict priority per bucket: a waiter that cannot go blocks lower-priority waiters on the same buckets.
    const blocked = new Set<Bucket>();
    let nextCheck = Infinity;
    for (let i = 0; i < this.waiters.length; ) {
      const w = this.waiters[i]!;
      if (w.buckets.some((b) => blocked.has(b))) {
        i++;
        continue;
      }
      if (w.buckets.every((b) => this.available(b, w.lane, t))) {
        for (const b of w.buckets) b.tokens -= 1;
        this.waiters.splice(i, 1);
        w.resolve();
        continue;
      }
      for (const b of w.buckets) {
        blocked.add(b);
        const floor = w.lane === 0 ? 0 : this.reserve(b);
        const needed = 1 + floor - b.tokens;
        // At least 1 ms ahead: a tiny shortfall added to an epoch-ms clock would round to "now" and never wake.
        const at = Math.max(b.pausedUntil, needed > 1e-9 ? t + Math.max(1, (needed / b.refillPerSecond) * 1000) : t);
        if (at > t) nextCheck = Math.min(nextCheck, at);
      }
      i++;
    }
    if (this.waiters.length > 0 && nextCheck < Infinity) {
      this.timer = setTimeout(() => this.drain(), Math.max(1, Math.ceil(nextCheck - t)));
      this.timer.unref?.();
    }
  }

  /**
   * Learns from a response: x-ratelimit-limit/-remaining/-reset describe one of the class's buckets
   * (the one whose size matches, else the most specific). Remaining only ever lowers our estimate,
   * because our own calls still in flight are already counted. A 429 empties it until reset.
   */
  observe(cls: EndpointClass, status: number, headers: Headers | undefined): void {
    const candidates = this.bucketsFor(cls);
    if (candidates.length === 0) return;
    const t = this.now();
    const limit = Number(headers?.get("x-ratelimit-limit"));
    const remaining = Number(headers?.get("x-ratelimit-remaining"));
    const reset = Number(headers?.get("x-ratelimit-reset"));
    const hasHeaders = Number.isFinite(limit) && limit > 0 && Number.isFinite(remaining);
    const bucket = (hasHeaders && candidates.find((b) => b.capacity === limit)) || candidates[0]!;
    this.refill(bucket, t);
    if (hasHeaders) {
      bucket.capacity = limit;
      bucket.tokens = Math.min(bucket.tokens, remaining);
    }
    if (status === 429) {
      this.rateLimitedResponses++;
      bucket.tokens = Math.min(bucket.tokens, 0);
      const retryAfter = Number(headers?.get("retry-after"));
      const until = Number.isFinite(retryAfter) && retryAfter > 0 ? t + retryAfter * 1000 : Number.isFinite(reset) && reset > 0 ? reset * 1000 : t + 1000;
      bucket.pausedUntil = Math.max(bucket.pausedUntil, Math.min(until, t + 60_000));
    }
    this.drain();
  }

  /** Holds every call back until `until` (epoch ms): Auth0 looks down, so calls wait instead of failing. */
  pauseAll(until: number): void {
    for (const b of this.buckets.values()) b.pausedUntil = Math.max(b.pausedUntil, until);
    this.drain();
  }

  snapshot(): RateSnapshot[] {
    const t = this.now();
    return [...this.buckets.values()].map((b) => {
      this.refill(b, t);
      return { name: b.name, capacity: b.capacity, tokens: b.tokens, refillPerSecond: b.refillPerSecond, pausedUntil: b.pausedUntil };
    });
  }

  /** Releases timers (shutdown). Pending waiters stay pending; callers stop issuing calls first. */
  stop(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }
}
