import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseListParams } from "../../src/scim/list.js";
import { createTestBridge, scimClient, type TestBridge } from "../helpers/scim.js";
import { memberIdsOf, storedUser, writeFootprint } from "../helpers/store.js";

/** Resource endpoints: CRUD, ETags, paging, sorting, projection, discovery, media types. */
let bridge: TestBridge;
beforeAll(async () => {
  bridge = await createTestBridge();
});
afterAll(async () => bridge.close());

const patchOp = (...Operations: unknown[]) => ({
  schemas: ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
  Operations,
});
const newUser = async (extra: Record<string, unknown> = {}) =>
  (await bridge.scim.post("/Users", { userName: `r-${randomUUID()}@x.test`, ...extra }).expect(201)).body as {
    id: string;
    userName: string;
    meta: { version: string };
  };

describe("media types", () => {
  it("accepts application/json and application/scim+json bodies and always answers application/scim+json", async () => {
    const plain = await scimClient(bridge.http, bridge, { contentType: "application/json" })
      .post("/Users", { userName: `j-${randomUUID()}` })
      .expect(201);
    expect(plain.headers["content-type"]).toBe("application/scim+json; charset=utf-8");
    const scim = await bridge.scim.post("/Users", { userName: `s-${randomUUID()}` }).expect(201);
    expect(scim.headers["content-type"]).toBe("application/scim+json; charset=utf-8");
  });

  it("answers unknown endpoints with a SCIM 404", async () => {
    const res = await bridge.scim.get("/Bulk").expect(404);
    expect(res.body).toMatchObject({ schemas: ["urn:ietf:params:scim:api:messages:2.0:Error"], status: "404" });
  });
});

describe("ETags (RFC 7644 §3.14)", () => {
  it("sends meta.version as the ETag and a Location on create", async () => {
    const res = await bridge.scim.post("/Users", { userName: `e-${randomUUID()}` }).expect(201);
    expect(res.headers.etag).toBe('W/"1"');
    expect(res.body.meta.version).toBe('W/"1"');
    expect(res.headers.location).toBe(res.body.meta.location);
  });

  it("answers 304 to a matching If-None-Match and 200 once the resource changed", async () => {
    const user = await newUser();
    await bridge.scim.get(`/Users/${user.id}`).set("If-None-Match", 'W/"1"').expect(304);
    await bridge.scim.patch(`/Users/${user.id}`, patchOp({ op: "add", path: "title", value: "x" })).expect(204);
    const res = await bridge.scim.get(`/Users/${user.id}`).set("If-None-Match", 'W/"1"').expect(200);
    expect(res.headers.etag).toBe('W/"2"');
  });

  it("refuses PUT, PATCH and DELETE with a stale If-Match (412) and writes nothing", async () => {
    const user = await newUser();
    await bridge.scim.patch(`/Users/${user.id}`, patchOp({ op: "add", path: "title", value: "v2" })).expect(204);
    const before = await writeFootprint(bridge.store);
    for (const send of [
      () => bridge.scim.put(`/Users/${user.id}`, { userName: user.userName }),
      () => bridge.scim.patch(`/Users/${user.id}`, patchOp({ op: "add", path: "title", value: "v3" })),
      () => bridge.scim.delete(`/Users/${user.id}`),
    ]) {
      const res = await send().set("If-Match", 'W/"1"').expect(412);
      expect(res.body).toMatchObject({ status: "412", schemas: ["urn:ietf:params:scim:api:messages:2.0:Error"] });
    }
    expect(await writeFootprint(bridge.store)).toEqual(before);
    await bridge.scim
      .patch(`/Users/${user.id}`, patchOp({ op: "add", path: "title", value: "v3" }))
      .set("If-Match", 'W/"2"')
      .expect(204);
    await bridge.scim.delete(`/Users/${user.id}`).set("If-Match", "*").expect(204);
  });
});

describe("users lifecycle", () => {
  it("keeps a deactivated user readable with its memberships, and reactivates it", async () => {
    const user = await newUser();
    const group = await bridge.scim
      .post("/Groups", { displayName: `L ${randomUUID()}`, members: [{ value: user.id }] })
      .expect(201);
    await bridge.scim.patch(`/Users/${user.id}`, patchOp({ op: "replace", path: "active", value: false })).expect(204);
    expect((await bridge.scim.get(`/Users/${user.id}`).expect(200)).body.active).toBe(false);
    expect(await memberIdsOf(bridge.store, group.body.id)).toEqual([user.id]);
    await bridge.scim.patch(`/Users/${user.id}`, patchOp({ op: "replace", path: "active", value: true })).expect(204);
    expect((await storedUser(bridge.store, user.id))!.active).toBe(true);
  });

  it("replaces the whole user on PUT, keeps active when it is omitted, and refuses a taken userName", async () => {
    const user = await newUser({ title: "Old", active: false, nickName: "Nick" });
    const res = await bridge.scim.put(`/Users/${user.id}`, { userName: user.userName, title: "New" }).expect(200);
    expect(res.body).toMatchObject({ title: "New", active: false });
    expect(res.body).not.toHaveProperty("nickName");
    const other = await newUser();
    const clash = await bridge.scim.put(`/Users/${user.id}`, { userName: other.userName.toUpperCase() }).expect(409);
    expect(clash.body.scimType).toBe("uniqueness");
  });

  it("answers 204 to DELETE, then 404 for GET, PUT, PATCH and DELETE", async () => {
    const user = await newUser();
    await bridge.scim.delete(`/Users/${user.id}`).expect(204);
    await bridge.scim.get(`/Users/${user.id}`).expect(404);
    await bridge.scim.put(`/Users/${user.id}`, { userName: user.userName }).expect(404);
    await bridge.scim.patch(`/Users/${user.id}`, patchOp({ op: "add", path: "title", value: "x" })).expect(404);
    await bridge.scim.delete(`/Users/${user.id}`).expect(404);
  });
});

