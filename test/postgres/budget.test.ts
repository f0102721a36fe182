/**
 * The Auth0 rate budget shared through PostgreSQL by several instances behind a load balancer: each
 * instance (its own pool, its own limiter) spends only tokens it claimed from the shared rows, so
 * together they never take more than the bucket holds plus its refill, ordinary calls leave the
 * deprovisioning reserve, and what one instance learns from Auth0 (remaining count, 429 pause)
 * holds the others back too.
 */
import pg from "pg";
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import {
  endpointClasses,
  RateLimiter,
  type AsyncBucketDelta,
  type BucketSpec,
  type EndpointClass,
  type RateProfile,
} from "../../src/auth0/rate-limiter.js";
import { PostgresBudget } from "../../src/directory/pg/budget.js";
import { migratePostgres } from "../../src/directory/postgres.js";
import { freshDatabase, postgresUnavailable, withClient, type TestDatabase } from "../support/postgres.js";

/** One bucket every call draws on. */
function oneBucket(capacity: number, refillPerSecond: number): RateProfile {
  return {
    buckets: [{ name: "global", capacity, refillPerSecond }],
    classes: Object.fromEntries(endpointClasses.map((c) => [c, ["global"]])) as Record<EndpointClass, string[]>,
  };
}

async function until(what: string, cond: () => boolean | Promise<boolean>, timeoutMs = 15_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`timed out waiting until ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe.skipIf(postgresUnavailable !== "")("the Auth0 rate budget shared through PostgreSQL", () => {
  let database: TestDatabase;
  const pools: pg.Pool[] = [];
  const limiters: RateLimiter[] = [];
  let tenantSeq = 0;

  beforeAll(async () => {
    database = await freshDatabase();
    await migratePostgres(database.url);
  });
  afterEach(async () => {
    for (const l of limiters.splice(0)) l.stop();
    // Let syncs under way finish before their pools close.
    await sleep(100);
    await Promise.all(pools.splice(0).map((p) => p.end()));
  });
  afterAll(async () => {
    await database?.drop();
  });

  /** An instance: its own pool (its own connections) on the shared database. */
  const instance = (): pg.Pool => {
    const pool = new pg.Pool({ connectionString: database.url, max: 3 });
    pools.push(pool);
    return pool;
  };

  /** `n` instances with limiters sharing one tenant's budget. */
  function instances(
    n: number,
    profile: RateProfile,
  ): { limiters: RateLimiter[]; tenant: string; errors: unknown[]; syncs: number[] } {
    const tenant = `tenant-${++tenantSeq}.auth0.com`;
    const errors: unknown[] = [];
    const syncs = Array.from({ length: n }, () => 0);
    const made = Array.from({ length: n }, (_, i) => {
      const budget = new PostgresBudget(instance(), tenant);
      const sync = budget.sync.bind(budget);
      budget.sync = (...args) => (syncs[i]!++, sync(...args));
      return new RateLimiter(profile, { shared: budget, syncMs: 25, onSyncError: (e) => errors.push(e) });
    });
    limiters.push(...made);
    return { limiters: made, tenant, errors, syncs };
  }

  const row = (tenant: string) =>
    withClient(database.url, async (c) => {
      const r = await c.query<{ tokens: number; paused_until: string }>(
        "SELECT tokens, paused_until FROM rate_buckets WHERE tenant = $1 AND name = 'global'",
        [tenant],
      );
      return { tokens: r.rows[0]!.tokens, pausedUntil: Number(r.rows[0]!.paused_until) };
    });

  it("three instances asking at once get exactly the bucket above its reserve, and the reserve goes to deprovisioning", async () => {
    // Burst 10, no refill: everything granted must come out of the ten tokens, whatever the timing.
    const {
      limiters: [a, b, c],
      tenant,
      errors,
      syncs,
    } = instances(3, oneBucket(10, 0));
    let ordinary = 0;
    for (const l of [a!, b!, c!]) for (let i = 0; i < 6; i++) void l.acquire("usersWrite", 1).then(() => ordinary++);
    await until("the ordinary calls took the bucket down to its reserve", () => ordinary === 8);
    // Many syncs later, none of the ten waiting calls got a token of the reserve (2 of 10).
    await sleep(300);
    expect(ordinary).toBe(8);
    expect((await row(tenant)).tokens).toBeGreaterThanOrEqual(2 - 1e-9);

    // Deprovisioning calls, on two different instances, go out of the reserve at once …
    await Promise.all([a!.acquire("usersDelete", 0), b!.acquire("usersDelete", 0)]);
    // … and a third finds the bucket empty: nothing was granted twice.
    let third = false;
    void c!.acquire("usersDelete", 0).then(() => (third = true));
    const before = syncs[2]!;
    await sleep(300);
    expect(third).toBe(false);
    // Waiting for an empty bucket, it asks again at its sync pace (25 ms), not in a loop.
    expect(syncs[2]! - before).toBeLessThanOrEqual(20);
    expect(ordinary).toBe(8);
    expect((await row(tenant)).tokens).toBeLessThan(1);
    expect(errors).toEqual([]);
  });

  it("three instances spending concurrently never grant more than the burst above the reserve plus the refill", async () => {
    const capacity = 10;
    const refillPerSecond = 5;
    const reserve = 2;
    const started = Date.now();
    const { limiters: three, errors } = instances(3, oneBucket(capacity, refillPerSecond));
    const grants: number[] = [];
    await Promise.all(
      three.flatMap((l) =>
        Array.from({ length: 2 }, async () => {
          // Two workers per instance, four calls each: 24 calls for a bucket of 8 above the reserve.
          for (let i = 0; i < 4; i++) {
            await l.acquire("usersWrite", 1);
            grants.push(Date.now());
          }
        }),
      ),
    );
    expect(grants).toHaveLength(24);
    // At every grant, the calls granted so far fit in the bucket as it stood when the run began plus
    // what it refilled since. Unshared, each instance would take its own 8 at once: 24 > 8.
    grants.sort((x, y) => x - y);
    grants.forEach((at, i) => {
      const allowed = capacity - reserve + ((at - started) / 1000) * refillPerSecond;
      expect(i + 1).toBeLessThanOrEqual(Math.floor(allowed + 1e-9));
    });
    expect(errors).toEqual([]);
  });

  it("a 429 seen by one instance holds the others back until its reset", async () => {
    const {
      limiters: [a, b],
      tenant,
    } = instances(2, oneBucket(10, 5));
    await a!.acquire("usersWrite", 1);
    const reset = Math.ceil((Date.now() + 1_500) / 1000);
    a!.observe(
      "usersWrite",
      429,
      new Headers({ "x-ratelimit-limit": "10", "x-ratelimit-remaining": "0", "x-ratelimit-reset": String(reset) }),
    );
    await until("the pause reached the shared row", async () => (await row(tenant)).pausedUntil >= reset * 1000);
    // Even a deprovisioning call of the other instance waits for the reset.
    await b!.acquire("usersDelete", 0);
    expect(Date.now()).toBeGreaterThanOrEqual(reset * 1000);
  });

  describe("one sync at a time (the budget alone)", () => {
    const spec: BucketSpec = { name: "global", capacity: 10, refillPerSecond: 5 };
    const specs = new Map([["global", spec]]);
    const delta = (d: Partial<AsyncBucketDelta>): Map<string, AsyncBucketDelta> =>
      new Map([
        ["global", { spent: 0, returned: 0, pausedUntil: 0, claim: { urgent: 0, ordinary: 0, reserve: 2 }, ...d }],
      ]);

    it("grants the tokens above the reserve once in all among thirty claims from three instances at the same instant", async () => {
      const tenant = `tenant-${++tenantSeq}.auth0.com`;
      const budgets = [instance(), instance(), instance()].map((p) => new PostgresBudget(p, tenant));
      const now = Date.now();
      // One clock reading for all: no refill between the claims, so the row locks alone decide.
      const results = await Promise.all(
        Array.from({ length: 30 }, (_, i) =>
          budgets[i % 3]!.sync(now, specs, delta({ claim: { urgent: 0, ordinary: 1, reserve: 2 } })),
        ),
      );
      const granted = results.reduce((n, r) => n + r.get("global")!.granted.ordinary, 0);
      expect(granted).toBe(8);
      // Deprovisioning claims then take the reserve, and no more.
      const urgent = await Promise.all(
        budgets.map((b) => b.sync(now, specs, delta({ claim: { urgent: 1, ordinary: 0, reserve: 2 } }))),
      );
      expect(urgent.reduce((n, r) => n + r.get("global")!.granted.urgent, 0)).toBe(2);
      expect((await row(tenant)).tokens).toBeCloseTo(0, 9);
    });

    it("Auth0's remaining count and a pause recorded by one instance reach another", async () => {
      const tenant = `tenant-${++tenantSeq}.auth0.com`;
      const [one, other] = [instance(), instance()].map((p) => new PostgresBudget(p, tenant));
      const now = Date.now();
      await one!.sync(now, specs, delta({ remaining: 3 }));
      const seen = (await other!.sync(now, specs, delta({}))).get("global")!;
      expect(seen.tokens).toBe(3);

      await one!.sync(now, specs, delta({ pausedUntil: now + 60_000 }));
      const paused = (
        await other!.sync(now + 1_000, specs, delta({ claim: { urgent: 1, ordinary: 1, reserve: 2 } }))
      ).get("global")!;
      expect(paused.pausedUntil).toBe(now + 60_000);
      // Refilled to 8 meanwhile, yet nothing is granted while paused, not even to deprovisioning.
      expect(paused.granted).toEqual({ urgent: 0, ordinary: 0 });
    });

    it("a sync that claims tokens is two round trips: the rows locked with the BEGIN, written with the COMMIT", async () => {
      const tenant = `tenant-${++tenantSeq}.auth0.com`;
      const budget = new PostgresBudget(instance(), tenant);
      const now = Date.now();
      const spy = vi.spyOn(pg.Client.prototype, "query");
      let texts: string[];
      try {
        // The first sync of a tenant also creates its rows, in the same round trip.
        const first = await budget.sync(now, specs, delta({ claim: { urgent: 0, ordinary: 3, reserve: 2 } }));
        expect(first.get("global")!.granted.ordinary).toBe(3);
        texts = spy.mock.calls.map(([q]) => (typeof q === "string" ? q : (q as { text: string }).text));
      } finally {
        spy.mockRestore();
      }
      expect(texts).toHaveLength(2);
      expect(texts[0]).toMatch(/^BEGIN;[\s\S]*INSERT INTO rate_buckets[\s\S]*FOR UPDATE$/);
      expect(texts[1]).toMatch(/^UPDATE rate_buckets[\s\S]*;\s*COMMIT$/);
      expect((await row(tenant)).tokens).toBe(7);
    });

    it("takes back held tokens up to the capacity", async () => {
      const tenant = `tenant-${++tenantSeq}.auth0.com`;
      const budget = new PostgresBudget(instance(), tenant);
      const now = Date.now();
      const first = (await budget.sync(now, specs, delta({ claim: { urgent: 0, ordinary: 5, reserve: 2 } }))).get(
        "global",
      )!;
      expect(first.granted.ordinary).toBe(5);
      expect(first.tokens).toBe(5);
      // Two seconds later the bucket refilled to full; the five returned do not push it above 10.
      const back = (await budget.sync(now + 2_000, specs, delta({ returned: 5 }))).get("global")!;
      expect(back.tokens).toBe(10);
      expect((await row(tenant)).tokens).toBe(10);
    });
  });
});
