import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { endpointClass, RateLimiter, rateProfile } from "../../src/auth0/rate-limiter.js";

/** Resolves every acquire in order and records the (fake) time at which each one was granted. */
async function grantTimes(limiter: RateLimiter, calls: { lane: number; tag: string }[], advanceMs: number) {
  const granted: { tag: string; at: number }[] = [];
  for (const c of calls)
    void limiter.acquire("usersWrite", c.lane).then(() => granted.push({ tag: c.tag, at: Date.now() }));
  await vi.advanceTimersByTimeAsync(advanceMs);
  return granted;
}

describe("RateLimiter", () => {
  beforeEach(() => {
    vi.useFakeTimers();
    vi.setSystemTime(1_000_000);
  });
  afterEach(() => vi.useRealTimers());

  it("keeps provisioning to the free plan's 2 requests per second", async () => {
    const limiter = new RateLimiter(rateProfile("free"));
    const granted = await grantTimes(
      limiter,
      Array.from({ length: 9 }, (_, i) => ({ lane: 1, tag: `p${i}` })),
      10_000,
    );
    expect(granted).toHaveLength(9);
    // The burst of 2 keeps one token back for deprovisioning, so only one goes at once; then 2/s.
    const span = granted[8]!.at - granted[0]!.at;
    expect(span).toBeGreaterThanOrEqual(3_900);
    expect(span).toBeLessThanOrEqual(4_600);
  });

  it("serves a deprovision call before a queued provisioning backlog", async () => {
    const limiter = new RateLimiter(rateProfile("free"));
    const calls = Array.from({ length: 6 }, (_, i) => ({ lane: 1, tag: `p${i}` }));
    calls.push({ lane: 0, tag: "deprovision" });
    const granted = await grantTimes(limiter, calls, 10_000);
    const order = granted.map((g) => g.tag);
    // The first provision call took a token at once; the deprovision call uses the reserved one next.
    expect(order.indexOf("deprovision")).toBeLessThanOrEqual(1);
    expect(granted.find((g) => g.tag === "deprovision")!.at - 1_000_000).toBeLessThan(100);
  });

  it("lifts a job's call already waiting behind a provisioning backlog to the front when the job is raised to deprovision", async () => {
    const limiter = new RateLimiter(rateProfile("free"));
    const granted: string[] = [];
    for (let i = 0; i < 6; i++) void limiter.acquire("usersWrite", 1).then(() => granted.push(`p${i}`));
    // The last call of the backlog belongs to a job whose user was just deactivated.
    const job = { lane: 1 };
    void limiter.acquire("usersWrite", job).then(() => granted.push("lifted"));
    await vi.advanceTimersByTimeAsync(0);
    expect(granted).toEqual(["p0"]);
    limiter.lift(job);
    await vi.advanceTimersByTimeAsync(100);
    // It takes the token kept for deprovisioning at once, ahead of the five calls queued before it.
    expect(granted).toEqual(["p0", "lifted"]);
    await vi.advanceTimersByTimeAsync(5_000);
    expect(granted.slice(2)).toEqual(["p1", "p2", "p3", "p4", "p5"]);
  });

  it("an outage pause holds provisioning but not the deprovision lane, and ends when Auth0 answers again", async () => {
    const limiter = new RateLimiter(rateProfile("enterprise"));
    limiter.pauseOutage(Date.now() + 3_600_000);
    const granted = await grantTimes(
      limiter,
      [
        { lane: 1, tag: "provision" },
        { lane: 0, tag: "deprovision" },
      ],
      1_000,
    );
    expect(granted.map((g) => g.tag)).toEqual(["deprovision"]);
    limiter.resumeAfterOutage();
    await vi.advanceTimersByTimeAsync(0);
    expect(granted.map((g) => g.tag)).toEqual(["deprovision", "provision"]);
  });

  it("pauses a bucket after a 429 until x-ratelimit-reset", async () => {
    const limiter = new RateLimiter(rateProfile("enterprise"));
    const reset = Math.ceil((Date.now() + 3_000) / 1000);
    limiter.observe(
      "usersWrite",
      429,
      new Headers({ "x-ratelimit-limit": "50", "x-ratelimit-remaining": "0", "x-ratelimit-reset": String(reset) }),
    );
    const granted = await grantTimes(limiter, [{ lane: 0, tag: "after429" }], 5_000);
    expect(granted).toHaveLength(1);
    expect(granted[0]!.at).toBeGreaterThanOrEqual(reset * 1000);
    expect(limiter.rateLimitedResponses).toBe(1);
  });

  it("lowers its estimate to the server's x-ratelimit-remaining", async () => {
    const limiter = new RateLimiter(rateProfile("enterprise"));
    limiter.observe(
      "usersWrite",
      200,
      new Headers({ "x-ratelimit-limit": "50", "x-ratelimit-remaining": "3", "x-ratelimit-reset": "0" }),
    );
    const global = limiter.snapshot().find((b) => b.name === "global")!;
    expect(global.tokens).toBeLessThanOrEqual(3);
    // Reserve is 10 of 50: a provisioning call must now wait for refill (16/s) to 11 tokens.
    const granted = await grantTimes(limiter, [{ lane: 1, tag: "p" }], 2_000);
    expect(granted[0]!.at - 1_000_000).toBeGreaterThanOrEqual(400);
  });
});

