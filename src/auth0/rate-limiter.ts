/**
 * Token buckets mirroring the Auth0 Management API's own published buckets per plan (Auth0 docs,
 * "Rate Limit Configurations": free-public, essentials-professional-b2b, enterprise-public), so that
 * the bridge spends the tenant's budget instead of collecting 429s. Each call takes one token from
 * every bucket its endpoint draws on (e.g. Enterprise's global bucket and its organization-members
 * bucket). Responses' x-ratelimit-* headers lower the estimate of the bucket they describe; a 429
 * pauses only the bucket that answered it, until its reset.
 *
 * The deprovision lane has strict priority, and a reserved share of every bucket's burst is kept for
 * it, so a deactivation never queues behind a provisioning backlog. Bucket state lives in a
 * BucketStore: in memory, or in the database so that every process calling the same tenant (serve,
 * a CLI reconcile) shares one budget and one reserve.
 */

export type Auth0Plan = "free" | "essentials" | "enterprise";

/** Endpoint classes the gateway tags each call with (see endpointClass for the paths). */
export type EndpointClass =
  | "usersRead"
  | "usersWrite"
  | "usersDelete"
  | "orgMembersRead"
  | "orgMemberRolesRead"
  | "orgMembersWrite"
  | "orgMemberRolesWrite"
  | "orgsRead"
  | "orgsByName"
  | "orgsWrite"
  | "orgConnectionsWrite"
  | "connectionsRead"
  | "other";

export const endpointClasses: readonly EndpointClass[] = [
  "usersRead",
  "usersWrite",
  "usersDelete",
  "orgMembersRead",
  "orgMemberRolesRead",
  "orgMembersWrite",
  "orgMemberRolesWrite",
  "orgsRead",
  "orgsByName",
  "orgsWrite",
  "orgConnectionsWrite",
  "connectionsRead",
  "other",
];

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
const bucket = (name: string, capacity: number, perMin: number): BucketSpec => ({ name, capacity, refillPerSecond: perMinute(perMin) });

/** Which published bucket a Management API call belongs to, by method and path (/api/v2 prefix optional). */
export function endpointClass(method: string, path: string): EndpointClass {
  const p = path.replace(/^\/api\/v2/, "").split("?")[0]!;
  const m = method.toUpperCase();
  if (p === "/users-by-email" || (m === "GET" && /^\/users(\/[^/]+)?$/.test(p))) return "usersRead";
  if (m === "DELETE" && /^\/users\/[^/]+$/.test(p)) return "usersDelete";
  if (/^\/users(\/[^/]+)?$/.test(p)) return "usersWrite";
  if (/^\/organizations\/name\/[^/]+$/.test(p)) return "orgsByName";
  if (/^\/organizations\/[^/]+\/members\/[^/]+\/roles$/.test(p)) return m === "GET" ? "orgMemberRolesRead" : "orgMemberRolesWrite";
  if (/^\/organizations\/[^/]+\/members$/.test(p)) return m === "GET" ? "orgMembersRead" : "orgMembersWrite";
  if (/^\/organizations\/[^/]+\/enabled_connections(\/[^/]+)?$/.test(p)) return m === "GET" ? "orgsRead" : "orgConnectionsWrite";
  if (/^\/organizations(\/[^/]+)?$/.test(p)) return m === "GET" ? "orgsRead" : "orgsWrite";
  if (m === "GET" && /^\/connections(\/[^/]+)?$/.test(p)) return "connectionsRead";
  return "other";
}

