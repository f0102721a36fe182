import { Command } from "commander";
import { afterEach, describe, expect, it, vi } from "vitest";
import { registerEmulatorCommand } from "../../src/cli/emulator.js";
import { PLAN_LIMITS } from "../../src/emulator/index.js";
import { RateLimiter, TokenBucket } from "../../src/emulator/rate-limit.js";

describe("token buckets (deterministic clock)", () => {
  it("bursts to capacity, refills at the sustained rate and reports reset as the time the bucket is full again", () => {
    const t0 = 1_700_000_000_000;
    const bucket = new TokenBucket({ name: "b", capacity: 2, perSecond: 2 }, t0);
    expect(bucket.take(t0)).toBe(true);
    expect(bucket.take(t0)).toBe(true);
    expect(bucket.take(t0)).toBe(false);
    expect(bucket.headers(t0)).toEqual({
      "x-ratelimit-limit": "2",
      "x-ratelimit-remaining": "0",
      "x-ratelimit-reset": String(t0 / 1000 + 1),
    });
    expect(bucket.take(t0 + 499)).toBe(false);
    expect(bucket.take(t0 + 500)).toBe(true);
    expect(bucket.available(t0 + 60_000)).toBe(2); // never above capacity
  });

  it("checks the global bucket first, then the endpoint's own", () => {
    const t0 = 1_700_000_000_000;
    const limiter = new RateLimiter("enterprise", true);
    for (let i = 0; i < 20; i++) expect(limiter.take("org-members:write", t0).allowed).toBe(true);
    const refused = limiter.take("org-members:write", t0);
    expect(refused).toMatchObject({ allowed: false, bucket: "org-members:write" });
    expect(refused.headers["x-ratelimit-limit"]).toBe("20");
    // 21 global tokens were spent; 29 remain for everything else.
    let passed = 0;
    while (limiter.take("users:read", t0).allowed) passed++;
    expect(passed).toBe(29);
    expect(limiter.take("users:read", t0)).toMatchObject({ allowed: false, bucket: "global" });
  });

  it("a 429 from an endpoint bucket describes that bucket while the global one still has tokens (enterprise, Read Organization Members)", () => {
    const t0 = 1_700_000_000_000;
    const limiter = new RateLimiter("enterprise", true);
    for (let i = 0; i < 40; i++) {
      const d = limiter.take("org-members:read", t0);
      expect(d).toMatchObject({ allowed: true, bucket: "org-members:read" });
      expect(d.headers["x-ratelimit-limit"]).toBe("40");
    }
    const refused = limiter.take("org-members:read", t0);
    expect(refused).toMatchObject({ allowed: false, bucket: "org-members:read" });
    expect(refused.headers).toMatchObject({ "x-ratelimit-limit": "40", "x-ratelimit-remaining": "0" });
    // The global bucket (50) lost only 41 tokens: other endpoints still pass and describe it.
    expect(limiter.take("users:read", t0)).toMatchObject({
      allowed: true,
      bucket: "global",
      headers: { "x-ratelimit-limit": "50" },
    });
  });

  it("has the documented profiles", () => {
    expect(PLAN_LIMITS.free.global).toMatchObject({ capacity: 2, perSecond: 2 });
    expect(PLAN_LIMITS.enterprise.global).toMatchObject({ capacity: 50, perSecond: 16 });
    expect(PLAN_LIMITS.essentials.global).toBeUndefined();
    expect(PLAN_LIMITS.essentials.endpoints["users:read"]).toMatchObject({ capacity: 40 });
    expect(PLAN_LIMITS.essentials.endpoints["users:read"]!.perSecond * 60).toBeCloseTo(500);
    expect(PLAN_LIMITS.essentials.other!.perSecond * 60).toBeCloseTo(150);
    expect(PLAN_LIMITS.essentials.endpoints["orgs:write"]).toMatchObject({ capacity: 5 });
    expect(PLAN_LIMITS.essentials.endpoints["orgs:write"]!.perSecond * 60).toBeCloseTo(25);
    expect(PLAN_LIMITS.essentials.endpoints["org-connections:write"]!.perSecond * 60).toBeCloseTo(25);
    expect(PLAN_LIMITS.essentials.endpoints["connections:read"]).toMatchObject({ capacity: 5 });
    expect(PLAN_LIMITS.enterprise.endpoints["org-members:read"]).toMatchObject({ capacity: 40 });
    expect(PLAN_LIMITS.enterprise.endpoints["org-members:read"]!.perSecond * 60).toBeCloseTo(500);
    expect(PLAN_LIMITS.enterprise.endpoints["org-member-roles:read"]).toMatchObject({ capacity: 20 });
  });
});

