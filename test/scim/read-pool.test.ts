import { availableParallelism } from "node:os";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { pino } from "pino";
import { ConfigError, loadConfig } from "../../src/config.js";
import { parseListParams } from "../../src/scim/list.js";
import { signPostLoginBody } from "../../src/http/post-login-hook.js";
import { ReadPool } from "../../src/scim/read-pool.js";
import { queryCost } from "../../src/scim/cost.js";
import { heavyReadUnits, runsInline, type ReadRequest } from "../../src/scim/reads.js";
import { groupSchema as groupResource, userSchema as userResource } from "../../src/scim/schema.js";
import { createTestBridge, scimClient, type ScimClient, type TestBridge } from "../helpers/scim.js";

/**
 * SCIM reads in the read pool's worker threads (docs/design.md, "Concurrency"): the same answers as
 * on the main thread, every committed write visible to the next read, a read past its time budget
 * cancelled with 503, a crashed thread replaced, and a pool that cannot start reported by /readyz.
 */
const hooks = new URL("../fixtures/read-pool/hooks.ts", import.meta.url).href;
const broken = new URL("../fixtures/read-pool/broken.ts", import.meta.url).href;
const userSchema = "urn:ietf:params:scim:schemas:core:2.0:User";
const groupSchema = "urn:ietf:params:scim:schemas:core:2.0:Group";
const errorSchema = "urn:ietf:params:scim:api:messages:2.0:Error";
const searchSchema = "urn:ietf:params:scim:api:messages:2.0:SearchRequest";

const hookSecret = "read-pool-test-hook-secret-0123456789abcdef";
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Waits until every thread of the bridge's pool serves (the test timeout bounds it). */
async function poolReady(t: TestBridge): Promise<void> {
  const pool = t.bridge.readPool;
  if (!pool) throw new Error("this bridge has no read pool");
  pool.start();
  while (pool.health().status !== "ok") await sleep(20);
}

const user = (i: number, extra: Record<string, unknown> = {}) => ({
  schemas: [userSchema],
  userName: `u${String(i).padStart(2, "0")}@example.com`,
  externalId: `ext-${i}`,
  displayName: `User ${i}`,
  name: { givenName: `Given${i}`, familyName: `Family${i}` },
  emails: [{ value: `u${String(i).padStart(2, "0")}@example.com`, type: "work", primary: true }],
  ...extra,
});