/** The published buckets per plan (Auth0 "Rate Limit Configurations"). */
export function rateProfile(plan: Auth0Plan): RateProfile {
  if (plan === "free") {
    // One global bucket for the whole Management API: burst 2, 2 per second.
    return {
      buckets: [{ name: "global", capacity: 2, refillPerSecond: 2 }],
      classes: Object.fromEntries(endpointClasses.map((c) => [c, ["global"]])) as Record<EndpointClass, string[]>,
    };
  }
  if (plan === "essentials") {
    // Essentials, Professional and B2B: no global bucket; per-endpoint buckets, and "all other endpoints" combined.
    return {
      buckets: [
        bucket("usersRead", 40, 500),
        bucket("usersWrite", 20, 200),
        bucket("usersDelete", 20, 200),
        bucket("orgMembersWrite", 20, 200),
        bucket("orgMemberRolesWrite", 20, 200),
        bucket("orgsRead", 5, 50),
        bucket("orgsByName", 10, 100),
        bucket("orgsWrite", 5, 25),
        bucket("orgConnectionsWrite", 5, 25),
        bucket("connectionsRead", 5, 50),
        bucket("other", 10, 150),
      ],
      classes: {
        usersRead: ["usersRead"],
        usersWrite: ["usersWrite"],
        usersDelete: ["usersDelete"],
        orgMembersRead: ["other"],
        orgMemberRolesRead: ["other"],
        orgMembersWrite: ["orgMembersWrite"],
        orgMemberRolesWrite: ["orgMemberRolesWrite"],
        orgsRead: ["orgsRead"],
        orgsByName: ["orgsByName"],
        orgsWrite: ["orgsWrite"],
        orgConnectionsWrite: ["orgConnectionsWrite"],
        connectionsRead: ["connectionsRead"],
        other: ["other"],
      },
    };
  }
  // Enterprise production: the global bucket (burst 50, 16 per second) and a few endpoint buckets on top.
  return {
    buckets: [
      { name: "global", capacity: 50, refillPerSecond: 16 },
      bucket("orgMembersRead", 40, 500),
      bucket("orgMemberRolesRead", 20, 200),
      bucket("orgMembersWrite", 20, 200),
      bucket("orgMemberRolesWrite", 20, 200),
      bucket("orgsRead", 10, 100),
      bucket("orgsByName", 20, 200),
      bucket("orgsWrite", 5, 150),
    ],
    classes: {
      usersRead: ["global"],
      usersWrite: ["global"],
      usersDelete: ["global"],
      orgMembersRead: ["orgMembersRead", "global"],
      orgMemberRolesRead: ["orgMemberRolesRead", "global"],
      orgMembersWrite: ["orgMembersWrite", "global"],
      orgMemberRolesWrite: ["orgMemberRolesWrite", "global"],
      orgsRead: ["orgsRead", "global"],
      orgsByName: ["orgsByName", "global"],
      orgsWrite: ["orgsWrite", "global"],
      orgConnectionsWrite: ["orgsWrite", "global"],
      connectionsRead: ["global"],
      other: ["global"],
    },
  };
}

/** One bucket's shared state. `capacity` is the burst; refill rates come from the local profile. */
export interface BucketState {
  capacity: number;
  tokens: number;
  updatedAt: number;
  /** No token is handed out before this time (after a 429). */
  pausedUntil: number;
}

/**
 * Where bucket state lives. `transact` loads every named bucket (creating missing ones from
 * `init`), lets `fn` read and change them, and saves them, atomically with respect to every other
 * process using the same store.
 */
export interface BucketStore {
  transact<T>(names: readonly string[], init: (name: string) => BucketState, fn: (states: Map<string, BucketState>) => T): T;
}

/** Bucket state of this process alone. */
export class MemoryBucketStore implements BucketStore {
  private readonly states = new Map<string, BucketState>();
  transact<T>(names: readonly string[], init: (name: string) => BucketState, fn: (states: Map<string, BucketState>) => T): T {
    const out = new Map<string, BucketState>();
    for (const n of names) {
      let s = this.states.get(n);
      if (!s) this.states.set(n, (s = init(n)));
      out.set(n, s);
    }
    return fn(out);
  }
}

interface Waiter {
  lane: number;
  seq: number;
  cls: EndpointClass;
  buckets: string[];
  resolve: () => void;
}

