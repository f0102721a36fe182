/**
 * SCIM clients that hang up while their request waits on PostgreSQL (the token check's read waiting
 * for a pooled connection): the directory must go on being served. Before the fix, each such
 * request took a slot of the per-directory concurrency limit after its client had gone and never
 * handed it back, so once a load generator (or an IdP timing out) had abandoned as many requests as
 * the limit allows, every later request of that directory waited out its time budget and answered 503.
 */
import http from "node:http";
import type { AddressInfo } from "node:net";
import type { RequestHandler } from "express";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createDirectory } from "../../src/directory/directories.js";
import { migratePostgres } from "../../src/directory/postgres.js";
import { postgresPoolOf, postgresStore, type SqlStore } from "../../src/directory/sql.js";
import { issueScimToken } from "../../src/directory/tokens.js";
import { changeBy } from "../../src/directory/write-context.js";
import { createApp } from "../../src/http/app.js";
import { freshDatabase, postgresUnavailable, type TestDatabase } from "../support/postgres.js";
import { seedOrganization } from "../support/store-dialects.js";

const operator = changeBy({ type: "operator", id: "test" });

async function until(what: string, cond: () => boolean): Promise<void> {
  const end = Date.now() + 15_000;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting until ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe.skipIf(postgresUnavailable !== "")("SCIM requests abandoned by their client on PostgreSQL", () => {
  let database: TestDatabase;
  let store: SqlStore;
  let server: http.Server;

  beforeAll(async () => {
    database = await freshDatabase();
    await migratePostgres(database.url);
  });
  afterAll(async () => {
    await new Promise((r) => server?.close(r));
    await store?.close();
    await database?.drop();
  });

  it("leave the directory served: the next request answers 200, not 503 at its time budget", async () => {
    // One connection, so that the test can hold it and make the token check wait for it.
    store = postgresStore(database.url, { poolSize: 1 });
    await store.write(seedOrganization());
    const directory = await store.write(createDirectory({ organizationId: "org_1" }, operator));
    const issued = await store.write(issueScimToken({ directoryId: directory.id }, operator));
    let closed = 0;
    const seeClose: RequestHandler = (_req, res, next) => {
      res.once("close", () => closed++);
      next();
    };
    const limit = 2;
    const app = createApp({
      store,
      publicUrl: "http://localhost",
      middleware: [seeClose],
      scimRateLimit: { ratePerSecond: 100_000, burst: 100_000, concurrency: limit, shedWhenBehind: false },
      scimRequestBudgetMs: 2000,
    });
    server = app.listen(0, "127.0.0.1");
    await new Promise((r) => server.once("listening", r));
    const { port } = server.address() as AddressInfo;
    const path = `/scim/v2/${directory.id}/Users`;
    const headers = { authorization: `Bearer ${issued.token}` };

    // The only connection is busy: every request waits in the token check for it.
    const pool = postgresPoolOf(store)!;
    const held = await pool.connect();
    const abandoned = limit + 1;
    for (let i = 0; i < abandoned; i++) {
      const req = http.get({ host: "127.0.0.1", port, path, headers });
      req.on("error", () => undefined);
      await until("the request waits for a connection", () => pool.waitingCount === i + 1);
      req.destroy();
    }
    await until("the server has seen every client hang up", () => closed === abandoned);
    // The token checks now run, for requests nobody waits for any more.
    held.release();
    await until("the abandoned token checks are done", () => pool.waitingCount === 0 && pool.idleCount === 1);

    const status = await new Promise<number>((resolve, reject) => {
      http
        .get({ host: "127.0.0.1", port, path, headers }, (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        })
        .on("error", reject);
    });
    expect(status).toBe(200);
  });
});