describe("RateLimiter with a real clock", () => {
  it("wakes queued callers even when refill leaves a fraction of a token short (float rounding on epoch ms)", async () => {
    const limiter = new RateLimiter(rateProfile("enterprise"));
    const started = Date.now();
    // orgsWrite: 5 burst, 2.5/s, 1 reserved: 7 provisioning calls need about 1.2 s.
    await Promise.all(Array.from({ length: 7 }, () => limiter.acquire("orgsWrite", 1)));
    for (let i = 0; i < 3; i++) {
      limiter.observe(
        "orgsWrite",
        200,
        new Headers({ "x-ratelimit-limit": "50", "x-ratelimit-remaining": "50", "x-ratelimit-reset": "0" }),
      );
      await limiter.acquire("orgsWrite", 1);
    }
    expect(Date.now() - started).toBeLessThan(5_000);
    limiter.stop();
  });
});

describe("RateLimiter on the published buckets", () => {
  beforeEach(() => {
    vi.useFakeTimers();
    vi.setSystemTime(1_000_000);
  });
  afterEach(() => vi.useRealTimers());

  it("files each Management API call under its published bucket", () => {
    expect(endpointClass("GET", "/api/v2/users-by-email")).toBe("usersRead");
    expect(endpointClass("PATCH", "/api/v2/users/auth0%7C1")).toBe("usersWrite");
    expect(endpointClass("DELETE", "/api/v2/users/auth0%7C1")).toBe("usersDelete");
    expect(endpointClass("GET", "/api/v2/organizations/org_1/members")).toBe("orgMembersRead");
    expect(endpointClass("GET", "/api/v2/organizations/org_1/members/auth0%7C1/roles")).toBe("orgMemberRolesRead");
    expect(endpointClass("POST", "/api/v2/organizations/org_1/members/auth0%7C1/roles")).toBe("orgMemberRolesWrite");
    expect(endpointClass("PATCH", "/api/v2/organizations/org_1/enabled_connections/con_1")).toBe("orgConnectionsWrite");
    expect(endpointClass("GET", "/api/v2/organizations/name/acme")).toBe("orgsByName");
    expect(endpointClass("GET", "/api/v2/connections")).toBe("connectionsRead");
    expect(endpointClass("POST", "/api/v2/users/auth0%7C1/revoke-access")).toBe("other");
  });

  it("a 429 from the organization-members bucket pauses only that bucket, not the global one the deprovision lane needs", async () => {
    const limiter = new RateLimiter(rateProfile("enterprise"));
    const reset = Math.ceil((Date.now() + 5_000) / 1000);
    limiter.observe(
      "orgMembersRead",
      429,
      new Headers({ "x-ratelimit-limit": "40", "x-ratelimit-remaining": "0", "x-ratelimit-reset": String(reset) }),
    );
    const granted: string[] = [];
    void limiter.acquire("usersWrite", 0).then(() => granted.push("block"));
    void limiter.acquire("orgMembersRead", 2).then(() => granted.push("members"));
    await vi.advanceTimersByTimeAsync(100);
    expect(granted).toEqual(["block"]);
    expect(limiter.snapshot().find((b) => b.name === "global")!.pausedUntil).toBe(0);
    await vi.advanceTimersByTimeAsync(5_000);
    expect(granted).toEqual(["block", "members"]);
  });

  it("a call waiting for an empty endpoint bucket does not hold back later calls that need only the global bucket", async () => {
    const limiter = new RateLimiter(rateProfile("enterprise"));
    // Enterprise member-roles reads: burst 20, 200 a minute; 4 of the burst are kept for deprovisioning.
    const reads: number[] = [];
    for (let i = 0; i < 17; i++)
      void limiter.acquire("orgMemberRolesRead", 2).then(() => reads.push(Date.now() - 1_000_000));
    let users = 0;
    for (let i = 0; i < 10; i++) void limiter.acquire("usersRead", 2).then(() => users++);
    await vi.advanceTimersByTimeAsync(50);
    // The 17th read waits (0.3 s a token); the user reads behind it go at once on the global bucket.
    expect(reads).toHaveLength(16);
    expect(users).toBe(10);
    await vi.advanceTimersByTimeAsync(400);
    expect(reads).toHaveLength(17);
    expect(reads[16]).toBeGreaterThanOrEqual(250);
  });

  it("still serves an earlier call first once its own bucket has refilled, even with later calls draining the shared bucket", async () => {
    const limiter = new RateLimiter(rateProfile("enterprise"));
    for (let i = 0; i < 16; i++) void limiter.acquire("orgMemberRolesRead", 1);
    await vi.advanceTimersByTimeAsync(1);
    const order: string[] = [];
    void limiter.acquire("orgMemberRolesRead", 1).then(() => order.push("roles"));
    // Far more later global-only calls than the global bucket refills while the roles read waits.
    for (let i = 0; i < 200; i++) void limiter.acquire("usersRead", 1).then(() => order.push("user"));
    await vi.advanceTimersByTimeAsync(2_000);
    const at = order.indexOf("roles");
    expect(at).toBeGreaterThanOrEqual(0);
    // Global refills 16 a second: within 2 s the roles read (ready after 0.3 s) went, long before the backlog drained.
    expect(order.slice(at + 1).filter((x) => x === "user").length).toBeGreaterThan(0);
  });

  it("a header from a bucket it does not know resizes nothing, and its 429 pauses only that endpoint", async () => {
    const limiter = new RateLimiter(rateProfile("enterprise"));
    const before = limiter.snapshot().find((b) => b.name === "global")!;
    const reset = Math.ceil((Date.now() + 3_000) / 1000);
    limiter.observe(
      "usersRead",
      429,
      new Headers({ "x-ratelimit-limit": "37", "x-ratelimit-remaining": "0", "x-ratelimit-reset": String(reset) }),
    );
    const after = limiter.snapshot().find((b) => b.name === "global")!;
    expect(after.capacity).toBe(before.capacity);
    expect(after.tokens).toBe(before.tokens);
    const granted: string[] = [];
    void limiter.acquire("usersRead", 1).then(() => granted.push("read"));
    void limiter.acquire("usersWrite", 1).then(() => granted.push("write"));
    await vi.advanceTimersByTimeAsync(100);
    expect(granted).toEqual(["write"]);
    await vi.advanceTimersByTimeAsync(3_000);
    expect(granted).toEqual(["write", "read"]);
  });

  it("keeps Essentials' write-organizations bucket (5 burst, 25 per minute) apart from the users buckets", async () => {
    const limiter = new RateLimiter(rateProfile("essentials"));
    const times: number[] = [];
    for (let i = 0; i < 6; i++) void limiter.acquire("orgsWrite", 1).then(() => times.push(Date.now() - 1_000_000));
    let users = 0;
    for (let i = 0; i < 10; i++) void limiter.acquire("usersWrite", 1).then(() => users++);
    await vi.advanceTimersByTimeAsync(100);
    expect(users).toBe(10);
    // 5 burst with 1 held back for deprovisioning: 4 at once, then one every 2.4 s.
    expect(times.filter((t) => t < 100)).toHaveLength(4);
    await vi.advanceTimersByTimeAsync(5_000);
    expect(times).toHaveLength(6);
  });
});
