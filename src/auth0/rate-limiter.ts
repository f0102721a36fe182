/**
 * Token buckets mirroring the Auth0 Management API's own published buckets per plan (Auth0 docs,
 * "Rate Limit Configurations": free-public, essentials-professional-b2b, enterprise-public), so that
 * the bridge spends the tenant's budget instead of collecting 429s. Each call takes one token from
 * every bucket its endpoint draws on (e.g. Enterprise's global bucket and its organization-members
 * bucket). Responses' x-ratelimit-* headers lower the estimate of the bucket they describe; a 429
 * pauses only the bucket that answered it, until its reset.
 *
 * The deprovision lane has strict priority, and a reserved share of every bucket's burst is kept for
 * it, so a deactivation never queues behind a provisioning backlog. With a SharedBudget (the
 * database), every process calling the same tenant (serve, a CLI reconcile) spends one budget and
 * keeps one reserve. With an AsyncSharedBudget (PostgreSQL, several instances), a process spends
 * only tokens it claimed from the shared buckets, so the instances never overspend between syncs.
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
  | "orgsReadById"
  | "orgsByName"
  | "orgsWrite"
  | "orgConnectionsRead"
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
  "orgsReadById",
  "orgsByName",
  "orgsWrite",
  "orgConnectionsRead",
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
const bucket = (name: string, capacity: number, perMin: number): BucketSpec => ({
  name,
  capacity,
  refillPerSecond: perMinute(perMin),
});

/** Which published bucket a Management API call belongs to, by method and path (/api/v2 prefix optional). */
export function endpointClass(method: string, path: string): EndpointClass {
  const p = path.replace(/^\/api\/v2/, "").split("?")[0]!;
  const m = method.toUpperCase();
  if (p === "/users-by-email" || (m === "GET" && /^\/users(\/[^/]+)?$/.test(p))) return "usersRead";
  if (m === "DELETE" && /^\/users\/[^/]+$/.test(p)) return "usersDelete";
  if (/^\/users(\/[^/]+)?$/.test(p)) return "usersWrite";
  if (/^\/organizations\/name\/[^/]+$/.test(p)) return "orgsByName";
  if (/^\/organizations\/[^/]+\/members\/[^/]+\/roles$/.test(p))
    return m === "GET" ? "orgMemberRolesRead" : "orgMemberRolesWrite";
  if (/^\/organizations\/[^/]+\/members$/.test(p)) return m === "GET" ? "orgMembersRead" : "orgMembersWrite";
  if (/^\/organizations\/[^/]+\/enabled_connections(\/[^/]+)?$/.test(p))
    return m === "GET" ? "orgConnectionsRead" : "orgConnectionsWrite";
  if (m === "GET" && p === "/organizations") return "orgsRead";
  if (m === "GET" && /^\/organizations\/[^/]+$/.test(p)) return "orgsReadById";
  if (/^\/organizations(\/[^/]+)?$/.test(p)) return "orgsWrite";
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
    // Essentials, Professional and B2B: no global bucket; per-endpoint buckets, and "all other
    // endpoints" combined. Where the page lists an endpoint twice, the stricter row.
    return {
      buckets: [
        bucket("usersRead", 40, 500),
        bucket("usersWrite", 20, 200),
        bucket("usersDelete", 20, 200),
        bucket("orgsRead", 5, 50),
        bucket("orgsReadById", 20, 200),
        bucket("orgsByName", 10, 100),
        bucket("orgsWrite", 5, 25),
        bucket("orgMembersRead", 20, 200),
        bucket("orgMembersWrite", 20, 200),
        bucket("orgMemberRolesRead", 20, 200),
        bucket("orgMemberRolesWrite", 20, 200),
        bucket("orgConnectionsRead", 5, 50),
        bucket("orgConnectionsWrite", 5, 25),
        bucket("connectionsRead", 5, 50),
        bucket("other", 10, 150),
      ],
      classes: Object.fromEntries(endpointClasses.map((c) => [c, [c]])) as Record<EndpointClass, string[]>,
    };
  }
  // Enterprise production: the global bucket (burst 50, 16 per second) and the endpoint buckets the page lists on top.
  const own = [
    "orgsByName",
    "orgsWrite",
    "orgMembersRead",
    "orgMembersWrite",
    "orgMemberRolesRead",
    "orgMemberRolesWrite",
    "orgConnectionsRead",
    "orgConnectionsWrite",
  ];
  return {
    buckets: [
      { name: "global", capacity: 50, refillPerSecond: 16 },
      bucket("orgsByName", 20, 200),
      bucket("orgsWrite", 5, 150),
      bucket("orgMembersRead", 40, 500),
      bucket("orgMembersWrite", 20, 200),
      bucket("orgMemberRolesRead", 20, 200),
      bucket("orgMemberRolesWrite", 20, 200),
      bucket("orgConnectionsRead", 10, 100),
      bucket("orgConnectionsWrite", 5, 150),
    ],
    classes: Object.fromEntries(
      endpointClasses.map((c) => [c, own.includes(c) ? [c, "global"] : ["global"]]),
    ) as Record<EndpointClass, string[]>,
  };
}

