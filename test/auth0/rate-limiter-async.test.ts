/**
 * The limiter over an asynchronous shared budget (PostgreSQL's, here an in-memory one with the same
 * step): calls go out only on tokens claimed from the shared bucket, a deprovisioning call does not
 * wait for the next scheduled sync, and a failed sync loses no token.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import {
  RateLimiter,
  rateProfile,
  type AsyncBucketDelta,
  type AsyncSharedBudget,
  type BucketSpec,
  type GrantedBucketState,
} from "../../src/auth0/rate-limiter.js";
import { stepBucket } from "../../src/directory/pg/budget.js";

class MemoryBudget implements AsyncSharedBudget {
  readonly asynchronous = true as const;
  rows = new Map<string, { name: string; capacity: number; tokens: number; updatedAt: number; pausedUntil: number }>();
  syncs: Map<string, AsyncBucketDelta>[] = [];
  failing = false;
  /** While set, syncs wait for `release()`. */
  held: (() => void)[] | undefined;

  async sync(
    now: number,
    specs: ReadonlyMap<string, BucketSpec>,
    deltas: ReadonlyMap<string, AsyncBucketDelta>,
  ): Promise<Map<string, GrantedBucketState>> {
    this.syncs.push(new Map(deltas));
    if (this.held) await new Promise<void>((r) => this.held!.push(r));
    if (this.failing) throw new Error("connection refused");
    const out = new Map<string, GrantedBucketState>();
    for (const [name, spec] of specs) {
      const s = stepBucket(this.rows.get(name), spec, deltas.get(name), now);
      this.rows.set(name, { name, ...s });
      out.set(name, s);
    }
    return out;
  }
}

describe("RateLimiter over an asynchronous shared budget", () => {
  beforeEach(() => {
    vi.useFakeTimers();
    vi.setSystemTime(1_000_000);
  });
  afterEach(() => vi.useRealTimers());

  it("grants nothing before its first claim comes back", async () => {
    const budget = new MemoryBudget();
    budget.held = [];
    const limiter = new RateLimiter(rateProfile("free"), { shared: budget });
    let granted = false;
    void limiter.acquire("usersWrite", 1).then(() => (granted = true));
    await vi.advanceTimersByTimeAsync(50);
    expect(granted).toBe(false);
    const waiting = budget.held.splice(0);
    budget.held = undefined;
    for (const r of waiting) r();
    await vi.advanceTimersByTimeAsync(0);
    expect(granted).toBe(true);
    limiter.stop();
  });

  it("claims the reserve for a deprovisioning call at once, not at the next sync", async () => {
    const budget = new MemoryBudget();
    // Syncs every 10 s: a call that waited for the next one would wait that long.
    const limiter = new RateLimiter(rateProfile("free"), { shared: budget, syncMs: 10_000 });
    await limiter.acquire("usersWrite", 1);
    let deprovisioned = false;
    void limiter.acquire("usersDelete", 0).then(() => (deprovisioned = true));
    await vi.advanceTimersByTimeAsync(5);
    expect(deprovisioned).toBe(true);
    // Free plan: burst 2, one of them reserved; the ordinary call took the other.
    expect(budget.syncs.at(-1)!.get("global")!.claim.urgent).toBe(1);
    limiter.stop();
  });

  it("keeps spending up to one sync interval of refill while a sync is under way", async () => {
    const budget = new MemoryBudget();
    // 100 tokens a second, synced every 100 ms: an interval's refill is 10 tokens.
    const profile = rateProfile("free");
    profile.buckets = [{ name: "global", capacity: 1_000, refillPerSecond: 100 }];
    const limiter = new RateLimiter(profile, { shared: budget, syncMs: 100 });
    // A steady stream: the first claim brings the call's token and an interval's worth ahead.
    await limiter.acquire("usersWrite", 1);
    await limiter.acquire("usersWrite", 1);
    // The next sync hangs (a slow round trip to the database).
    budget.held = [];
    await vi.advanceTimersByTimeAsync(120);
    expect(budget.held.length).toBe(1);
    const during = budget.syncs.at(-1)!.get("global")!;
    let granted = 0;
    for (let i = 0; i < 20; i++) void limiter.acquire("usersWrite", 1).then(() => granted++);
    await vi.advanceTimersByTimeAsync(5);
    // The first sync claimed 11 (the call's token and 10 ahead) and two calls spent two: the 9 held
    // stay (no more than an interval's refill), none was handed back, and they are spent although
    // the sync has not answered. The other 11 calls wait for it.
    expect(during.returned).toBe(0);
    expect(granted).toBe(9);
    for (const r of budget.held.splice(0)) r();
    budget.held = undefined;
    await vi.advanceTimersByTimeAsync(300);
    expect(granted).toBe(20);
    limiter.stop();
  });

  it("keeps its tokens through a failed sync, reports the failure, and hands them back once the store answers", async () => {
    const budget = new MemoryBudget();
    const errors: unknown[] = [];
    // One bucket of 50 that does not refill: whatever is not spent must come back.
    const noRefill = rateProfile("free");
    noRefill.buckets = [{ name: "global", capacity: 50, refillPerSecond: 0 }];
    const limiter = new RateLimiter(noRefill, { shared: budget, syncMs: 100, onSyncError: (e) => errors.push(e) });
    await limiter.acquire("usersWrite", 1);
    budget.failing = true;
    await vi.advanceTimersByTimeAsync(150);
    expect(errors.length).toBeGreaterThan(0);
    // The store is down: calls still go out on the tokens already claimed.
    await limiter.acquire("usersWrite", 1);
    budget.failing = false;
    await vi.advanceTimersByTimeAsync(1_000);
    // Idle now: the last sync claimed nothing, and the bucket lacks exactly the two calls made.
    const last = budget.syncs.at(-1)!.get("global")!;
    expect(last.claim.ordinary + last.claim.urgent).toBe(0);
    expect(budget.rows.get("global")!.tokens).toBe(48);
    limiter.stop();
  });
});
