/**
 * Auth0 Management API rate limits as token buckets per plan profile, from Auth0's published
 * "Rate Limit Configurations" pages ("Free", "Essentials and Professional", "Enterprise"): burst =
 * bucket size, sustained = refill rate. The global bucket (where the plan has one) is checked
 * first, then the endpoint's own ("Global API limit is checked first, then the per-endpoint one").
 * Every API response carries x-ratelimit-limit/-remaining/-reset (reset in UTC epoch seconds)
 * describing the bucket that served it: the endpoint's own bucket where it has one, else the
 * global one; a 429 describes the bucket that refused.
 */
import type { Plan } from "./types.js";

/** What a route is, as far as Auth0's per-endpoint limits are concerned. */
export type Category =
  | "users:read" // Read Users
  | "users:write" // Write Users: POST/PATCH /users
  | "users:delete" // Write Users: DELETE /users/{id} (its own row on Essentials)
  | "orgs:read" // Read Organizations: GET /organizations
  | "orgs:read-by-id" // Read Organizations by ID: GET /organizations/{id}
  | "orgs:by-name" // Read Organizations by Name: GET /organizations/name/{name}
  | "orgs:write" // Write Organizations: POST/PATCH/DELETE /organizations[/{id}]
  | "org-members:read" // Read Organization Members: GET /organizations/{id}/members
  | "org-members:write" // Write Organization Members: POST/DELETE /organizations/{id}/members
  | "org-member-roles:read" // Read Organization Member Roles: GET …/members/{uid}/roles
  | "org-member-roles:write" // Write Organization Member Roles: POST/DELETE …/members/{uid}/roles
  | "org-connections:read" // Read Organization Connections: GET …/enabled_connections[/{id}]
  | "org-connections:write" // Write Organization Connections: POST/PATCH/DELETE …/enabled_connections
  | "connections:read" // Read Connections: GET /connections[/{id}]
  | "other";

export interface BucketSpec {
  name: string;
  capacity: number;
  perSecond: number;
}

export interface PlanLimits {
  /** Checked first for every call, when present. */
  global?: BucketSpec;
  /** Per-endpoint buckets; categories not listed fall to `other` (if any). */
  endpoints: Partial<Record<Category, BucketSpec>>;
  other?: BucketSpec;
}

const perMinute = (name: string, capacity: number, perMin: number): BucketSpec => ({
  name,
  capacity,
  perSecond: perMin / 60,
});

export const PLAN_LIMITS: Record<Plan, PlanLimits> = {
  // Free: one global bucket for the whole Management API, burst 2, 2/s.
  free: { global: { name: "global", capacity: 2, perSecond: 2 }, endpoints: {} },
  // Essentials / Professional / B2B: no global row; per-endpoint buckets, the rest combined.
  essentials: {
    endpoints: {
      "users:read": perMinute("users:read", 40, 500),
      "users:write": perMinute("users:write", 20, 200),
      "users:delete": perMinute("users:delete", 20, 200),
      "orgs:read": perMinute("orgs:read", 5, 50),
      "orgs:read-by-id": perMinute("orgs:read-by-id", 20, 200),
      "orgs:by-name": perMinute("orgs:by-name", 10, 100),
      "orgs:write": perMinute("orgs:write", 5, 25),
      // The page lists GET members twice ("Read Organization Members" 40 + 500/min, "Read Members
      // of an Organization" 20 + 200/min); the emulator takes the stricter row.
      "org-members:read": perMinute("org-members:read", 20, 200),
      "org-members:write": perMinute("org-members:write", 20, 200),
      "org-member-roles:read": perMinute("org-member-roles:read", 20, 200),
      "org-member-roles:write": perMinute("org-member-roles:write", 20, 200),
      "org-connections:read": perMinute("org-connections:read", 5, 50),
      "org-connections:write": perMinute("org-connections:write", 5, 25),
      "connections:read": perMinute("connections:read", 5, 50),
    },
    other: perMinute("other", 10, 150),
  },
  // Enterprise production: global burst 50 at 16/s, plus the endpoint buckets the page lists.
  enterprise: {
    global: { name: "global", capacity: 50, perSecond: 16 },
    endpoints: {
      "orgs:by-name": perMinute("orgs:by-name", 20, 200),
      "orgs:write": perMinute("orgs:write", 5, 150),
      "org-members:read": perMinute("org-members:read", 40, 500),
      "org-members:write": perMinute("org-members:write", 20, 200),
      "org-member-roles:read": perMinute("org-member-roles:read", 20, 200),
      "org-member-roles:write": perMinute("org-member-roles:write", 20, 200),
      "org-connections:read": perMinute("org-connections:read", 10, 100),
      "org-connections:write": perMinute("org-connections:write", 5, 150),
    },
  },
};

