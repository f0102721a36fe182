import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTestBridge, type TestBridge } from "../helpers/scim.js";

/**
 * GET by id is answered before the resource routers (src/scim/routes.ts, readsById): it must answer
 * exactly what Express's `/Users/:id` and `/Groups/:id` routes answer, for every spelling of the path
 * Express accepts, and the request log and metrics must still name the route.
 */
const userSchema = "urn:ietf:params:scim:schemas:core:2.0:User";
const groupSchema = "urn:ietf:params:scim:schemas:core:2.0:Group";
const errorSchema = "urn:ietf:params:scim:api:messages:2.0:Error";

describe("GET by id, as the resource routes answer it", () => {
  let t: TestBridge;
  let userId: string;
  let groupId: string;

  beforeAll(async () => {
    t = await createTestBridge();
    userId = (
      await t.scim
        .post("/Users", { schemas: [userSchema], userName: "ann@example.com", displayName: "Ann" })
        .expect(201)
    ).body.id as string;
    groupId = (
      await t.scim
        .post("/Groups", { schemas: [groupSchema], displayName: "Team", members: [{ value: userId }] })
        .expect(201)
    ).body.id as string;
  });

  afterAll(async () => {
    await t?.close();
  });

  it("matches the resource name in any case, with or without a trailing slash, and keeps the query", async () => {
    const canonical = await t.scim.get(`/Users/${userId}`).expect(200);
    expect(canonical.body).toMatchObject({ id: userId, userName: "ann@example.com" });
    expect(canonical.headers["content-type"]).toMatch(/^application\/scim\+json/);
    for (const path of [`/users/${userId}`, `/USERS/${userId}/`, `/Users/${userId}/`]) {
      const res = await t.scim.get(path).expect(200);
      expect(res.body).toEqual(canonical.body);
      expect(res.headers.etag).toBe(canonical.headers.etag);
    }
    const projected = await t.scim.get(`/users/${userId}/?attributes=userName`).expect(200);
    expect(Object.keys(projected.body).sort()).toEqual(["id", "schemas", "userName"]);
    const group = await t.scim.get(`/groups/${groupId}?excludedAttributes=members`).expect(200);
    expect(group.body).toMatchObject({ id: groupId, displayName: "Team" });
    expect(group.body.members).toBeUndefined();
    expect((await t.scim.get(`/Groups/${groupId}`).expect(200)).body.members).toEqual([
      expect.objectContaining({ value: userId }),
    ]);
  });

  it("answers HEAD with the headers of the GET and no body, and If-None-Match with 304", async () => {
    const get = await t.scim.get(`/Users/${userId}`).expect(200);
    const head = await t.http
      .head(`${t.basePath}/Users/${userId}`)
      .set("Authorization", `Bearer ${t.token}`)
      .expect(200);
    expect(head.headers.etag).toBe(get.headers.etag);
    expect(head.headers["content-length"]).toBe(get.headers["content-length"]);
    expect(head.text ?? "").toBe("");
    await t.scim.get(`/Users/${userId}`).set("If-None-Match", get.headers.etag!).expect(304);
  });

  it("decodes a percent-encoded id, refuses a malformed one with 400, and leaves longer paths to the 404 of unknown endpoints", async () => {
    const encoded = await t.scim.get(`/Users/${encodeURIComponent("a@b c")}`).expect(404);
    expect(encoded.body).toMatchObject({ schemas: [errorSchema], status: "404" });
    expect(encoded.body.detail).toContain("a@b c");
    const malformed = await t.scim.get("/Users/%E0%A4%A");
    expect(malformed.status).toBe(400);
    expect(malformed.headers["content-type"]).toMatch(/^application\/scim\+json/);
    expect(malformed.body).toMatchObject({ schemas: [errorSchema], status: "400" });
    const deeper = await t.scim.get(`/Users/${userId}/extra`).expect(404);
    expect(deeper.body).toMatchObject({ schemas: [errorSchema], status: "404" });
    await t.scim.get("/Users/no-such-user").expect(404);
    await t.scim.get("/Groups/no-such-group").expect(404);
    // Not GET: the other routes answer (here, DELETE of an unknown user).
    await t.scim.delete("/Users/no-such-user").expect(404);
  });

  it("names the route in the metrics as Express's route does", async () => {
    await t.scim.get(`/Users/${userId}`).expect(200);
    await t.scim.get(`/groups/${groupId}`).expect(200);
    const text = await t.bridge.metrics.registry.metrics();
    expect(text).toMatch(
      /scim_bridge_scim_requests_total\{route="\/scim\/v2\/:directoryId\/Users\/:id",method="GET",status="200"\} \d+/,
    );
    expect(text).toMatch(
      /scim_bridge_scim_requests_total\{route="\/scim\/v2\/:directoryId\/Groups\/:id",method="GET",status="200"\} \d+/,
    );
    expect(text).not.toContain(userId);
  });
});
