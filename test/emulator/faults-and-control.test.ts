import { Management } from "auth0";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { bearer, clientFor, createDbUser, expectApiError, http, startHarness, type Harness } from "./helpers.js";

let h: Harness;
beforeEach(async () => {
  h = await startHarness({ connections: [{ name: "acme-okta", strategy: "okta" }] });
});
afterEach(() => h.emulator.close());

describe("fault injection", () => {
  it("injects an error status on matching paths, at most `count` times", async () => {
    h.emulator.setFaults({ errors: [{ path: "/api/v2/users*", method: "GET", status: 503, count: 2 }] });
    await expectApiError(h.client.users.list(), Management.ServiceUnavailableError, 503);
    await expectApiError(h.client.users.list(), Management.ServiceUnavailableError, 503);
    await expect(h.client.users.list()).resolves.toBeDefined();
    await expect(h.client.organizations.list()).resolves.toBeDefined(); // other paths untouched
  });

  it("applies an error rate reproducibly (seeded)", async () => {
    const run = async (): Promise<number[]> => {
      const emulator = await startHarness({ seed: 7 });
      try {
        emulator.emulator.setFaults({ errors: [{ path: "/api/v2/organizations", status: 500, rate: 0.5 }] });
        const statuses: number[] = [];
        for (let i = 0; i < 20; i++)
          statuses.push(
            await emulator.client.organizations.list().then(
              () => 200,
              (e: { statusCode: number }) => e.statusCode,
            ),
          );
        return statuses;
      } finally {
        await emulator.emulator.close();
      }
    };
    const first = await run();
    expect(first.filter((s) => s === 500).length).toBeGreaterThan(3);
    expect(first.filter((s) => s === 200).length).toBeGreaterThan(3);
    expect(await run()).toEqual(first);
  });

  it("adds latency", async () => {
    h.emulator.setFaults({ latency: { ms: 150, path: "/api/v2/roles" } });
    const started = Date.now();
    await h.client.roles.list();
    expect(Date.now() - started).toBeGreaterThanOrEqual(140);
    expect(h.emulator.calls().find((c) => c.path === "/api/v2/roles")!.durationMs).toBeGreaterThanOrEqual(140);
  });

  it("an outage window takes down the API and /oauth/token, then recovers", async () => {
    await createDbUser(h.client); // token cached
    // Long enough that both refused calls land inside the window on a loaded machine.
    const start = Date.now();
    h.emulator.setFaults({ outage: { durationMs: 3000 } });
    await expectApiError(h.client.users.list(), Management.ServiceUnavailableError, 503);
    const token = await http(
      h.emulator,
      "POST",
      "/oauth/token",
      "grant_type=client_credentials&client_id=a&client_secret=b&audience=https%3A%2F%2Ft.example%2Fapi%2Fv2%2F",
      { "content-type": "application/x-www-form-urlencoded" },
    );
    expect(token.status).toBe(503);
    await new Promise((r) => setTimeout(r, start + 3020 - Date.now()));
    await expect(h.client.users.list()).resolves.toBeDefined();
  });

  it("a 429 storm answers Auth0's 429 until it ends, and the SDK's retry waits it out via x-ratelimit-reset", async () => {
    h.emulator.setFaults({ rateLimitStorm: { durationMs: 1500, path: "/api/v2/users*" } });
    const err = await expectApiError(h.client.users.list(), Management.TooManyRequestsError, 429, "too_many_requests");
    const reset = Number(err.rawResponse!.headers.get("x-ratelimit-reset"));
    expect(reset * 1000).toBeGreaterThanOrEqual(Date.now() + 500);
    await expect(h.client.roles.list()).resolves.toBeDefined(); // outside the storm's path
    // One retry is enough when the SDK waits for the reset (its default backoff is 1 s, inside the storm).
    const retrying = clientFor(h.emulator, 1);
    await expect(retrying.users.list()).resolves.toBeDefined();
    expect(Date.now()).toBeGreaterThanOrEqual(reset * 1000 - 50);
  });

  it("refuses malformed fault settings over HTTP without changing the current ones", async () => {
    const ok = await http(h.emulator, "PUT", "/__emulator/faults", { latency: { ms: 5 } });
    expect(ok.status).toBe(200);
    for (const bad of [
      { errors: [{ path: "/api/v2/*", status: 200 }] },
      { errors: "all" },
      { errors: [null] },
      { latency: { ms: 1, path: 5 } },
      { outage: { durationMs: "long" } },
      { rateLimitStorm: 3 },
    ]) {
      const res = await http(h.emulator, "PUT", "/__emulator/faults", bad);
      expect(res.status).toBe(400);
      expect(res.body).toMatchObject({ statusCode: 400, error: "Bad Request" });
    }
    expect((await http(h.emulator, "GET", "/__emulator/faults")).body).toMatchObject({ latency: { ms: 5 } });
    expect((await http(h.emulator, "DELETE", "/__emulator/faults")).status).toBe(204);
    expect((await http(h.emulator, "GET", "/__emulator/faults")).body).toEqual({ errors: [] });
  });
});