export interface RateLimiterOptions {
  /** Multiplies the profile's refill rates: a tenant with raised limits, or a time-compressed emulator. */
  rateScale?: number;
  /** Share of each bucket's burst held back for the deprovision lane (lane 0). */
  reserveShare?: number;
  now?: () => number;
  /** Shared bucket state (default: this process only). */
  store?: BucketStore;
}

export interface RateSnapshot {
  name: string;
  capacity: number;
  tokens: number;
  refillPerSecond: number;
  pausedUntil: number;
}

export class RateLimiter {
  private readonly specs = new Map<string, BucketSpec>();
  private readonly waiters: Waiter[] = [];
  private readonly reserveShare: number;
  private readonly now: () => number;
  private readonly store: BucketStore;
  private readonly names: string[];
  /** A 429 from a bucket the profile does not know pauses only the endpoint class that got it. */
  private readonly classPausedUntil = new Map<EndpointClass, number>();
  private seq = 0;
  private timer: NodeJS.Timeout | undefined;
  /** Count of 429s observed, for metrics. */
  rateLimitedResponses = 0;

  constructor(private readonly profile: RateProfile, options: RateLimiterOptions = {}) {
    this.reserveShare = options.reserveShare ?? 0.2;
    this.now = options.now ?? Date.now;
    this.store = options.store ?? new MemoryBucketStore();
    const scale = options.rateScale ?? 1;
    for (const spec of profile.buckets) this.specs.set(spec.name, { ...spec, refillPerSecond: spec.refillPerSecond * scale });
    this.names = [...this.specs.keys()];
  }

  private init = (name: string): BucketState => ({ capacity: this.specs.get(name)?.capacity ?? 1, tokens: this.specs.get(name)?.capacity ?? 1, updatedAt: this.now(), pausedUntil: 0 });

  private bucketsFor(cls: EndpointClass): string[] {
    return (this.profile.classes[cls] ?? []).filter((n) => this.specs.has(n));
  }

  private refill(name: string, b: BucketState, t: number): void {
    if (t > b.updatedAt) {
      b.tokens = Math.min(b.capacity, b.tokens + ((t - b.updatedAt) / 1000) * this.specs.get(name)!.refillPerSecond);
      b.updatedAt = t;
    }
  }

  private reserve(b: BucketState): number {
    return Math.max(1, Math.floor(b.capacity * this.reserveShare));
  }

  /** Waits until a call of this class may go out, then takes its tokens. Lane 0 = deprovision. */
  acquire(cls: EndpointClass, lane: number): Promise<void> {
    return new Promise((resolve) => {
      this.waiters.push({ lane, seq: this.seq++, cls, buckets: this.bucketsFor(cls), resolve });
      this.waiters.sort((a, b) => a.lane - b.lane || a.seq - b.seq);
      this.drain();
    });
  }

