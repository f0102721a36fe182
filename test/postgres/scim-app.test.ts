/**
 * The SCIM app over a store of either dialect: the token check, writes through the write queue (group
 * commit on SQLite, a transaction each on PostgreSQL), reads in one unit each, and /readyz. Two stores
 * on one database stand for two instances: a token revoked through one is refused by the other at
 * its very next request.
 */
import express from "express";
import supertest from "supertest";
import { afterAll, describe, expect, it } from "vitest";
import { createDirectory } from "../../src/directory/directories.js";
import { openDatabase } from "../../src/directory/database.js";
import { postgresStore, sqliteStore, type SqlStore } from "../../src/directory/sql.js";
import { many } from "../../src/directory/store-op.js";
import { issueScimToken, revokeScimToken } from "../../src/directory/tokens.js";
import { changeBy } from "../../src/directory/write-context.js";
import { createApp } from "../../src/http/app.js";
import { healthRouter } from "../../src/http/health.js";
import { seedOrganization, storeDialects } from "../support/store-dialects.js";

const operator = changeBy({ type: "operator", id: "test" });
const scimType = "application/scim+json";

describe.each(storeDialects())("the SCIM app on $name", (dialect) => {
  afterAll(() => dialect.cleanup());

  const setup = async () => {
    const [store, other] = await dialect.openTwo();
    await store.write(seedOrganization());
    const directory = await store.write(createDirectory({ organizationId: "org_1" }, operator));
    const issued = await store.write(issueScimToken({ directoryId: directory.id }, operator));
    const client = (s: SqlStore) => {
      const http = supertest(createApp({ store: s, publicUrl: "http://localhost" }));
      const auth = (t: supertest.Test) => t.set("Authorization", `Bearer ${issued.token}`);
      const base = `/scim/v2/${directory.id}`;
      return {
        get: (path: string) => auth(http.get(`${base}${path}`)),
        post: (path: string, body: unknown) =>
          auth(http.post(`${base}${path}`))
            .set("Content-Type", scimType)
            .send(JSON.stringify(body)),
        patch: (path: string, body: unknown) =>
          auth(http.patch(`${base}${path}`))
            .set("Content-Type", scimType)
            .send(JSON.stringify(body)),
        delete: (path: string) => auth(http.delete(`${base}${path}`)),
      };
    };
    return { store, other, directory, issued, one: client(store), two: client(other) };
  };

  it("creates, reads, filters, patches and deletes a user, each answer seen by the other instance", async () => {
    const { one, two } = await setup();
    const created = await one
      .post("/Users", { schemas: ["urn:ietf:params:scim:schemas:core:2.0:User"], userName: "Ada@Example.com" })
      .expect(201);
    const id = created.body.id as string;
    expect(created.headers.location).toContain(`/Users/${id}`);
    const read = await two.get(`/Users/${id}`).expect(200);
    expect(read.body.userName).toBe("Ada@Example.com");
    expect(read.headers.etag).toBe(created.headers.etag);
    const found = await two.get(`/Users?filter=${encodeURIComponent('userName eq "ada@example.com"')}`).expect(200);
    expect(found.body.totalResults).toBe(1);
    expect(found.body.Resources[0].id).toBe(id);
    // A userName taken already is a conflict, and the first user stays as it was.
    await two
      .post("/Users", { schemas: ["urn:ietf:params:scim:schemas:core:2.0:User"], userName: "ada@example.com" })
      .expect(409);
    await two
      .patch(`/Users/${id}`, {
        schemas: ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        Operations: [{ op: "replace", path: "active", value: false }],
      })
      .expect(204);
    expect((await one.get(`/Users/${id}`).expect(200)).body.active).toBe(false);
    await one.delete(`/Users/${id}`).expect(204);
    await two.get(`/Users/${id}`).expect(404);
  });

  it("refuses a token revoked through another instance at the next request", async () => {
    const { other, directory, issued, one } = await setup();
    await one.get("/Users").expect(200);
    await other.write(
      revokeScimToken({ organizationId: "org_1", directoryId: directory.id, tokenId: issued.record.id }, operator),
    );
    await one.get("/Users").expect(401);
  });

  it("refuses a revoked token on a GET by id, whose read confirms a cached token, and keeps serving the others", async () => {
    const { store, other, directory, issued, one, two } = await setup();
    const id = (await one.post("/Users", { userName: "grace@example.com" }).expect(201)).body.id as string;
    // A second token of the directory, cached by this instance too.
    const second = await store.write(issueScimToken({ directoryId: directory.id }, operator));
    const http = supertest(createApp({ store, publicUrl: "http://localhost" }));
    const withSecond = (path: string) =>
      http.get(`/scim/v2/${directory.id}${path}`).set("Authorization", `Bearer ${second.token}`);
    await one.get(`/Users/${id}`).expect(200);
    await withSecond(`/Users/${id}`).expect(200);
    // The first token revoked through the other instance: this one refuses it at its next GET by id,
    // for an existing user and for an unknown one alike, and still serves the second token.
    await other.write(
      revokeScimToken({ organizationId: "org_1", directoryId: directory.id, tokenId: issued.record.id }, operator),
    );
    const refused = await one.get(`/Users/${id}`).expect(401);
    expect(refused.headers["www-authenticate"]).toMatch(/^Bearer realm="scim-bridge"/);
    expect(refused.body.userName).toBeUndefined();
    await one.get("/Users/no-such-user").expect(401);
    expect((await withSecond(`/Users/${id}`).expect(200)).body.userName).toBe("grace@example.com");
    await withSecond("/Users/no-such-user").expect(404);
    await two.get(`/Users/${id}`).expect(401);
  });

  it("refuses a revoked token on a POST /Users, whose insert confirms a cached token, and stores nothing", async () => {
    const { store, other, directory, issued, one } = await setup();
    const second = await store.write(issueScimToken({ directoryId: directory.id }, operator));
    const http = supertest(createApp({ store, publicUrl: "http://localhost" }));
    const postWithSecond = (body: unknown) =>
      http
        .post(`/scim/v2/${directory.id}/Users`)
        .set("Authorization", `Bearer ${second.token}`)
        .set("Content-Type", scimType)
        .send(JSON.stringify(body));
    // Both tokens cached by this instance.
    await one.post("/Users", { userName: "first@example.com" }).expect(201);
    await postWithSecond({ userName: "second@example.com" }).expect(201);
    await other.write(
      revokeScimToken({ organizationId: "org_1", directoryId: directory.id, tokenId: issued.record.id }, operator),
    );
    // Refused at the next create, with a new userName, a taken one and an invalid body alike.
    await one.post("/Users", { userName: "after@example.com" }).expect(401);
    await one.post("/Users", { userName: "second@example.com" }).expect(401);
    await one.post("/Users", { userName: 42 }).expect(401);
    const users = await store.read(many<{ userName: string }>(`SELECT user_name AS "userName" FROM users ORDER BY 1`));
    expect(users.map((u) => u.userName)).toEqual(["first@example.com", "second@example.com"]);
    // The other token of the directory still creates, after its own check (the epoch moved).
    await postWithSecond({ userName: "third@example.com" }).expect(201);
    await postWithSecond({ userName: "third@example.com" }).expect(409);
  });

  it("is ready while the store runs a read, and 503 naming the database when it cannot", async () => {
    const { store } = await setup();
    await supertest(express().use(healthRouter({ store })))
      .get("/readyz")
      .expect(200, { status: "ok", checks: { database: "ok" } });
    // A store that cannot run a read: a closed SQLite connection, a PostgreSQL server nobody listens for.
    const broken =
      dialect.name === "SQLite"
        ? sqliteStore(openDatabase("sqlite::memory:").sqlite)
        : postgresStore("postgresql://nobody@127.0.0.1:1/none", { connectTimeoutMs: 2_000 });
    await broken.close();
    const res = await supertest(express().use(healthRouter({ store: broken })))
      .get("/readyz")
      .expect(503);
    expect(res.body.checks).toEqual({ database: "unreachable" });
    expect(res.body.problems[0]).toMatch(/^database: /);
  });
});