/** One bucket's state. `capacity` is the burst; refill rates come from the local profile. */
export interface BucketState {
  capacity: number;
  tokens: number;
  updatedAt: number;
  /** No token is handed out before this time (after a 429). */
  pausedUntil: number;
}

/** What one process did to a bucket since it last synchronised with the shared budget. */
export interface BucketDelta {
  /** Tokens taken. */
  spent: number;
  /** Lowest x-ratelimit-remaining seen for the bucket (Auth0's own count), if any. */
  remaining?: number;
  pausedUntil: number;
}

/**
 * A budget shared by every process calling the same tenant. `sync` applies this process's deltas
 * to the shared buckets (refilled to `now` at `refillPerSecond`) in one atomic step and returns
 * the shared state, which becomes the process's local view until the next sync.
 */
export interface SharedBudget {
  sync(
    now: number,
    specs: ReadonlyMap<string, BucketSpec>,
    deltas: ReadonlyMap<string, BucketDelta>,
  ): Map<string, BucketState>;
}

/**
 * What one process asks of a bucket at an asynchronous sync: tokens to hold for its own calls,
 * taken from the shared bucket in the same atomic step, so that processes never spend more than
 * the bucket holds between syncs.
 */
export interface BucketClaim {
  /** Tokens for deprovision-lane calls: granted down to an empty bucket. */
  urgent: number;
  /** Tokens for the other lanes: granted only while the bucket keeps `reserve` tokens. */
  ordinary: number;
  /** The deprovisioning reserve: what ordinary claims must leave in the bucket. */
  reserve: number;
}

/** BucketDelta of an asynchronous sync: also hands back held tokens and claims new ones. */
export interface AsyncBucketDelta extends BucketDelta {
  /** Tokens claimed earlier and not spent, given back to the bucket (up to its capacity). */
  returned: number;
  claim: BucketClaim;
}

/** The shared state after an asynchronous sync, and what was granted to the caller. */
export interface GrantedBucketState extends BucketState {
  granted: { urgent: number; ordinary: number };
}

/**
 * A SharedBudget whose store answers asynchronously (PostgreSQL). Between syncs a process spends
 * only tokens it claimed at the last one, so N processes together never take more than the
 * bucket holds; claims for other lanes leave the deprovisioning reserve in the shared bucket.
 */
export interface AsyncSharedBudget {
  readonly asynchronous: true;
  sync(
    now: number,
    specs: ReadonlyMap<string, BucketSpec>,
    deltas: ReadonlyMap<string, AsyncBucketDelta>,
  ): Promise<Map<string, GrantedBucketState>>;
}

interface Bucket extends BucketState {
  spec: BucketSpec;
  delta: BucketDelta;
  /** With an asynchronous budget: tokens of `tokens` claimed for the deprovision lane only. */
  urgent: number;
  /** With an asynchronous budget: the shared bucket's tokens at the last sync (for snapshots). */
  pool: number;
}

/**
 * A job's lane, shared by all its calls. The worker raises it to deprovision (lift) when a
 * deactivation of the same user arrives while the job's calls wait behind a provisioning backlog.
 */
export interface LaneHandle {
  lane: number;
}

/** A lane number, or a job's handle the worker may raise while its calls wait. */
export type LaneArg = number | LaneHandle;

export const laneOf = (lane: LaneArg): number => (typeof lane === "number" ? lane : lane.lane);