describe("scim-bridge auth0-emulator", () => {
  afterEach(() => vi.restoreAllMocks());

  it("prints the URL, serves the emulator with the chosen plan and stops on SIGTERM", async () => {
    const lines: string[] = [];
    vi.spyOn(console, "log").mockImplementation((...args: unknown[]) => void lines.push(args.join(" ")));
    const program = new Command("scim-bridge").exitOverride();
    registerEmulatorCommand(program);
    const running = program.parseAsync(
      ["auth0-emulator", "--port", "0", "--plan", "free", "--connection", "acme-okta:okta"],
      { from: "user" },
    );
    await vi.waitFor(() => expect(lines.join("\n")).toMatch(/http:\/\/127\.0\.0\.1:\d+/), { timeout: 5000 });
    const url = /http:\/\/127\.0\.0\.1:\d+/.exec(lines.join("\n"))![0];
    expect(lines[0]).toContain("free plan");
    const state = (await (await fetch(`${url}/__emulator/state`)).json()) as {
      plan: string;
      connections: { name: string }[];
    };
    expect(state.plan).toBe("free");
    expect(state.connections.map((c) => c.name)).toContain("acme-okta");
    process.emit("SIGTERM");
    await running;
    await expect(fetch(`${url}/__emulator/state`)).rejects.toThrow();
  });

  it("--scopes restricts the client grant (and --async-delay-ms is accepted)", async () => {
    const lines: string[] = [];
    vi.spyOn(console, "log").mockImplementation((...args: unknown[]) => void lines.push(args.join(" ")));
    const program = new Command("scim-bridge").exitOverride();
    registerEmulatorCommand(program);
    const running = program.parseAsync(
      ["auth0-emulator", "--port", "0", "--scopes", "read:users,create:users", "--async-delay-ms", "1000"],
      { from: "user" },
    );
    await vi.waitFor(() => expect(lines.join("\n")).toMatch(/http:\/\/127\.0\.0\.1:\d+/), { timeout: 5000 });
    const url = /http:\/\/127\.0\.0\.1:\d+/.exec(lines.join("\n"))![0];
    expect(await (await fetch(`${url}/__emulator/grant`)).json()).toEqual({ scopes: ["create:users", "read:users"] });
    process.emit("SIGTERM");
    await running;
  });

  it("refuses an unknown scope", async () => {
    vi.spyOn(process.stderr, "write").mockImplementation(() => true);
    const program = new Command("scim-bridge").exitOverride();
    registerEmulatorCommand(program);
    await expect(program.parseAsync(["auth0-emulator", "--scopes", "read:userz"], { from: "user" })).rejects.toThrow(
      /read:userz/,
    );
  });

  it("rejects an unknown plan", async () => {
    vi.spyOn(process.stderr, "write").mockImplementation(() => true);
    const program = new Command("scim-bridge").exitOverride();
    registerEmulatorCommand(program);
    await expect(program.parseAsync(["auth0-emulator", "--plan", "platinum"], { from: "user" })).rejects.toThrow(
      /platinum|Allowed choices/,
    );
  });
});
