import { Management } from "auth0";
import { afterEach, describe, expect, it } from "vitest";
import { PLAN_LIMITS, type EmulatorOptions } from "../../src/emulator/index.js";
import { createDbUser, expectApiError, http, startHarness, type Harness } from "./helpers.js";

let h: Harness | undefined;
afterEach(async () => {
  await h?.emulator.close();
  h = undefined;
});

async function start(options: EmulatorOptions, maxRetries = 0): Promise<Harness> {
  h = await startHarness({ rateLimits: true, ...options }, maxRetries);
  return h;
}

/** Call until the first 429; returns how many calls passed, the error, and the seconds it took. */
async function drain(
  call: () => Promise<unknown>,
  max = 200,
): Promise<{ passed: number; error: InstanceType<typeof Management.TooManyRequestsError>; seconds: number }> {
  const started = Date.now();
  for (let passed = 0; passed < max; passed++) {
    const outcome = await call().then(
      () => undefined,
      (e: unknown) => e,
    );
    if (outcome instanceof Management.TooManyRequestsError)
      return { passed, error: outcome, seconds: (Date.now() - started) / 1000 };
    if (outcome) throw outcome;
  }
  throw new Error(`no 429 after ${max} calls`);
}

function rateHeaders(headers: Headers): { limit: number; remaining: number; reset: number } {
  return {
    limit: Number(headers.get("x-ratelimit-limit")),
    remaining: Number(headers.get("x-ratelimit-remaining")),
    reset: Number(headers.get("x-ratelimit-reset")),
  };
}