interface Waiter {
  handle: LaneHandle;
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
  /** The budget shared with other processes on the same tenant (default: this process alone). */
  shared?: SharedBudget | AsyncSharedBudget;
  /** An asynchronous sync failed (the limiter keeps its held tokens and retries at the next sync). */
  onSyncError?: (err: unknown) => void;
  /** How often the local view is synchronised with the shared budget (default 100 ms). */
  syncMs?: number;
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
  private readonly specs = new Map<string, BucketSpec>();
  private readonly waiters: Waiter[] = [];
  private readonly reserveShare: number;
  private readonly now: () => number;
  private readonly shared: SharedBudget | undefined;
  private readonly asyncShared: AsyncSharedBudget | undefined;
  private readonly onSyncError: ((err: unknown) => void) | undefined;
  private readonly syncMs: number;
  private lastSync = -Infinity;
  /** An asynchronous sync is under way; `syncAgain`: another was asked for meanwhile. */
  private syncing = false;
  private syncAgain = false;
  /** The last asynchronous sync granted less than the deprovision lane claimed: wait for the next one. */
  private urgentDenied = false;
  private stopped = false;
  /**
   * Auth0 looks down (see pauseOutage): calls of the provisioning and background lanes wait until
   * this time. Kept apart from the buckets' 429 pauses, which every lane must respect.
   */
  private outageUntil = 0;
  /** A 429 from a bucket the profile does not know pauses only the endpoint class that got it. */
  private readonly classPausedUntil = new Map<EndpointClass, number>();
  private seq = 0;
  private timer: NodeJS.Timeout | undefined;
  /** Count of 429s observed, for metrics. */
  rateLimitedResponses = 0;

  constructor(
    private readonly profile: RateProfile,
    options: RateLimiterOptions = {},
  ) {
    this.reserveShare = options.reserveShare ?? 0.2;
    this.now = options.now ?? Date.now;
    if (options.shared && "asynchronous" in options.shared) this.asyncShared = options.shared;
    else this.shared = options.shared;
    this.onSyncError = options.onSyncError;
    this.syncMs = options.syncMs ?? 100;
    const scale = options.rateScale ?? 1;
    const t = this.now();
    for (const s of profile.buckets) {
      const spec = { ...s, refillPerSecond: s.refillPerSecond * scale };
      this.specs.set(spec.name, spec);
      this.buckets.set(spec.name, {
        spec,
        capacity: spec.capacity,
        // With an asynchronous budget, a process holds only what it claimed: nothing before the first sync.
        tokens: this.asyncShared ? 0 : spec.capacity,
        updatedAt: t,
        pausedUntil: 0,
        delta: { spent: 0, pausedUntil: 0 },
        urgent: 0,
        pool: spec.capacity,
      });
    }
  }

  private bucketsFor(cls: EndpointClass): Bucket[] {
    return (this.profile.classes[cls] ?? []).map((n) => this.buckets.get(n)!).filter(Boolean);
  }

  private refill(b: Bucket, t: number): void {
    // Held tokens do not grow: only the shared bucket refills, and a process claims from it.
    if (this.asyncShared) return;
    if (t > b.updatedAt) {
      b.tokens = Math.min(b.capacity, b.tokens + ((t - b.updatedAt) / 1000) * b.spec.refillPerSecond);
      b.updatedAt = t;
    }
  }

  /**
   * Brings the local view in line with the shared budget: at most every syncMs (and at once when
   * `force`, after a 429), so that sharing costs a few small transactions a second, not one per call.
   * Between syncs, another process's spending is unseen; the deprovisioning reserve absorbs that.
   */
  private syncShared(t: number, force = false): void {
    if (this.asyncShared) return this.syncAsync(this.asyncShared, t, force);
    if (!this.shared || (!force && t - this.lastSync < this.syncMs)) return;
    this.lastSync = t;
    const deltas = new Map([...this.buckets].map(([n, b]) => [n, b.delta]));
    const states = this.shared.sync(t, this.specs, deltas);
    for (const [n, b] of this.buckets) {
      const s = states.get(n);
      if (s)
        Object.assign(b, {
          capacity: s.capacity,
          tokens: s.tokens,
          updatedAt: s.updatedAt,
          pausedUntil: s.pausedUntil,
        });
      b.delta = { spent: 0, pausedUntil: 0 };
    }
  }