describe("SCIM reads through the read pool", () => {
  let pooled: TestBridge;
  let inline: TestBridge;
  /** The pooled bridge's first directory, read through the bridge without a pool (same database file). */
  let direct: ScimClient;
  const userIds: string[] = [];
  const groupIds: string[] = [];

  beforeAll(async () => {
    pooled = await createTestBridge({ overrides: { readPool: { workers: 2 } } });
    expect(pooled.bridge.readPool?.size).toBe(2);
    inline = await createTestBridge({
      overrides: { databaseUrl: `sqlite:${pooled.sqlite.name}`, publicUrl: pooled.origin, readPool: { workers: 0 } },
    });
    expect(inline.bridge.readPool).toBeUndefined();
    direct = scimClient(inline.http, pooled);
    for (let i = 0; i < 30; i++) {
      const res = await pooled.scim.post("/Users", user(i)).expect(201);
      userIds.push(res.body.id as string);
    }
    for (let g = 0; g < 3; g++) {
      const res = await pooled.scim
        .post("/Groups", {
          schemas: [groupSchema],
          displayName: `Team ${g}`,
          members: userIds.slice(g * 5, g * 5 + 5).map((value) => ({ value })),
        })
        .expect(201);
      groupIds.push(res.body.id as string);
    }
    await poolReady(pooled);
  });

  afterAll(async () => {
    await inline?.close();
    await pooled?.close();
  });

  it("answers every read exactly as the main thread does: by id, lists, filters, paging, projections, errors", async () => {
    const [u, g] = [userIds[7]!, groupIds[1]!];
    const gets = [
      "/Users",
      "/Users?startIndex=3&count=5",
      "/Users?startIndex=1&count=10",
      "/Users?startIndex=11&count=10",
      "/Users?startIndex=21&count=10",
      "/Users?startIndex=1000",
      "/Users?count=0",
      '/Users?filter=userName eq "u07@example.com"',
      '/Users?filter=userName sw "U1"',
      '/Users?filter=emails.value co "u2" and active eq true&sortBy=userName&sortOrder=descending',
      '/Users?filter=name.familyName eq "Family3" or externalId eq "ext-4"',
      "/Users?attributes=userName,emails.value",
      "/Users?excludedAttributes=emails,name&count=3",
      `/Users/${u}`,
      `/Users/${u}?attributes=userName`,
      `/Users/${u}?excludedAttributes=name,emails`,
      `/Users/${u}?attributes=urn:scim-bridge:params:scim:schemas:extension:sync-state:2.0:User`,
      "/Users/no-such-user",
      "/Users?filter=userName eq",
      "/Users?filter=nosuch eq 1",
      "/Users?filter=active gt true",
      "/Users?startIndex=abc",
      "/Groups",
      '/Groups?filter=displayName eq "team 1"',
      `/Groups/${g}`,
      `/Groups/${g}?excludedAttributes=members`,
      `/Groups/${g}?attributes=members.value`,
      "/Groups/no-such-group",
    ];
    for (const path of gets) {
      const [viaPool, onMain] = [await pooled.scim.get(path), await direct.get(path)];
      expect({ path, status: viaPool.status }).toEqual({ path, status: onMain.status });
      expect({ path, body: viaPool.body }).toEqual({ path, body: onMain.body });
      expect(viaPool.headers["content-type"]).toBe(onMain.headers["content-type"]);
      expect(viaPool.headers.etag).toBe(onMain.headers.etag);
    }
    // Spot checks that the answers are the right ones, not merely equal.
    const one = await pooled.scim.get('/Users?filter=userName eq "u07@example.com"').expect(200);
    expect(one.body).toMatchObject({ totalResults: 1, Resources: [{ id: u, userName: "u07@example.com" }] });
    const page = await pooled.scim.get("/Users?startIndex=11&count=10").expect(200);
    expect(page.body).toMatchObject({ totalResults: 30, startIndex: 11, itemsPerPage: 10 });
    expect(page.body.Resources[0].id).toBe(userIds[10]);
    const projected = await pooled.scim.get(`/Users/${u}?attributes=userName`).expect(200);
    expect(Object.keys(projected.body).sort()).toEqual(["id", "schemas", "userName"]);
    const noMembers = await pooled.scim.get(`/Groups/${g}?excludedAttributes=members`).expect(200);
    expect(noMembers.body.members).toBeUndefined();
    expect((await pooled.scim.get(`/Groups/${g}`).expect(200)).body.members).toHaveLength(5);
    const missing = await pooled.scim.get("/Users/no-such-user").expect(404);
    expect(missing.body).toMatchObject({ schemas: [errorSchema], status: "404" });
    // Refused inside the worker (the SQL translation), not by the parser on the main thread.
    const bad = await pooled.scim.get(`/Users?filter=${encodeURIComponent("active gt true")}`);
    expect(bad.status).toBe(400);
    expect(bad.body).toMatchObject({ schemas: [errorSchema], scimType: "invalidFilter" });
  });

  it("answers POST .search (per type and at the root) as the main thread does", async () => {
    const searches: [string, Record<string, unknown>][] = [
      ["/Users/.search", { schemas: [searchSchema], filter: 'userName sw "u2"', count: 4, attributes: ["userName"] }],
      [
        "/Groups/.search",
        { schemas: [searchSchema], filter: 'displayName sw "team"', excludedAttributes: ["members"] },
      ],
      ["/.search", { schemas: [searchSchema], filter: 'externalId eq "ext-3" or displayName eq "Team 2"' }],
      ["/.search", { schemas: [searchSchema], startIndex: 29, count: 3 }],
      ["/.search", { schemas: [searchSchema], filter: "userName eq" }],
    ];
    for (const [path, body] of searches) {
      const [viaPool, onMain] = [await pooled.scim.post(path, body), await direct.post(path, body)];
      expect({ path, status: viaPool.status, body: viaPool.body }).toEqual({
        path,
        status: onMain.status,
        body: onMain.body,
      });
    }
    const root = await pooled.scim.post("/.search", { schemas: [searchSchema], startIndex: 29, count: 3 }).expect(200);
    expect(root.body.totalResults).toBe(33);
    expect(root.body.Resources.map((r: { id: string }) => r.id)).toEqual([userIds[28], userIds[29], groupIds[0]]);
  });

  it("answers If-None-Match with 304 from the pool", async () => {
    const first = await pooled.scim.get(`/Users/${userIds[2]}`).expect(200);
    const again = await pooled.scim.get(`/Users/${userIds[2]}`).set("If-None-Match", first.headers.etag!).expect(304);
    expect(again.headers.etag).toBe(first.headers.etag);
    expect(again.text).toBe("");
    await pooled.scim.get(`/Groups/${groupIds[0]}`).set("If-None-Match", 'W/"999"').expect(200);
  });

  it("sees every committed write in the next read (read-your-writes)", async () => {
    const id = userIds[20]!;
    for (let i = 0; i < 25; i++) {
      await pooled.scim
        .patch(`/Users/${id}`, {
          schemas: ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
          Operations: [{ op: "replace", path: "displayName", value: `Renamed ${i}` }],
        })
        .expect(204);
      const read = await pooled.scim.get(`/Users/${id}`).expect(200);
      expect(read.body.displayName).toBe(`Renamed ${i}`);
    }
    const created = await pooled.scim.post("/Users", user(99)).expect(201);
    await pooled.scim.get(`/Users/${created.body.id}`).expect(200);
    const found = await pooled.scim.get('/Users?filter=userName eq "u99@example.com"').expect(200);
    expect(found.body.totalResults).toBe(1);
    await pooled.scim
      .patch(`/Groups/${groupIds[2]}`, {
        schemas: ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        Operations: [{ op: "add", path: "members", value: [{ value: created.body.id }] }],
      })
      .expect(204);
    const group = await pooled.scim.get(`/Groups/${groupIds[2]}`).expect(200);
    expect(group.body.members.map((m: { value: string }) => m.value)).toContain(created.body.id);
    await pooled.scim.delete(`/Users/${created.body.id}`).expect(204);
    await pooled.scim.get(`/Users/${created.body.id}`).expect(404);
    const gone = await pooled.scim.get('/Users?filter=userName eq "u99@example.com"').expect(200);
    expect(gone.body.totalResults).toBe(0);
  });
});