  private drain(): void {
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
    if (this.waiters.length === 0) return;
    const t = this.now();
    const granted: Waiter[] = [];
    // One transaction for the whole pass: other processes see a consistent budget.
    const nextCheck = this.store.transact(this.names, this.init, (states) => {
      for (const [name, b] of states) this.refill(name, b, t);
      // Strict priority per bucket: a waiter that cannot go blocks lower-priority waiters on the same buckets.
      const blocked = new Set<string>();
      let next = Infinity;
      for (let i = 0; i < this.waiters.length; ) {
        const w = this.waiters[i]!;
        const classPause = this.classPausedUntil.get(w.cls) ?? 0;
        if (t < classPause) {
          next = Math.min(next, classPause);
          i++;
          continue;
        }
        if (w.buckets.some((b) => blocked.has(b))) {
          i++;
          continue;
        }
        const floorOf = (b: BucketState) => (w.lane === 0 ? 0 : this.reserve(b));
        // Refill is fractional; the epsilon keeps 1.9999999 tokens from counting as "not yet 2".
        const ok = w.buckets.every((n) => {
          const b = states.get(n)!;
          return t >= b.pausedUntil && b.tokens >= 1 + floorOf(b) - 1e-9;
        });
        if (ok) {
          for (const n of w.buckets) states.get(n)!.tokens -= 1;
          this.waiters.splice(i, 1);
          granted.push(w);
          continue;
        }
        for (const n of w.buckets) {
          const b = states.get(n)!;
          blocked.add(n);
          const needed = 1 + floorOf(b) - b.tokens;
          // At least 1 ms ahead: a tiny shortfall added to an epoch-ms clock would round to "now" and never wake.
          const at = Math.max(b.pausedUntil, needed > 1e-9 ? t + Math.max(1, (needed / this.specs.get(n)!.refillPerSecond) * 1000) : t);
          if (at > t) next = Math.min(next, at);
        }
        i++;
      }
      return next;
    });
    for (const w of granted) w.resolve();
    if (this.waiters.length > 0) {
      // Another process may take tokens meanwhile: never sleep so long that a freed budget goes unnoticed.
      const wake = nextCheck < Infinity ? nextCheck : t + 50;
      this.timer = setTimeout(() => this.drain(), Math.max(1, Math.ceil(wake - t)));
      this.timer.unref?.();
    }
  }

  /**
   * Learns from a response. x-ratelimit-limit/-remaining/-reset describe the bucket that served
   * the call: among the buckets this endpoint draws on, the one of that size. Remaining only ever
   * lowers our estimate (our own calls in flight are already counted). Headers of a bucket the
   * profile does not know change nothing; a 429 from it pauses only this endpoint class.
   */
  observe(cls: EndpointClass, status: number, headers: Headers | undefined): void {
    const candidates = this.bucketsFor(cls);
    const t = this.now();
    const limit = Number(headers?.get("x-ratelimit-limit"));
    const remaining = Number(headers?.get("x-ratelimit-remaining"));
    const reset = Number(headers?.get("x-ratelimit-reset"));
    const hasHeaders = Number.isFinite(limit) && limit > 0 && Number.isFinite(remaining);
    const retryAfter = Number(headers?.get("retry-after"));
    const until = Math.min(
      t + 60_000,
      Number.isFinite(retryAfter) && retryAfter > 0 ? t + retryAfter * 1000 : Number.isFinite(reset) && reset > 0 ? reset * 1000 : t + 1000,
    );
    if (status === 429) this.rateLimitedResponses++;
    const matched = hasHeaders ? this.store.transact(candidates, this.init, (states) => candidates.find((n) => states.get(n)!.capacity === limit)) : undefined;
    if (matched) {
      this.store.transact([matched], this.init, (states) => {
        const b = states.get(matched)!;
        this.refill(matched, b, t);
        b.tokens = Math.min(b.tokens, remaining);
        if (status === 429) {
          b.tokens = Math.min(b.tokens, 0);
          b.pausedUntil = Math.max(b.pausedUntil, until);
        }
      });
    } else if (status === 429) {
      this.classPausedUntil.set(cls, Math.max(this.classPausedUntil.get(cls) ?? 0, until));
    }
    this.drain();
  }

  /** Holds every call back until `until` (epoch ms): Auth0 looks down, so calls wait instead of failing. */
  pauseAll(until: number): void {
    this.store.transact(this.names, this.init, (states) => {
      for (const b of states.values()) b.pausedUntil = Math.max(b.pausedUntil, until);
    });
    this.drain();
  }

  snapshot(): RateSnapshot[] {
    const t = this.now();
    return this.store.transact(this.names, this.init, (states) =>
      [...states].map(([name, b]) => {
        this.refill(name, b, t);
        return { name, capacity: b.capacity, tokens: b.tokens, refillPerSecond: this.specs.get(name)!.refillPerSecond, pausedUntil: b.pausedUntil };
      }),
    );
  }

  /** Releases timers (shutdown). Pending waiters stay pending; callers stop issuing calls first. */
  stop(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }
}