describe("groups", () => {
  it("refuses a second live group with the same displayName, in any case (409)", async () => {
    const name = `Dup ${randomUUID()}`;
    await bridge.scim.post("/Groups", { displayName: name }).expect(201);
    expect((await bridge.scim.post("/Groups", { displayName: name.toUpperCase() }).expect(409)).body.scimType).toBe(
      "uniqueness",
    );
  });

  it("keeps members on a PUT without members, empties on members: [], and omits them when excluded", async () => {
    const user = await newUser();
    const group = await bridge.scim
      .post("/Groups", { displayName: `P ${randomUUID()}`, members: [{ value: user.id }] })
      .expect(201);
    await bridge.scim.put(`/Groups/${group.body.id}`, { displayName: "Renamed only" }).expect(200);
    expect(await memberIdsOf(bridge.store, group.body.id)).toEqual([user.id]);
    const excluded = await bridge.scim.get(`/Groups/${group.body.id}?excludedAttributes=members`).expect(200);
    expect(excluded.body).not.toHaveProperty("members");
    expect(excluded.body.displayName).toBe("Renamed only");
    await bridge.scim.put(`/Groups/${group.body.id}`, { displayName: "Renamed only", members: [] }).expect(200);
    expect(await memberIdsOf(bridge.store, group.body.id)).toEqual([]);
  });
});

describe("lists", () => {
  let dir: Awaited<ReturnType<TestBridge["newDirectory"]>>;
  const names = ["delta", "Alpha", "charlie", "bravo", "echo"];
  beforeAll(async () => {
    dir = await bridge.newDirectory();
    for (const n of names)
      await dir.scim
        .post("/Users", {
          userName: n,
          title: n.length > 4 ? "long" : "short",
          emails: [{ value: `${n}@x.test`, type: "work" }],
        })
        .expect(201);
  });
  const userNames = (res: { body: { Resources: { userName: string }[] } }) => res.body.Resources.map((r) => r.userName);

  it("pages by startIndex and count in creation order with a true totalResults", async () => {
    const page = await dir.scim.get("/Users?startIndex=2&count=2").expect(200);
    expect(page.body).toMatchObject({ totalResults: 5, itemsPerPage: 2, startIndex: 2 });
    expect(userNames(page)).toEqual(["Alpha", "charlie"]);
    expect(userNames(await dir.scim.get("/Users?startIndex=0&count=1"))).toEqual(["delta"]);
    const none = await dir.scim.get("/Users?count=0").expect(200);
    expect(none.body).toMatchObject({ totalResults: 5, itemsPerPage: 0, Resources: [] });
    const past = await dir.scim.get("/Users?startIndex=50").expect(200);
    expect(past.body).toMatchObject({ totalResults: 5, itemsPerPage: 0 });
  });

  it("caps count at filter.maxResults", () => {
    expect(parseListParams({ count: "5000" }).count).toBe(1000);
    expect(parseListParams({ count: "-3" }).count).toBe(0);
  });

  it("sorts by sortBy in either order, ignoring case for userName, ties in creation order", async () => {
    expect(userNames(await dir.scim.get("/Users?sortBy=userName"))).toEqual([
      "Alpha",
      "bravo",
      "charlie",
      "delta",
      "echo",
    ]);
    expect(userNames(await dir.scim.get("/Users?sortBy=userName&sortOrder=descending"))).toEqual([
      "echo",
      "delta",
      "charlie",
      "bravo",
      "Alpha",
    ]);
    // title: "long" for five-letter names, "short" for echo; equal titles keep creation order.
    expect(userNames(await dir.scim.get("/Users?sortBy=title"))).toEqual([
      "delta",
      "Alpha",
      "charlie",
      "bravo",
      "echo",
    ]);
    expect(userNames(await dir.scim.get("/Users?sortBy=emails.value&count=2"))).toEqual(["Alpha", "bravo"]);
  });

  it("returns only requested attributes, or all but excluded ones", async () => {
    const only = await dir.scim.get("/Users?attributes=userName,emails.value&count=1").expect(200);
    expect(only.body.Resources[0]).toEqual({
      schemas: ["urn:ietf:params:scim:schemas:core:2.0:User"],
      id: only.body.Resources[0].id,
      userName: "delta",
      emails: [{ value: "delta@x.test" }],
    });
    const without = await dir.scim.get("/Users?excludedAttributes=emails,meta,id&count=1").expect(200);
    expect(Object.keys(without.body.Resources[0]).sort()).toEqual(["active", "id", "schemas", "title", "userName"]);
  });

  it("searches with POST /Users/.search and across types with POST /.search", async () => {
    const search = await dir.scim
      .post("/Users/.search", {
        schemas: ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"],
        filter: 'title eq "short"',
        attributes: ["userName"],
        count: 10,
      })
      .expect(200);
    expect(userNames(search).sort()).toEqual(["echo"]);
    await dir.scim.post("/Groups", { displayName: "Zulu" }).expect(201);
    const all = await dir.scim.post("/.search", { startIndex: 5, count: 2 }).expect(200);
    expect(all.body.totalResults).toBe(6);
    expect(
      all.body.Resources.map((r: { userName?: string; displayName?: string }) => r.userName ?? r.displayName),
    ).toEqual(["echo", "Zulu"]);
    const sorted = await dir.scim.post("/.search", { sortBy: "userName", sortOrder: "descending" }).expect(200);
    expect(
      sorted.body.Resources.map((r: { userName?: string; displayName?: string }) => r.userName ?? r.displayName),
    ).toEqual(["echo", "delta", "charlie", "bravo", "Alpha", "Zulu"]);
  });
});