describe("read pool: time budget, crashes and shutdown", () => {
  let t: TestBridge;
  let other: Awaited<ReturnType<TestBridge["newDirectory"]>>;
  let otherUser: string;
  let slowUser: string;

  beforeAll(async () => {
    t = await createTestBridge({
      overrides: { hookSecret, readPool: { workers: 2, timeoutMs: 5000, workerSetup: hooks } },
    });
    slowUser = (await t.scim.post("/Users", user(1, { displayName: "slow-read" })).expect(201)).body.id;
    other = await t.newDirectory();
    otherUser = (await other.scim.post("/Users", user(2)).expect(201)).body.id;
    await poolReady(t);
  });

  afterAll(async () => {
    await t?.close();
  });

  it("cancels a read past its time budget with 503 and Retry-After, while other directories and logins are answered", async () => {
    let settled = false;
    const slow = t.scim.get('/Users?filter=displayName co "zz"').then((res) => ((settled = true), res));
    await sleep(100); // let the slow read reach a thread first
    const fast = await other.scim.get(`/Users/${otherUser}`).expect(200);
    expect(fast.body.id).toBe(otherUser);
    // The post-login hook runs on the main thread, which the stuck read does not hold.
    const login = JSON.stringify({ user: { user_id: "auth0|someone", email: "someone@example.com" } });
    const hook = await t.http
      .post("/hooks/auth0/post-login")
      .set("Content-Type", "application/json")
      .set("x-scim-bridge-signature", signPostLoginBody(hookSecret, login))
      .send(login);
    expect(hook.status).toBe(200);
    expect(hook.body).toHaveProperty("decision");
    expect(settled).toBe(false);
    const res = await slow;
    expect(res.status).toBe(503);
    expect(res.headers["retry-after"]).toBe("5");
    expect(res.headers["content-type"]).toMatch(/^application\/scim\+json/);
    expect(res.body).toMatchObject({ schemas: [errorSchema], status: "503" });
    expect(res.body.detail).toMatch(/took longer than 5 s and was cancelled/);
    // The thread was replaced: the same directory reads again.
    await t.scim.get(`/Users/${slowUser}`).expect(200);
    await poolReady(t);
  });

  it("answers 503 when a thread dies during a read, and replaces the thread", async () => {
    const crashing = await t.newDirectory();
    const id = (await crashing.scim.post("/Users", user(3, { displayName: "crash-read" })).expect(201)).body.id;
    const res = await crashing.scim.get('/Users?filter=displayName co "zz"');
    expect(res.status).toBe(503);
    expect(res.headers["retry-after"]).toBe("1");
    expect(res.body.detail).toMatch(/stopped/);
    await crashing.scim.get(`/Users/${id}`).expect(200);
    await poolReady(t);
    expect(t.bridge.readPool?.health()).toMatchObject({ status: "ok", running: 2 });
  });

  it("answers reads in flight and after shutdown with 503, never a hang", async () => {
    const slow = t.scim.get('/Users?filter=displayName co "zz"');
    await sleep(100);
    await t.bridge.readPool!.close();
    const res = await slow;
    expect(res.status).toBe(503);
    expect(res.body.detail).toMatch(/shutting down/);
    // Lists and scans go through the pool: once it is closed, they answer 503; a read by id needs no thread.
    await t.scim.get("/Users").expect(503);
    await t.scim.get(`/Users/${slowUser}`).expect(200);
    // Writes never go through it.
    await t.scim.post("/Users", user(4)).expect(201);
  });
});