  /**
   * The asynchronous sync: in one atomic step of the shared budget, hands back the held tokens
   * beyond one sync interval of refill and claims what the waiting calls need (plus that interval of
   * refill for a bucket in use, so that a steady stream of calls does not wait for the next sync
   * each time). The interval's worth it keeps stays spendable while the sync is under way: handing
   * everything back made every call wait out the sync's round trips, ten times a second, which cost
   * a steady push on PostgreSQL several percent of the tenant's rate. A token is either kept or sent
   * back, never both, so none is spent twice. On failure the tokens sent come back and the next sync
   * retries.
   */
  private syncAsync(shared: AsyncSharedBudget, t: number, force: boolean): void {
    if (this.stopped) return;
    if (this.syncing) {
      if (force) this.syncAgain = true;
      return;
    }
    if (!force && t - this.lastSync < this.syncMs) return;
    this.syncing = true;
    this.lastSync = t;
    const urgent = new Map<string, number>();
    const ordinary = new Map<string, number>();
    for (const w of this.waiters) {
      const demand = w.handle.lane === 0 ? urgent : ordinary;
      for (const n of w.buckets) demand.set(n, (demand.get(n) ?? 0) + 1);
    }
    const sent = new Map<string, AsyncBucketDelta & { urgentHeld: number }>();
    for (const [n, b] of this.buckets) {
      const inUse = b.delta.spent > 0 || ordinary.has(n) || urgent.has(n);
      const ahead = inUse ? Math.max(1, Math.ceil((b.spec.refillPerSecond * this.syncMs) / 1000)) : 0;
      // Not while Auth0 said it has fewer left, or asked for a pause: then everything goes back.
      const kept = b.delta.remaining === undefined && b.pausedUntil <= t ? Math.min(b.tokens, ahead) : 0;
      const keptUrgent = Math.min(b.urgent, kept);
      sent.set(n, {
        spent: 0,
        returned: b.tokens - kept,
        urgentHeld: b.urgent - keptUrgent,
        remaining: b.delta.remaining,
        pausedUntil: b.delta.pausedUntil,
        claim: {
          urgent: urgent.get(n) ?? 0,
          ordinary: (ordinary.get(n) ?? 0) + Math.max(0, ahead - kept),
          reserve: this.reserve(b),
        },
      });
      b.tokens = kept;
      b.urgent = keptUrgent;
      b.delta = { spent: 0, pausedUntil: 0 };
    }
    shared
      .sync(t, this.specs, sent)
      .then(
        (states) => {
          this.urgentDenied = false;
          for (const [n, b] of this.buckets) {
            const d = sent.get(n)!;
            const s = states.get(n);
            if (!s) {
              b.tokens += d.returned;
              b.urgent += d.urgentHeld;
              continue;
            }
            if (s.granted.urgent < d.claim.urgent) this.urgentDenied = true;
            b.capacity = s.capacity;
            b.pool = s.tokens;
            b.updatedAt = s.updatedAt;
            // A 429 seen while the sync was under way still holds.
            b.pausedUntil = Math.max(b.pausedUntil, s.pausedUntil);
            b.tokens += s.granted.urgent + s.granted.ordinary;
            b.urgent += s.granted.urgent;
            // Auth0 counted fewer left than we were granted meanwhile: the surplus was never there.
            if (b.delta.remaining !== undefined) b.tokens = Math.min(b.tokens, b.delta.remaining);
            b.urgent = Math.min(b.urgent, b.tokens);
          }
        },
        (err: unknown) => {
          for (const [n, b] of this.buckets) {
            const d = sent.get(n)!;
            b.tokens += d.returned;
            b.urgent += d.urgentHeld;
            if (d.remaining !== undefined) b.delta.remaining = Math.min(b.delta.remaining ?? Infinity, d.remaining);
            b.delta.pausedUntil = Math.max(b.delta.pausedUntil, d.pausedUntil);
          }
          this.onSyncError?.(err);
        },
      )
      .finally(() => {
        this.syncing = false;
        if (this.stopped) return;
        const again = this.syncAgain;
        this.syncAgain = false;
        // Waiting calls spend the grant first: a sync started before would hand it straight back.
        this.drain();
        if (again) this.syncAsync(shared, this.now(), true);
      });
  }

  /** Held tokens or deltas the shared budget has not seen yet. */
  private unreported(): boolean {
    for (const b of this.buckets.values())
      if (b.tokens > 0 || b.delta.spent > 0 || b.delta.remaining !== undefined || b.delta.pausedUntil > 0) return true;
    return false;
  }

  private reserve(b: Bucket): number {
    return Math.max(1, Math.floor(b.capacity * this.reserveShare));
  }