describe("rate limits per plan profile", () => {
  it("free: the whole API shares a bucket of 2 refilled at 2/s; the third call gets Auth0's 429 with its headers", async () => {
    const { client } = await start({ plan: "free" });
    const first = await client.users.list().then((p) => p.rawResponse);
    expect(rateHeaders(first.headers)).toMatchObject({ limit: 2, remaining: 1 });
    const second = await client.organizations.list().then((p) => p.rawResponse);
    expect(rateHeaders(second.headers)).toMatchObject({ limit: 2, remaining: 0 });

    const before = Math.floor(Date.now() / 1000);
    const err = await expectApiError(client.roles.list(), Management.TooManyRequestsError, 429, "too_many_requests");
    expect((err.body as { message: string }).message).toContain("X-RateLimit-Reset");
    const headers = rateHeaders(err.rawResponse!.headers);
    expect(headers.limit).toBe(2);
    expect(headers.remaining).toBe(0);
    expect(headers.reset).toBeGreaterThanOrEqual(before);
    expect(headers.reset).toBeLessThanOrEqual(before + 2);

    await new Promise((r) => setTimeout(r, 600)); // 2/s: one token back after 500 ms
    await expect(client.roles.list()).resolves.toBeDefined();
  });

  it("the SDK's own retry waits for x-ratelimit-reset before trying again", async () => {
    const { client, emulator } = await start({ plan: "free" }, 2);
    await client.users.list();
    await client.users.list(); // bucket now empty
    const result = await client.users.list(); // 429, then the SDK retries after the reset time
    expect(result.data).toEqual([]);
    const calls = emulator.calls().filter((c) => c.path === "/api/v2/users");
    const limited = calls.findIndex((c) => c.status === 429);
    expect(limited).toBe(2);
    const reset = calls[limited]!.rateLimit!.reset;
    const retry = calls[limited + 1]!;
    expect(retry.status).toBe(200);
    // The SDK waits reset·1000 − now (plus 0–20 % jitter); it may not come back before the reset.
    expect(Date.parse(retry.time)).toBeGreaterThanOrEqual(reset * 1000 - 50);
    expect(Date.parse(retry.time) - Date.parse(calls[limited]!.time)).toBeLessThan(3_000);
  });

  it("essentials: users read, users write, other endpoints and organization reads are separate buckets", async () => {
    const { client } = await start({ plan: "essentials" });
    const other = PLAN_LIMITS.essentials.other!;
    const roles = await drain(() => client.roles.list());
    expect(roles.passed).toBeGreaterThanOrEqual(other.capacity);
    expect(roles.passed).toBeLessThanOrEqual(other.capacity + Math.ceil(roles.seconds * other.perSecond));
    expect(rateHeaders(roles.error.rawResponse!.headers)).toMatchObject({ limit: 10, remaining: 0 });
    // The users buckets are untouched.
    const read = await client.users.list();
    expect(rateHeaders(read.rawResponse.headers)).toMatchObject({ limit: 40, remaining: 39 });
    const created = await client.users
      .create({ connection: "Username-Password-Authentication", email: "w@x.test", password: "Correct-Horse-9" })
      .withRawResponse();
    expect(rateHeaders(created.rawResponse.headers)).toMatchObject({ limit: 20, remaining: 19 });
    const orgs = await drain(() => client.organizations.list());
    expect(orgs.passed).toBeGreaterThanOrEqual(5);
    expect(orgs.passed).toBeLessThanOrEqual(
      5 + Math.ceil(orgs.seconds * PLAN_LIMITS.essentials.endpoints["orgs:read"]!.perSecond),
    );
  });

  it("enterprise: a global burst of 50, and 20 for organization member writes (the bucket that served the call is reported)", async () => {
    const { client } = await start({ plan: "enterprise" });
    const org = await client.organizations.create({ name: "acme" }).withRawResponse();
    expect(rateHeaders(org.rawResponse.headers)).toMatchObject({ limit: 5, remaining: 4 }); // org writes: 5 burst
    const userId = await createDbUser(client);
    const add = await client.organizations.members.create(org.data.id!, { members: [userId] }).withRawResponse();
    expect(rateHeaders(add.rawResponse.headers)).toMatchObject({ limit: 20, remaining: 19 });
    // Three calls were charged above; the global bucket holds 50 and refills at 16/s.
    const reads = await drain(() => client.users.get(userId));
    expect(reads.passed).toBeGreaterThanOrEqual(47);
    expect(reads.passed).toBeLessThanOrEqual(47 + Math.ceil((reads.seconds + 0.5) * 16));
    expect(reads.error.body).toMatchObject({
      statusCode: 429,
      error: "Too Many Requests",
      errorCode: "too_many_requests",
    });
    expect(rateHeaders(reads.error.rawResponse!.headers)).toMatchObject({ limit: 50, remaining: 0 });
  });

  it("essentials (Auth0 docs: Rate Limit Configurations, Essentials and Professional): Write Organizations, Write Organization Connections and Read Connections have their own buckets of 5", async () => {
    const { client } = await start({
      plan: "essentials",
      connections: [{ name: "acme-okta", strategy: "okta", id: "con_okta" }],
    });
    let n = 0;
    const writes = await drain(() => client.organizations.create({ name: `org-${++n}` }));
    expect(writes.passed).toBeGreaterThanOrEqual(5);
    expect(writes.passed).toBeLessThanOrEqual(5 + Math.ceil((writes.seconds * 25) / 60));
    expect(rateHeaders(writes.error.rawResponse!.headers)).toMatchObject({ limit: 5, remaining: 0 });
    const orgs = await client.organizations.list({ from: undefined, take: 1 });
    const orgId = orgs.data[0]!.id!;
    // Read Organizations by ID is not Read Organizations: its own bucket of 20.
    const byId = await client.organizations.get(orgId).withRawResponse();
    expect(rateHeaders(byId.rawResponse.headers)).toMatchObject({ limit: 20, remaining: 19 });
    const conns = await drain(() => client.connections.list());
    expect(conns.passed).toBeGreaterThanOrEqual(5);
    expect(rateHeaders(conns.error.rawResponse!.headers)).toMatchObject({ limit: 5 });
    const enable = await drain(async () => {
      await client.organizations.enabledConnections.add(orgId, { connection_id: "con_okta" });
      await client.organizations.enabledConnections.delete(orgId, "con_okta");
    });
    expect(enable.passed * 2).toBeGreaterThanOrEqual(4);
    expect(rateHeaders(enable.error.rawResponse!.headers)).toMatchObject({ limit: 5, remaining: 0 });
    // Other buckets were not touched by any of this.
    const roles = await client.roles.list();
    expect(rateHeaders(roles.rawResponse.headers)).toMatchObject({ limit: 10, remaining: 9 });
  });

  it("enterprise (Auth0 docs: Rate Limit Configurations, Enterprise): Read Organization Members (40) and Read Organization Member Roles (20) describe themselves; other reads describe the global bucket", async () => {
    const { client } = await start({ plan: "enterprise" });
    const org = await client.organizations.create({ name: "acme" });
    const userId = await createDbUser(client);
    await client.organizations.members.create(org.id!, { members: [userId] });
    const members = await client.organizations.members.list(org.id!, { take: 5 });
    expect(rateHeaders(members.rawResponse.headers)).toMatchObject({ limit: 40, remaining: 39 });
    const roles = await client.organizations.members.roles.list(org.id!, userId);
    expect(rateHeaders(roles.rawResponse.headers)).toMatchObject({ limit: 20, remaining: 19 });
    const user = await client.users.get(userId).withRawResponse();
    expect(rateHeaders(user.rawResponse.headers).limit).toBe(50);
    // Enterprise lists no Read Organizations bucket: the global one serves it.
    const byId = await client.organizations.get(org.id!).withRawResponse();
    expect(rateHeaders(byId.rawResponse.headers).limit).toBe(50);
  });

  it("every API answer carries the headers, errors included; rateLimits:false never answers 429", async () => {
    const { emulator } = await start({ plan: "free", rateLimits: false });
    for (let i = 0; i < 5; i++) {
      const res = await http(emulator, "GET", "/api/v2/users");
      expect(res.status).toBe(401);
      expect(res.headers.get("x-ratelimit-limit")).toBe("2");
      expect(res.headers.get("x-ratelimit-remaining")).not.toBeNull();
      expect(res.headers.get("x-ratelimit-reset")).toMatch(/^\d{10}$/);
    }
  });
});