describe("reads bounded by one index lookup, while every thread of the pool is held by scans", () => {
  let t: TestBridge;
  let other: Awaited<ReturnType<TestBridge["newDirectory"]>>;
  const ids: string[] = [];
  let groupId: string;

  beforeAll(async () => {
    // A budget far beyond the test: the scans hold both threads until the pool is closed. Without the
    // per-directory concurrency gate (test/fairness covers it), which on a loaded machine holds a
    // directory to one request at a time: here, only the pool decides who waits.
    t = await createTestBridge({
      scimRateLimit: null,
      overrides: { readPool: { workers: 2, timeoutMs: 120_000, workerSetup: hooks } },
    });
    await t.scim.post("/Users", user(0, { displayName: "slow-read" })).expect(201);
    for (let i = 1; i <= 6; i++) ids.push((await t.scim.post("/Users", user(i)).expect(201)).body.id as string);
    groupId = (
      await t.scim
        .post("/Groups", { schemas: [groupSchema], displayName: "Big team", members: ids.map((value) => ({ value })) })
        .expect(201)
    ).body.id as string;
    other = await t.newDirectory();
    await other.scim.post("/Users", user(7, { displayName: "slow-read" })).expect(201);
    await poolReady(t);
  });

  afterAll(async () => {
    await t?.close();
  });

  it("answers reads by id and single-probe filters on the main thread; a group with its members and lists wait for the pool", async () => {
    const pool = t.bridge.readPool!;
    // One directory's scans may hold all threads but one; a second directory's takes the last.
    const scans = [t.scim, other.scim].map((c) => c.get('/Users?filter=displayName co "zz"').then((res) => res));
    while (pool.busy < 2) await sleep(10);

    const byId = await t.scim.get(`/Users/${ids[2]}`).expect(200);
    expect(byId.body).toMatchObject({ id: ids[2], userName: "u03@example.com" });
    const filtered = await t.scim.get('/Users?filter=userName eq "U04@example.com"').expect(200);
    expect(filtered.body).toMatchObject({ totalResults: 1, Resources: [{ id: ids[3] }] });
    const byExternalId = await t.scim.get('/Users?filter=externalId eq "ext-5"&count=5').expect(200);
    expect(byExternalId.body).toMatchObject({ totalResults: 1, Resources: [{ id: ids[4] }] });
    const byIdFilter = await t.scim.get(`/Users?filter=id eq "${ids[0]}"`).expect(200);
    expect(byIdFilter.body.Resources[0].id).toBe(ids[0]);
    const etag = byId.headers.etag!;
    await t.scim.get(`/Users/${ids[2]}`).set("If-None-Match", etag).expect(304);
    await t.scim.get("/Users/no-such-user").expect(404);
    const group = await t.scim.get(`/Groups/${groupId}?excludedAttributes=members`).expect(200);
    expect(group.body).toMatchObject({ id: groupId, displayName: "Big team" });
    expect(group.body.members).toBeUndefined();
    const named = await t.scim
      .get('/Groups?filter=displayName eq "big team"&excludedAttributes=members&count=1')
      .expect(200);
    expect(named.body).toMatchObject({ totalResults: 1, Resources: [{ id: groupId }] });
    // Writes never needed the pool.
    await t.scim.post("/Users", user(8)).expect(201);

    // Members may be 50,000 rows, lists and other filters scan: those stay in the pool, waiting.
    const waiting = [
      t.scim.get(`/Groups/${groupId}`),
      t.scim.get('/Groups?filter=displayName eq "big team"&count=1'),
      t.scim.get("/Users?count=2"),
      t.scim.get('/Users?filter=externalId eq "ext-5"'),
      t.scim.get('/Users?filter=userName eq "u04@example.com"&sortBy=displayName'),
    ].map((p) => p.then((res) => [res.status, res.body.detail]));
    let settled = 0;
    for (const p of waiting) void p.then(() => settled++);
    await t.scim.get(`/Users/${ids[1]}`).expect(200);
    expect(settled).toBe(0);
    expect(pool.busy).toBe(2);

    // They were in the pool's queue: its shutdown answers them.
    await pool.close();
    for (const answer of await Promise.all(waiting))
      expect(answer).toEqual([503, expect.stringMatching(/shutting down/)]);
    expect((await Promise.all(scans)).map((r) => r.status)).toEqual([503, 503]);
  });
});