  private available(b: Bucket, lane: number, t: number): boolean {
    if (t < b.pausedUntil) return false;
    // Held tokens were claimed above the reserve, except `urgent`, which only the deprovision lane spends.
    if (this.asyncShared) return b.tokens - (lane === 0 ? 0 : b.urgent) >= 1 - 1e-9;
    const floor = lane === 0 ? 0 : this.reserve(b);
    // Refill is fractional; the epsilon keeps 1.9999999 tokens from counting as "not yet 2".
    return b.tokens >= 1 + floor - 1e-9;
  }

  /** Waits until a call of this class may go out, then takes its tokens. Lane 0 = deprovision. */
  acquire(cls: EndpointClass, lane: LaneArg): Promise<void> {
    const handle = typeof lane === "number" ? { lane } : lane;
    return new Promise((resolve) => {
      this.waiters.push({
        handle,
        seq: this.seq++,
        cls,
        buckets: this.bucketsFor(cls).map((b) => b.spec.name),
        resolve,
      });
      this.sortWaiters();
      this.drain();
    });
  }

  /** Moves a job's waiting calls, and its later ones, to the deprovision lane. */
  lift(handle: LaneHandle): void {
    if (handle.lane === 0) return;
    handle.lane = 0;
    this.sortWaiters();
    this.drain();
  }

  private sortWaiters(): void {
    this.waiters.sort((a, b) => a.handle.lane - b.handle.lane || a.seq - b.seq);
  }

  private drain(): void {
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
    const t = this.now();
    this.syncShared(t);
    for (const b of this.buckets.values()) this.refill(b, t);
    // Strict priority per bucket: a waiter that cannot go blocks later waiters on the buckets it is
    // short of, and only those. A call waiting for an empty endpoint bucket (member roles, say) does
    // not hold back calls that need only the global bucket it shares: they go while it waits, and it
    // still comes first for the global token once its own bucket has one.
    const blocked = new Set<Bucket>();
    let nextCheck = Infinity;
    let urgentShort = false;
    for (let i = 0; i < this.waiters.length;) {
      const w = this.waiters[i]!;
      const buckets = w.buckets.map((n) => this.buckets.get(n)!);
      const classPause = this.classPausedUntil.get(w.cls) ?? 0;
      if (t < classPause) {
        nextCheck = Math.min(nextCheck, classPause);
        i++;
        continue;
      }
      // Waiters are in lane order: from here on, every waiter is held by the outage pause.
      if (w.handle.lane !== 0 && t < this.outageUntil) {
        nextCheck = Math.min(nextCheck, this.outageUntil);
        break;
      }
      if (buckets.some((b) => blocked.has(b))) {
        i++;
        continue;
      }
      if (buckets.every((b) => this.available(b, w.handle.lane, t))) {
        for (const b of buckets) {
          b.tokens -= 1;
          b.delta.spent += 1;
          if (w.handle.lane === 0 && b.urgent > 0) b.urgent -= 1;
          else b.urgent = Math.min(b.urgent, b.tokens);
        }
        this.waiters.splice(i, 1);
        w.resolve();
        continue;
      }
      for (const b of buckets) {
        if (this.available(b, w.handle.lane, t)) continue;
        blocked.add(b);
        if (this.asyncShared) {
          // Tokens come only from the next sync; a deprovision call asks for one at once.
          if (t >= b.pausedUntil && w.handle.lane === 0) urgentShort = true;
          nextCheck = Math.min(nextCheck, Math.max(b.pausedUntil, this.lastSync + this.syncMs, t + 1));
          continue;
        }
        const floor = w.handle.lane === 0 ? 0 : this.reserve(b);
        const needed = 1 + floor - b.tokens;
        // At least 1 ms ahead: a tiny shortfall added to an epoch-ms clock would round to "now" and never wake.
        const at = Math.max(
          b.pausedUntil,
          needed > 1e-9 ? t + Math.max(1, (needed / b.spec.refillPerSecond) * 1000) : t,
        );
        if (at > t) nextCheck = Math.min(nextCheck, at);
      }
      i++;
    }
    // Unless the last sync already could not serve the deprovision lane: then at the usual pace.
    if (urgentShort && !this.urgentDenied && !this.syncing && this.asyncShared)
      this.syncAsync(this.asyncShared, t, true);
    if (this.waiters.length > 0 && nextCheck < Infinity) {
      // With a shared budget, look again at the next sync at the latest: another process may have changed it.
      const wake = this.shared || this.asyncShared ? Math.min(nextCheck, t + this.syncMs) : nextCheck;
      // Not unref'd: a caller waits on it, and a CLI command whose only pending work is a call
      // waiting for its bucket would otherwise exit silently, with code 0 and nothing done.
      this.timer = setTimeout(() => this.drain(), Math.max(1, Math.ceil(wake - t)));
    } else if (this.asyncShared && this.waiters.length === 0 && !this.syncing && this.unreported()) {
      // Nobody waits, but tokens are held or news from Auth0 is unsent: hand them over at the next
      // sync, so that other processes can spend them. Unref'd: no caller waits on this one.
      this.timer = setTimeout(() => this.drain(), Math.max(1, Math.ceil(this.lastSync + this.syncMs - t)));
      this.timer.unref();
    }
  }

