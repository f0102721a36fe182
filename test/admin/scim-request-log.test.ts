/**
 * The per-directory SCIM request log: what a customer sees when debugging its IdP setup, and what it
 * must not keep (query values: PII). Tested on a tiny app with the real SCIM bearer auth and error
 * middleware, then read back through the admin API.
 */
import express, { Router } from "express";
import { pino } from "pino";
import supertest from "supertest";
import { afterEach, describe, expect, it } from "vitest";
import { adminRouter } from "../../src/http/admin-router.js";
import { openStore } from "../../src/cli/database.js";
import type { SqlStore } from "../../src/directory/sql.js";
import { many } from "../../src/directory/store-op.js";
import { onboardOrganizationOp } from "../../src/admin/onboarding.js";
import { changeBy } from "../../src/directory/write-context.js";
import { notFound, uniqueness } from "../../src/errors.js";
import { scimBearerAuth } from "../../src/http/auth.js";
import { errorMiddleware } from "../../src/http/errors.js";
import { parseQueryString } from "../../src/http/query.js";
import { requestId } from "../../src/http/request-id.js";
import { loggedPath, scimRequestLog, type ScimRequestLogOptions } from "../../src/http/scim-request-log.js";
import { createTestBridge } from "../helpers/scim.js";
import { createTestDatabase, type TestDatabaseUrl } from "../support/test-dialect.js";

interface LogRow {
  id: number;
  directoryId: string;
  at: number;
  method: string;
  path: string;
  status: number;
  scimType: string | null;
  detail: string | null;
  requestId: string | null;
  durationMs: number;
}
const logColumns = `id, directory_id AS "directoryId", at, method, path, status, scim_type AS "scimType", detail,
  request_id AS "requestId", duration_ms AS "durationMs"`;
/** One directory's logged requests, oldest first. */
const logRows = (store: SqlStore, directoryId: string) =>
  store.read(
    many<LogRow>(`SELECT ${logColumns} FROM scim_request_log WHERE directory_id = ? ORDER BY id`, [directoryId]),
  );

/** Each test's own database of the run's dialect, as the CLI opens one. */
let opened: { database: TestDatabaseUrl; store: SqlStore } | undefined;
afterEach(async () => {
  if (!opened) return;
  await opened.store.close();
  await opened.database.remove();
  opened = undefined;
});

async function setup(options: ScimRequestLogOptions = {}) {
  const database = await createTestDatabase();
  const store = await openStore(database.url);
  opened = { database, store };
  const operator = { type: "operator" as const, id: "test" };
  const one = await store.write(onboardOrganizationOp({ slug: "one" }, changeBy(operator)));
  const two = await store.write(onboardOrganizationOp({ slug: "two" }, changeBy(operator)));
  const log = pino({ level: "silent" });
  const recorder = scimRequestLog(store, options);
  const scim = Router({ mergeParams: true });
  scim.use(
    scimBearerAuth(store, (_req, res, p) => {
      res.locals.scim = {
        directoryId: p.directoryId,
        organizationId: p.organizationId,
        baseUrl: "",
        requestId: res.locals.requestId,
        actor: { type: "directory", id: p.directoryId },
      };
    }),
  );
  scim.get("/Users", (_req, res) => void res.json({ totalResults: 0, Resources: [] }));
  scim.get("/Users/:id", () => {
    throw notFound("Resource 1234 not found");
  });
  scim.post("/Users", () => {
    throw uniqueness("a user with this userName already exists in this directory");
  });
  scim.use(errorMiddleware("scim", log));
  const app = express();
  app.set("query parser", parseQueryString);
  app.use(requestId());
  app.use("/scim/v2/:directoryId", recorder, scim);
  app.use(
    "/admin/v1",
    adminRouter({
      store,
      publicUrl: "https://bridge.example",
      bootstrapOperatorToken: "x".repeat(40),
      log,
      signOut: async () => ({ revoked: true }),
      rateLimit: false,
    }),
  );
  const http = supertest(app);
  const as = (d: typeof one) => (method: "get" | "post", path: string) =>
    http[method](`/scim/v2/${d.directory.id}${path}`).set("Authorization", `Bearer ${d.token.token}`);
  const rows = (directoryId: string) => logRows(store, directoryId);
  return { store, http, recorder, one, two, scimOne: as(one), scimTwo: as(two), rows };
}