describe("which reads run on the main thread", () => {
  type ListRead = Extract<ReadRequest, { params: unknown }>;
  const ctx = {
    directoryId: "d",
    organizationId: "o",
    baseUrl: "http://127.0.0.1/scim/v2/d",
    requestId: "test",
    actor: { type: "directory" as const, id: "d" },
  };
  const users = (query: Record<string, string>): ListRead => ({ op: "users", ctx, params: parseListParams(query) });
  const groups = (query: Record<string, string>): ListRead => ({
    op: "groups",
    ctx,
    params: parseListParams(query),
  });

  it("keeps single index probes, and nothing costlier, off the pool; none of them is priced as a scan at any size", () => {
    const inline = [
      users({ filter: 'userName eq "a@b"' }),
      users({ filter: 'urn:ietf:params:scim:schemas:core:2.0:User:userName eq "a@b"', startIndex: "50" }),
      users({ filter: 'id eq "x"', count: "1000" }),
      users({ filter: 'externalId eq "x"', count: "10" }),
      groups({ filter: 'displayName eq "x"', count: "5", excludedAttributes: "members" }),
      groups({ filter: 'id eq "x"', attributes: "displayName" }),
    ];
    const pooled = [
      users({}),
      users({ filter: 'externalId eq "x"' }),
      users({ filter: 'externalId eq "x"', count: "5", startIndex: "2" }),
      users({ filter: 'userName eq "a@b"', sortBy: "userName" }),
      users({ filter: 'userName sw "a"' }),
      users({ filter: 'displayName eq "x"' }),
      users({ filter: 'emails.value eq "a@b"' }),
      users({ filter: 'userName eq "a" or userName eq "b"' }),
      users({ filter: "userName eq null" }),
      groups({ filter: 'id eq "x"' }),
      groups({ filter: 'displayName eq "x"', count: "5", attributes: "members" }),
      { op: "search", ctx, params: parseListParams({ filter: 'userName eq "a@b"' }) },
    ] satisfies ListRead[];
    for (const request of inline) {
      expect({ request: request.params, inline: runsInline(request) }).toEqual({
        request: request.params,
        inline: true,
      });
      const rs = request.op === "users" ? userResource : groupResource;
      const { units } = queryCost(rs, { filter: request.params.filter, rows: 10_000_000 });
      expect(units).toBeLessThan(heavyReadUnits);
    }
    for (const request of pooled)
      expect({ request: request.params, inline: runsInline(request) }).toEqual({
        request: request.params,
        inline: false,
      });
    expect(runsInline({ op: "user", ctx, id: "x" })).toBe(true);
    expect(runsInline({ op: "group", ctx, id: "x", excludedAttributes: "members" })).toBe(true);
    expect(runsInline({ op: "group", ctx, id: "x" })).toBe(false);
    expect(runsInline({ op: "group", ctx, id: "x", attributes: "displayName,members.value" })).toBe(false);
  });
});