export class TokenBucket {
  private tokens: number;
  private updatedAt: number;

  constructor(
    readonly spec: BucketSpec,
    now: number,
  ) {
    this.tokens = spec.capacity;
    this.updatedAt = now;
  }

  private refill(now: number): void {
    const elapsed = Math.max(0, now - this.updatedAt) / 1000;
    this.tokens = Math.min(this.spec.capacity, this.tokens + elapsed * this.spec.perSecond);
    this.updatedAt = now;
  }

  available(now: number): number {
    this.refill(now);
    return this.tokens;
  }

  take(now: number): boolean {
    this.refill(now);
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }

  /** Epoch seconds at which the bucket is full again ("when the limit resets"). */
  resetAt(now: number): number {
    this.refill(now);
    const ms = ((this.spec.capacity - this.tokens) / this.spec.perSecond) * 1000;
    return Math.ceil((now + ms) / 1000);
  }

  headers(now: number): Record<string, string> {
    return {
      "x-ratelimit-limit": String(this.spec.capacity),
      "x-ratelimit-remaining": String(Math.floor(this.available(now))),
      "x-ratelimit-reset": String(this.resetAt(now)),
    };
  }
}

export interface RateDecision {
  allowed: boolean;
  /** The bucket reported in the headers: the one that refused, else the one that served the call. */
  bucket: string;
  headers: Record<string, string>;
}

export class RateLimiter {
  private buckets = new Map<string, TokenBucket>();

  /**
   * `scale` multiplies every refill rate: a time-compressed tenant for benchmarks (the same bucket
   * shapes, N times faster), so that a 10,000-user push finishes in minutes, not hours.
   */
  constructor(
    private readonly plan: Plan,
    private readonly enabled: boolean,
    private readonly scale = 1,
  ) {}

  reset(): void {
    this.buckets.clear();
  }

  private bucket(spec: BucketSpec, now: number): TokenBucket {
    let bucket = this.buckets.get(spec.name);
    if (!bucket) {
      bucket = new TokenBucket(this.scale === 1 ? spec : { ...spec, perSecond: spec.perSecond * this.scale }, now);
      this.buckets.set(spec.name, bucket);
    }
    return bucket;
  }

  /** The buckets a call of this category draws from, global first. */
  specsFor(category: Category): BucketSpec[] {
    const limits = PLAN_LIMITS[this.plan];
    const endpoint = limits.endpoints[category] ?? limits.other;
    return [limits.global, endpoint].filter((s): s is BucketSpec => s !== undefined);
  }

  take(category: Category, now = Date.now()): RateDecision {
    const buckets = this.specsFor(category).map((s) => this.bucket(s, now));
    if (!this.enabled) {
      const first = buckets[0]!;
      return {
        allowed: true,
        bucket: first.spec.name,
        headers: {
          "x-ratelimit-limit": String(first.spec.capacity),
          "x-ratelimit-remaining": String(first.spec.capacity),
          "x-ratelimit-reset": String(Math.ceil(now / 1000)),
        },
      };
    }
    for (const bucket of buckets) {
      if (!bucket.take(now)) return { allowed: false, bucket: bucket.spec.name, headers: bucket.headers(now) };
    }
    // The endpoint's own bucket served the call when it has one; else the global bucket did.
    const served = buckets[buckets.length - 1]!;
    return { allowed: true, bucket: served.spec.name, headers: served.headers(now) };
  }
}