describe("control plane over HTTP", () => {
  it("lists the calls received (method, path, status, time), dumps state and resets", async () => {
    const id = await createDbUser(h.client);
    await h.client.users.get("auth0|missing").catch(() => undefined);
    const calls = (await http(h.emulator, "GET", "/__emulator/calls")).body as {
      method: string;
      path: string;
      status: number;
      time: string;
    }[];
    expect(calls.map((c) => `${c.method} ${c.path} ${c.status}`)).toEqual([
      "POST /oauth/token 200",
      "POST /api/v2/users 201",
      "GET /api/v2/users/auth0%7Cmissing 404",
    ]);
    expect(Number.isNaN(Date.parse(calls[0]!.time))).toBe(false);
    expect(JSON.stringify(calls)).not.toContain("s3cret");

    const dump = (await http(h.emulator, "GET", "/__emulator/state")).body as {
      users: { user_id: string }[];
      connections: { name: string }[];
    };
    expect(dump.users.map((u) => u.user_id)).toEqual([id]);
    expect(dump.connections.map((c) => c.name)).toEqual(["Username-Password-Authentication", "acme-okta"]);

    expect((await http(h.emulator, "POST", "/__emulator/reset")).status).toBe(204);
    expect(h.emulator.state.users.size).toBe(0);
    expect(h.emulator.state.connectionByName("acme-okta")).toBeDefined(); // declared at start: kept
    expect(h.emulator.calls()).toEqual([]);
    await expect(h.client.users.list()).resolves.toBeDefined(); // the cached token still works
  });

  it("declares connections and sets the post-login hook", async () => {
    const created = await http(h.emulator, "POST", "/__emulator/connections", { name: "acme-entra", strategy: "waad" });
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({ id: expect.stringMatching(/^con_/), name: "acme-entra", strategy: "waad" });
    expect((await h.client.connections.list({ strategy: ["waad"] })).data.map((c) => c.name)).toEqual(["acme-entra"]);
    expect(
      (await http(h.emulator, "PUT", "/__emulator/hook", { url: "http://127.0.0.1:9/x", secret: "s" })).status,
    ).toBe(204);
    expect((await http(h.emulator, "GET", "/__emulator/hook")).body).toEqual({ url: "http://127.0.0.1:9/x" });
    expect((await http(h.emulator, "PUT", "/__emulator/hook", { url: "not a url", secret: "s" })).status).toBe(400);
    expect((await http(h.emulator, "POST", "/__emulator/connections", { name: "x" })).status).toBe(400);
  });
});

describe("bad input never crashes the emulator", () => {
  it("answers Auth0 error bodies for malformed JSON, wrong media types, huge bodies, bad encodings and unknown routes", async () => {
    const auth = { authorization: `Bearer ${await bearer(h.emulator)}` };
    const badJson = await http(h.emulator, "POST", "/api/v2/users", "{not json", {
      ...auth,
      "content-type": "application/json",
    });
    expect(badJson).toMatchObject({
      status: 400,
      body: { statusCode: 400, error: "Bad Request", errorCode: "invalid_body" },
    });
    const arrayBody = await http(h.emulator, "POST", "/api/v2/users", [1, 2], auth);
    expect(arrayBody).toMatchObject({ status: 400, body: { errorCode: "invalid_body" } });
    const text = await http(h.emulator, "POST", "/api/v2/users", "hello", { ...auth, "content-type": "text/plain" });
    expect(text.status).toBe(415);
    const huge = await http(h.emulator, "POST", "/api/v2/users", { connection: "x", big: "a".repeat(1_100_000) }, auth);
    expect(huge).toMatchObject({ status: 413, body: { statusCode: 413, error: "Request Entity Too Large" } });
    const encoding = await http(h.emulator, "GET", "/api/v2/users/%E0%A4%A", undefined, auth);
    expect(encoding).toMatchObject({ status: 400, body: { statusCode: 400 } });
    const unknown = await http(h.emulator, "GET", "/api/v2/nothing-here", undefined, auth);
    expect(unknown).toMatchObject({ status: 404, body: { statusCode: 404, error: "Not Found" } });
    const query = await http(h.emulator, "GET", "/api/v2/users?page=abc&include_totals=maybe", undefined, auth);
    expect(query).toMatchObject({ status: 400, body: { errorCode: "invalid_query_string" } });
    const tokenGarbage = await http(h.emulator, "POST", "/oauth/token", "{]", { "content-type": "application/json" });
    expect(tokenGarbage).toMatchObject({ status: 400, body: { error: "invalid_request" } });
    // still serving
    await expect(h.client.users.list()).resolves.toBeDefined();
  });
});