describe("a read pool that cannot start", () => {
  let t: TestBridge;
  beforeAll(async () => {
    t = await createTestBridge({ overrides: { readPool: { workers: 1, timeoutMs: 30_000, workerSetup: broken } } });
  });
  afterAll(async () => {
    await t?.close();
  });

  it("answers reads 503 with Retry-After and makes /readyz name it", async () => {
    const res = await t.scim.get("/Users");
    expect(res.status).toBe(503);
    expect(res.headers["retry-after"]).toBe("5");
    expect(res.body).toMatchObject({ schemas: [errorSchema], status: "503" });
    expect(res.body.detail).toMatch(/no SCIM read worker could start/);
    const ready = await t.http.get("/readyz").expect(503);
    expect(ready.body.checks.readPool).toBe("failed");
    expect(ready.body.problems.join("\n")).toMatch(/read pool: .*injected: this worker cannot start/);
  });
});

describe("ReadPool: one directory's scans cannot take every thread", () => {
  it("keeps a thread for another directory while one directory's heavy reads are stuck", async () => {
    const t = await createTestBridge({ overrides: { readPool: { workers: 0 } } });
    const slow = (await t.scim.post("/Users", user(1, { displayName: "slow-read" })).expect(201)).body.id;
    expect(slow).toBeTruthy();
    const other = await t.newDirectory();
    await other.scim.post("/Users", user(2)).expect(201);
    const pool = new ReadPool({
      databaseUrl: `sqlite:${t.sqlite.name}`,
      size: 2,
      timeoutMs: 60_000,
      log: pino({ level: "silent" }),
      workerSetup: hooks,
    });
    try {
      const ctx = (d: { directoryId: string; organizationId: string }) => ({
        directoryId: d.directoryId,
        organizationId: d.organizationId,
        baseUrl: `http://127.0.0.1/scim/v2/${d.directoryId}`,
        requestId: "test",
        actor: { type: "directory" as const, id: d.directoryId },
      });
      const scan = (d: { directoryId: string; organizationId: string }): ReadRequest => ({
        op: "users",
        ctx: ctx(d),
        params: parseListParams({ filter: 'displayName co "zz"' }),
      });
      const outcomes: string[] = [];
      const stuck = [pool.run(scan(t), true), pool.run(scan(t), true)].map((p) =>
        p.then(
          () => outcomes.push("first directory answered"),
          () => outcomes.push("first directory refused"),
        ),
      );
      const answered = await pool.run(scan(other), true);
      expect(answered.status).toBe(200);
      expect(JSON.parse(answered.body!)).toMatchObject({ totalResults: 0 });
      expect(outcomes).toEqual([]);
      await pool.close();
      await Promise.all(stuck);
      expect(outcomes).toEqual(["first directory refused", "first directory refused"]);
    } finally {
      await pool.close();
      await t.close();
    }
  });
});

describe("read pool configuration", () => {
  it("defaults to one thread per core; 0 turns the pool off", () => {
    const config = loadConfig({});
    expect(config.scimReadWorkers).toBe(Math.max(1, availableParallelism()));
    expect(loadConfig({ SCIM_READ_WORKERS: "0" })).toMatchObject({ scimReadWorkers: 0 });
  });

  it("refuses a thread count that is not a number in range, naming the variable", () => {
    for (const env of [{ SCIM_READ_WORKERS: "-1" }, { SCIM_READ_WORKERS: "two" }, { SCIM_READ_WORKERS: "1.5" }]) {
      const name = Object.keys(env)[0]!;
      expect(() => loadConfig(env)).toThrow(ConfigError);
      expect(() => loadConfig(env)).toThrow(new RegExp(name));
    }
  });
});