describe("SCIM request log", () => {
  it("records method, path, status, SCIM error type and detail, request id and duration, per directory", async () => {
    const t = await setup();
    const ok = await t.scimOne("get", "/Users").expect(200);
    const missing = await t.scimOne("get", "/Users/1234").expect(404);
    const clash = await t.scimOne("post", "/Users").send({ userName: "ada@example.com" }).expect(409);
    await t.scimTwo("get", "/Users").expect(200);
    await t.recorder.flush();

    const mine = await t.rows(t.one.directory.id);
    expect(mine.map((r) => [r.method, r.path, r.status, r.scimType, r.detail])).toEqual([
      ["GET", "/Users", 200, null, null],
      ["GET", "/Users/1234", 404, null, "Resource 1234 not found"],
      ["POST", "/Users", 409, "uniqueness", "a user with this userName already exists in this directory"],
    ]);
    expect(mine.map((r) => r.requestId)).toEqual([ok, missing, clash].map((res) => res.headers["x-request-id"]));
    expect(mine.every((r) => r.durationMs >= 0 && r.at > 0)).toBe(true);
    expect(await t.rows(t.two.directory.id)).toHaveLength(1);
  });

  it("keeps query parameter names but never their values (filters carry userNames and emails)", async () => {
    const t = await setup();
    await t
      .scimOne("get", "/Users?filter=userName%20eq%20%22grace.hopper%40navy.example%22&startIndex=1&count=100")
      .expect(200);
    await t.recorder.flush();
    const [row] = await t.rows(t.one.directory.id);
    expect(row!.path).toBe("/Users?filter&startIndex&count");
    expect(JSON.stringify(await t.store.read(many("SELECT * FROM scim_request_log")))).not.toContain("grace");
    expect(loggedPath("/scim/v2/dir-x/Groups/abc?excludedAttributes=members")).toBe("/Groups/abc?excludedAttributes");
  });

  it("logs no failed authentication, so that a URL alone cannot fill or trim a directory's log", async () => {
    const t = await setup();
    await t.scimOne("get", "/Users").expect(200);
    await t.http.get(`/scim/v2/${t.one.directory.id}/Users`).set("Authorization", "Bearer wrong").expect(401);
    // A valid token of another directory is refused on this URL, and logged nowhere.
    await t.http
      .get(`/scim/v2/${t.one.directory.id}/Users`)
      .set("Authorization", `Bearer ${t.two.token.token}`)
      .expect(401);
    await t.http.get("/scim/v2/dir-doesnotexist/Users").set("Authorization", "Bearer wrong").expect(401);
    await t.recorder.flush();
    expect((await t.rows(t.one.directory.id)).map((r) => r.status)).toEqual([200]);
    expect(await t.rows("dir-doesnotexist")).toEqual([]);
    expect(await t.rows(t.two.directory.id)).toEqual([]);
  });

  it("keeps attribute names in error details but no quoted request values", async () => {
    // The request log the bridge itself mounts, as `serve` runs it.
    const bridge = await createTestBridge();
    try {
      await bridge.scim
        .get("/Users?filter=" + encodeURIComponent('userName eq "grace@navy.example" and meta.created gt "grace"'))
        .expect(400);
      const emails = Array.from({ length: 101 }, (_, i) => ({ value: `grace${i}@navy.example` }));
      await bridge.scim.post("/Users", { userName: "grace@navy.example", emails }).expect(400);
      // The bridge's request log writes through its bookkeeping store.
      const logged = () => logRows(bridge.bookkeeping, bridge.directoryId);
      // The log writes in batches a short while after the requests.
      for (let waited = 0; (await logged()).length < 2 && waited < 10_000; waited += 50)
        await new Promise((r) => setTimeout(r, 50));
      const rows = await logged();
      expect(rows.map((r) => r.status)).toEqual([400, 400]);
      expect(JSON.stringify(rows)).not.toContain("grace");
      expect(rows[0]!.detail).toContain('"meta.created"');
      expect(rows[1]!.detail).toBe('"emails" may hold at most 100 values');
    } finally {
      await bridge.close();
    }
  });

  it("writes in batches after a short delay, not on the request path", async () => {
    const t = await setup({ flushIntervalMs: 1000 });
    await t.scimOne("get", "/Users").expect(200);
    expect(await t.rows(t.one.directory.id)).toHaveLength(0);
    // Written by the timer alone, without a flush.
    for (const end = Date.now() + 10_000; (await t.rows(t.one.directory.id)).length === 0 && Date.now() < end;)
      await new Promise((r) => setTimeout(r, 20));
    expect(await t.rows(t.one.directory.id)).toHaveLength(1);
  });

  it("stores every row before flush resolves, also when a timer's write is still under way", async () => {
    const t = await setup();
    // A store whose writes take a while, as PostgreSQL's round trips do under load.
    const slow: SqlStore = {
      dialect: t.store.dialect,
      read: (op) => t.store.read(op),
      readCommitted: (op) => t.store.readCommitted(op),
      write: async (op) => {
        await new Promise((r) => setTimeout(r, 200));
        return t.store.write(op);
      },
      close: async () => undefined,
    };
    const recorder = scimRequestLog(slow, { flushIntervalMs: 1 });
    const app = express();
    app.use((_req, res, next) => {
      res.locals.scim = { directoryId: t.one.directory.id } as typeof res.locals.scim;
      next();
    });
    app.use(recorder, (_req, res) => void res.status(404).json({ detail: "no" }));
    await supertest(app).get("/Users/1").expect(404);
    await new Promise((r) => setTimeout(r, 50)); // the timer's write has begun
    await recorder.flush();
    expect((await t.rows(t.one.directory.id)).map((r) => r.path)).toEqual(["/Users/1"]);
  });

  it("keeps a batch in which a detail holds U+0000 or an unpaired surrogate, those characters replaced", async () => {
    const t = await setup();
    const recorder = scimRequestLog(t.store, { flushIntervalMs: 60_000 });
    // An app whose error detail echoes what the client sent (the URL-decoded path), or a string cut
    // in the middle of a surrogate pair.
    const echo = express();
    echo.use(requestId());
    echo.use((_req, res, next) => {
      res.locals.scim = { directoryId: t.one.directory.id } as typeof res.locals.scim;
      next();
    });
    echo.use(recorder, (req, res) => {
      const detail = req.path === "/cut" ? `${"😀".slice(1)}y` : decodeURIComponent(req.path.slice(1));
      res.status(400).json({ detail });
    });
    await supertest(echo).get("/a").expect(400);
    await supertest(echo).get("/%00x").expect(400);
    await supertest(echo).get("/cut").expect(400);
    await supertest(echo).get("/b").expect(400);
    await recorder.flush();
    const rows = await t.rows(t.one.directory.id);
    expect(rows.map((r) => r.path)).toEqual(["/a", "/%00x", "/cut", "/b"]);
    expect(rows.map((r) => r.detail)).toEqual(["a", "\ufffdx", "\ufffdy", "b"]);
  });

  it("keeps the last N rows per directory, trimming every few inserts and leaving other directories alone", async () => {
    const t = await setup({ keepPerDirectory: 25, trimEvery: 10, maxBuffered: 5 });
    await t.scimTwo("get", "/Users").expect(200);
    for (let i = 0; i < 63; i++) await t.scimOne("get", `/Users/${i}`).expect(404);
    await t.recorder.flush();
    const kept = await t.rows(t.one.directory.id);
    expect(kept.length).toBeGreaterThanOrEqual(25);
    expect(kept.length).toBeLessThan(25 + 10);
    // The newest are the ones kept.
    expect(kept.at(-1)!.path).toBe("/Users/62");
    expect(kept.map((r) => r.path)).toContain("/Users/38");
    expect(await t.rows(t.two.directory.id)).toHaveLength(1);
  });

  it("is served to the customer admin newest first, with a limit and an errors-only view", async () => {
    const t = await setup();
    await t.scimOne("get", "/Users").expect(200);
    await t.scimOne("get", "/Users/1").expect(404);
    await t.scimOne("get", "/Users").expect(200);
    await t.recorder.flush();
    const admin = (path: string) =>
      t.http
        .get(`/admin/v1/organizations/one/directories/${t.one.directory.id}${path}`)
        .set("Authorization", `Bearer ${"x".repeat(40)}`);
    const all = await admin("/scim-requests?limit=2").expect(200);
    expect(all.body.requests.map((r: { path: string; status: number }) => `${r.status} ${r.path}`)).toEqual([
      "200 /Users",
      "404 /Users/1",
    ]);
    const errors = await admin("/scim-requests?errorsOnly=true").expect(200);
    expect(errors.body.requests).toHaveLength(1);
    expect(errors.body.requests[0]).toMatchObject({
      method: "GET",
      path: "/Users/1",
      status: 404,
      detail: "Resource 1234 not found",
    });
    const tooMany = await admin("/scim-requests?limit=5000").expect(400);
    expect(tooMany.body.message).toMatch(/^query parameter limit:/);
  });

  it("records the real SCIM app's errors through the request log the bridge mounts", async () => {
    const bridge = await createTestBridge();
    try {
      const user = {
        schemas: ["urn:ietf:params:scim:schemas:core:2.0:User"],
        userName: "ada@example.com",
        active: true,
      };
      await bridge.scim.post("/Users", user).expect(201);
      await bridge.scim.post("/Users", user).expect(409);
      await bridge.scim.get("/Users?filter=userName%20zz%20%22x%22").expect(400);
      // The bridge writes its buffered rows within a quarter of a second.
      const read = () => logRows(bridge.bookkeeping, bridge.directoryId);
      for (const end = Date.now() + 10_000; (await read()).length < 3 && Date.now() < end;)
        await new Promise((r) => setTimeout(r, 20));
      const rows = await read();
      expect(rows.map((r) => [r.method, r.path, r.status, r.scimType])).toEqual([
        ["POST", "/Users", 201, null],
        ["POST", "/Users", 409, "uniqueness"],
        ["GET", "/Users?filter", 400, "invalidFilter"],
      ]);
      expect(rows[2]!.detail).toBeTruthy();
    } finally {
      await bridge.close();
    }
  });
});