  /**
   * Learns from a response. x-ratelimit-limit/-remaining/-reset describe the bucket that served
   * the call: among the buckets this endpoint draws on, the one of that size. Remaining only ever
   * lowers our estimate (our own calls in flight are already counted). Headers of a bucket the
   * profile does not know change nothing; a 429 from it pauses only this endpoint class.
   */
  observe(cls: EndpointClass, status: number, headers: Headers | undefined): void {
    const t = this.now();
    const limit = Number(headers?.get("x-ratelimit-limit"));
    const remaining = Number(headers?.get("x-ratelimit-remaining"));
    const reset = Number(headers?.get("x-ratelimit-reset"));
    const hasHeaders = Number.isFinite(limit) && limit > 0 && Number.isFinite(remaining);
    const retryAfter = Number(headers?.get("retry-after"));
    const until = Math.min(
      t + 60_000,
      Number.isFinite(retryAfter) && retryAfter > 0
        ? t + retryAfter * 1000
        : Number.isFinite(reset) && reset > 0
          ? reset * 1000
          : t + 1000,
    );
    const bucket = hasHeaders ? this.bucketsFor(cls).find((b) => b.capacity === limit) : undefined;
    if (bucket) {
      this.refill(bucket, t);
      bucket.tokens = Math.min(bucket.tokens, remaining);
      bucket.urgent = Math.min(bucket.urgent, Math.max(0, bucket.tokens));
      bucket.delta.remaining = Math.min(bucket.delta.remaining ?? Infinity, remaining);
    }
    if (status === 429) {
      this.rateLimitedResponses++;
      if (bucket) {
        bucket.tokens = Math.min(bucket.tokens, 0);
        bucket.urgent = 0;
        bucket.delta.remaining = 0;
        bucket.pausedUntil = Math.max(bucket.pausedUntil, until);
        bucket.delta.pausedUntil = Math.max(bucket.delta.pausedUntil, until);
        // Every process must hold back now, not at the next sync.
        this.syncShared(t, true);
      } else {
        this.classPausedUntil.set(cls, Math.max(this.classPausedUntil.get(cls) ?? 0, until));
      }
    }
    this.drain();
  }

  /**
   * Auth0 looks down: holds the provisioning and background lanes back until `until` (epoch ms), so
   * that their jobs wait instead of spending attempts. The deprovision lane is not held: its few
   * calls keep trying (its jobs retry with backoff, and never give up), so a deactivation lands as
   * soon as Auth0 answers again, and its first success ends the pause for everyone (resumeAfterOutage).
   */
  pauseOutage(until: number): void {
    this.outageUntil = Math.max(this.outageUntil, until);
    this.drain();
  }

  /** A call succeeded after an outage pause began: Auth0 is back, so the pause ends now. */
  resumeAfterOutage(): void {
    if (this.outageUntil === 0) return;
    this.outageUntil = 0;
    this.drain();
  }

  snapshot(): RateSnapshot[] {
    const t = this.now();
    return [...this.buckets.values()].map((b) => {
      this.refill(b, t);
      return {
        name: b.spec.name,
        capacity: b.capacity,
        // With an asynchronous budget: the shared bucket at the last sync plus what this process holds.
        tokens: this.asyncShared ? b.pool + b.tokens : b.tokens,
        refillPerSecond: b.spec.refillPerSecond,
        pausedUntil: b.pausedUntil,
      };
    });
  }

  /** Releases timers (shutdown). Pending waiters stay pending; callers stop issuing calls first. */
  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }
}