describe("discovery (RFC 7644 §4)", () => {
  it("states what the server supports", async () => {
    const spc = await bridge.scim.get("/ServiceProviderConfig").expect(200);
    expect(spc.body).toMatchObject({
      patch: { supported: true },
      bulk: { supported: false },
      filter: { supported: true, maxResults: 1000 },
      sort: { supported: true },
      etag: { supported: true },
      changePassword: { supported: false },
      meta: { resourceType: "ServiceProviderConfig", location: `${bridge.baseUrl}/ServiceProviderConfig` },
    });
    expect((await bridge.scim.get("/serviceConfiguration").expect(200)).body.patch.supported).toBe(true);
    const types = await bridge.scim.get("/ResourceTypes").expect(200);
    expect(types.body.Resources.map((t: { endpoint: string }) => t.endpoint)).toEqual(["/Users", "/Groups"]);
    expect((await bridge.scim.get("/ResourceTypes/Group").expect(200)).body.meta.location).toBe(
      `${bridge.baseUrl}/ResourceTypes/Group`,
    );
    const schemas = await bridge.scim.get("/Schemas").expect(200);
    expect(schemas.body.Resources.map((s: { id: string }) => s.id)).toEqual([
      "urn:ietf:params:scim:schemas:core:2.0:User",
      "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User",
      "urn:ietf:params:scim:schemas:core:2.0:Group",
      "urn:ietf:params:scim:schemas:extension:scim-bridge:1.0:User",
    ]);
    expect(schemas.text).toContain("User Account");
    expect(schemas.text).not.toContain('"password"');
    const user = await bridge.scim.get("/Schemas/urn:ietf:params:scim:schemas:core:2.0:User").expect(200);
    expect(user.body.attributes.find((a: { name: string }) => a.name === "userName")).toMatchObject({
      caseExact: false,
      uniqueness: "server",
    });
  });

  it("serves every schema as an RFC 7643 §7 resource with schemas and meta, in the list and by id", async () => {
    const schemaUrn = "urn:ietf:params:scim:schemas:core:2.0:Schema";
    const list = await bridge.scim.get("/Schemas").expect(200);
    expect(list.body.Resources.length).toBe(4);
    for (const listed of list.body.Resources as { id: string }[]) {
      const location = `${bridge.baseUrl}/Schemas/${listed.id}`;
      expect(listed, listed.id).toMatchObject({ schemas: [schemaUrn], meta: { resourceType: "Schema", location } });
      const one = await bridge.scim.get(`/Schemas/${listed.id}`).expect(200);
      expect(one.body, listed.id).toMatchObject({
        schemas: [schemaUrn],
        id: listed.id,
        meta: { resourceType: "Schema", location },
      });
      expect(one.body.attributes.length).toBeGreaterThan(0);
    }
  });

  it.each(["post", "put", "patch", "delete"] as const)(
    "refuses %s on discovery endpoints with a SCIM error",
    async (method) => {
      for (const path of [
        "/ServiceProviderConfig",
        "/ResourceTypes",
        "/Schemas",
        "/Schemas/urn:ietf:params:scim:schemas:core:2.0:User",
      ]) {
        const res = await bridge.scim[method](path, {}).expect(403);
        expect(res.body.schemas).toEqual(["urn:ietf:params:scim:api:messages:2.0:Error"]);
      }
    },
  );
});
