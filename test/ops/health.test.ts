import { afterEach, describe, expect, it } from "vitest";
import express from "express";
import request from "supertest";
import type { SqlStore } from "../../src/directory/sql.js";
import type { TenantReport } from "../../src/sync/tenant-checks.js";
import { healthRouter, type HealthOptions } from "../../src/http/health.js";
import { openTestStores, testDialect } from "../support/test-dialect.js";

let opened: { close(): Promise<void> }[] = [];
afterEach(async () => {
  for (const o of opened) await o.close();
  opened = [];
});

/** A store on a new database of the run's dialect (vitest.config.ts runs this suite on both). */
async function open(): Promise<SqlStore> {
  const o = await openTestStores(1);
  opened.push(o);
  return o.stores[0]!;
}

const appWith = (options: HealthOptions) => express().use(healthRouter(options));

describe("/healthz and /readyz", () => {
  it("are both 200 when the database answers and the worker polled recently", async () => {
    const store = await open();
    const now = 1_000_000;
    const app = appWith({ store, worker: { lastTickAt: now - 200 }, now: () => now });
    const health = await request(app).get("/healthz").expect(200);
    expect(health.body).toEqual({ status: "ok" });
    const ready = await request(app).get("/readyz").expect(200);
    expect(ready.body).toEqual({ status: "ok", checks: { database: "ok", worker: "ok" } });
    expect(ready.headers["cache-control"]).toBe("no-store");
  });

  it("is ready without a worker when the store runs a read", async () => {
    const store = await open();
    await request(appWith({ store }))
      .get("/readyz")
      .expect(200, { status: "ok", checks: { database: "ok" } });
  });

  it("is not ready, naming the worker, when the worker stopped polling or never started", async () => {
    const store = await open();
    const now = 1_000_000;
    const worker = { lastTickAt: now - 20_000 };
    const app = appWith({ store, worker, now: () => now, staleAfterMs: 15_000 });
    const stale = await request(app).get("/readyz").expect(503);
    expect(stale.body).toMatchObject({ status: "unavailable", checks: { database: "ok", worker: "stale" } });
    expect(stale.body.problems).toEqual(["worker: last polled 20 s ago (limit 15 s)"]);

    worker.lastTickAt = 0;
    const notStarted = await request(app).get("/readyz").expect(503);
    expect(notStarted.body.checks.worker).toBe("not started");

    worker.lastTickAt = now - 1000; // it recovers
    await request(app).get("/readyz").expect(200);
    // Liveness is not readiness: the process still serves.
    await request(app).get("/healthz").expect(200);
  });

  it("is not ready, naming the database, when the database cannot be queried", async () => {
    const store = await open();
    const app = appWith({ store, worker: { lastTickAt: Date.now() } });
    await store.close();
    const res = await request(app).get("/readyz").expect(503);
    expect(res.body.checks).toEqual({ database: "unreachable", worker: "ok" });
    // The driver's own words: better-sqlite3's closed connection, node-postgres's ended pool.
    expect(res.body.problems[0]).toMatch(
      testDialect === "postgres"
        ? /^database: Cannot use a pool after calling end on the pool$/
        : /^database: .*not open/,
    );
    await request(app).get("/healthz").expect(200);
  });

  it("turns not ready once a graceful shutdown starts, so that traffic drains away", async () => {
    const store = await open();
    let stopping = false;
    const app = appWith({ store, shuttingDown: () => stopping });
    await request(app).get("/readyz").expect(200);
    stopping = true;
    const res = await request(app).get("/readyz").expect(503);
    expect(res.body.problems).toEqual(["shutdown: the process is stopping"]);
  });
});

describe("/readyz and the Auth0 tenant checks", () => {
  const report = (over: Partial<TenantReport>): TenantReport => ({
    tenant: "acme.eu.auth0.com",
    checkedAt: "2026-12-06T00:00:00.000Z",
    ok: true,
    auth0: "ok",
    grantedScopes: [],
    missingScopes: [],
    checks: [{ id: "token", status: "ok", summary: "client credentials accepted" }],
    ...over,
  });

  it("is not ready until the first check finished, then ready when the tenant is usable", async () => {
    const store = await open();
    let current: TenantReport | undefined;
    const app = appWith({ store, tenant: { current: () => current } });
    const checking = await request(app).get("/readyz").expect(503);
    expect(checking.body.checks.auth0).toBe("checking");
    current = report({});
    const ready = await request(app).get("/readyz").expect(200);
    expect(ready.body).toMatchObject({
      status: "ok",
      checks: { auth0: "ok" },
      auth0: { tenant: "acme.eu.auth0.com", missingScopes: [] },
    });
  });

  it("says unauthorised with the token check's reason and fix", async () => {
    const store = await open();
    const current = report({
      ok: false,
      auth0: "unauthorised",
      checks: [
        {
          id: "token",
          status: "fail",
          summary: "Auth0 unauthorised: the token endpoint answered 401 (Unauthorized)",
          fix: "check AUTH0_CLIENT_SECRET",
        },
      ],
    });
    const res = await request(appWith({ store, tenant: { current: () => current } }))
      .get("/readyz")
      .expect(503);
    expect(res.body.checks.auth0).toBe("unauthorised");
    expect(res.body.problems).toEqual([
      "auth0: Auth0 unauthorised: the token endpoint answered 401 (Unauthorized) (fix: check AUTH0_CLIENT_SECRET)",
    ]);
  });

  it("a failed hook or role check is reported by doctor but leaves the instance ready", async () => {
    const store = await open();
    const current = report({
      ok: false,
      checks: [
        { id: "hook", status: "fail", summary: "post-login hook unreachable" },
        { id: "role:admin", status: "fail", summary: "role missing" },
      ],
    });
    const res = await request(appWith({ store, tenant: { current: () => current } }))
      .get("/readyz")
      .expect(200);
    expect(res.body.auth0.failedChecks).toEqual(["hook", "role:admin"]);
  });
});
