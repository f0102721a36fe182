import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTestBridge, scimClient, type ScimClient, type TestBridge, type TestDirectory } from "../helpers/scim.js";
import { getOrganization } from "../../src/directory/organizations.js";
import { storedGroup, storedUser, writeFootprint } from "../helpers/store.js";

/**
 * Tenant isolation (docs/design.md, invariant 5) on every route: another directory's ids answer 404,
 * lists and filters never show another directory's data, a token never opens another directory's
 * URL, and responses built concurrently for two directories carry only their own URLs.
 */
let bridge: TestBridge;
let other: TestDirectory & { scim: ScimClient };
let sameOrg: TestDirectory & { scim: ScimClient };
let userA: { id: string; userName: string; externalId: string };
let groupA: { id: string; displayName: string };

beforeAll(async () => {
  bridge = await createTestBridge();
  other = await bridge.newDirectory();
  sameOrg = await bridge.newDirectory((await bridge.store.read(getOrganization(bridge.organizationId)))!.slug);
  const u = await bridge.scim
    .post("/Users", {
      userName: "shared.name@x.test",
      externalId: "ext-a",
      displayName: "Alice A",
      emails: [{ value: "alice@a.test", type: "work" }],
    })
    .expect(201);
  userA = { id: u.body.id, userName: u.body.userName, externalId: "ext-a" };
  const g = await bridge.scim.post("/Groups", { displayName: "Team A", members: [{ value: userA.id }] }).expect(201);
  groupA = { id: g.body.id, displayName: "Team A" };
});
afterAll(async () => bridge.close());

const patchOp = (Operations: unknown[]) => ({ schemas: ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], Operations });

describe.each([
  ["a directory of another organization", () => other],
  ["another directory of the same organization", () => sameOrg],
])("from %s", (_label, intruder) => {
  it("answers 404 for the user on GET, PUT, PATCH and DELETE, and changes nothing", async () => {
    const before = await writeFootprint(bridge.store);
    const { scim } = intruder();
    await scim.get(`/Users/${userA.id}`).expect(404);
    await scim.put(`/Users/${userA.id}`, { userName: "taken@x.test" }).expect(404);
    await scim.patch(`/Users/${userA.id}`, patchOp([{ op: "replace", path: "active", value: false }])).expect(404);
    await scim.delete(`/Users/${userA.id}`).expect(404);
    expect(await writeFootprint(bridge.store)).toEqual(before);
    expect((await storedUser(bridge.store, userA.id))!.active).toBe(true);
  });

  it("answers 404 for the group on GET, PUT, PATCH and DELETE, and changes nothing", async () => {
    const before = await writeFootprint(bridge.store);
    const { scim } = intruder();
    await scim.get(`/Groups/${groupA.id}`).expect(404);
    await scim.put(`/Groups/${groupA.id}`, { displayName: "Stolen" }).expect(404);
    await scim.patch(`/Groups/${groupA.id}`, patchOp([{ op: "remove", path: "members" }])).expect(404);
    await scim.delete(`/Groups/${groupA.id}`).expect(404);
    expect(await writeFootprint(bridge.store)).toEqual(before);
    expect((await storedGroup(bridge.store, groupA.id))!.memberCount).toBe(1);
  });

  it("never lists or finds the other directory's users and groups", async () => {
    const { scim } = intruder();
    const queries = [
      "/Users",
      `/Users?filter=${encodeURIComponent(`userName eq "${userA.userName}"`)}`,
      `/Users?filter=${encodeURIComponent(`externalId eq "${userA.externalId}"`)}`,
      `/Users?filter=${encodeURIComponent('emails.value eq "alice@a.test"')}`,
      `/Users?filter=${encodeURIComponent(`id eq "${userA.id}"`)}`,
      `/Users?filter=${encodeURIComponent('displayName co "Alice"')}`,
      "/Groups",
      `/Groups?filter=${encodeURIComponent(`displayName eq "${groupA.displayName}"`)}`,
      `/Groups?filter=${encodeURIComponent(`members[value eq "${userA.id}"]`)}`,
    ];
    for (const q of queries) {
      const res = await scim.get(q).expect(200);
      expect(JSON.stringify(res.body)).not.toContain(userA.id);
      expect(JSON.stringify(res.body)).not.toContain(groupA.id);
    }
    for (const path of ["/Users/.search", "/Groups/.search", "/.search"]) {
      const res = await scim
        .post(path, { schemas: ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"] })
        .expect(200);
      expect(JSON.stringify(res.body)).not.toContain(userA.id);
      expect(JSON.stringify(res.body)).not.toContain(groupA.id);
    }
  });

  it("refuses to make another directory's user a member (400) and writes nothing", async () => {
    const { scim } = intruder();
    const g = await scim.post("/Groups", { displayName: `Own ${randomUUID()}` }).expect(201);
    const before = await writeFootprint(bridge.store);
    const res = await scim
      .patch(`/Groups/${g.body.id}`, patchOp([{ op: "add", path: "members", value: [{ value: userA.id }] }]))
      .expect(400);
    expect(res.body.scimType).toBe("invalidValue");
    await scim.post("/Groups", { displayName: `Other ${randomUUID()}`, members: [{ value: userA.id }] }).expect(400);
    expect(await writeFootprint(bridge.store)).toEqual(before);
  });
});

it("keeps userName and group displayName unique per directory only", async () => {
  const res = await other.scim.post("/Users", { userName: userA.userName.toUpperCase() }).expect(201);
  expect(res.body.id).not.toBe(userA.id);
  await other.scim.post("/Groups", { displayName: groupA.displayName }).expect(201);
});

it("refuses a directory's token on every route of another directory's URL", async () => {
  const routes: [string, string][] = [
    ["get", "/Users"],
    ["post", "/Users"],
    ["get", `/Users/${userA.id}`],
    ["put", `/Users/${userA.id}`],
    ["patch", `/Users/${userA.id}`],
    ["delete", `/Users/${userA.id}`],
    ["get", "/Groups"],
    ["post", "/Groups"],
    ["get", `/Groups/${groupA.id}`],
    ["put", `/Groups/${groupA.id}`],
    ["patch", `/Groups/${groupA.id}`],
    ["delete", `/Groups/${groupA.id}`],
    ["post", "/Users/.search"],
    ["post", "/Groups/.search"],
    ["post", "/.search"],
    ["get", "/ServiceProviderConfig"],
    ["get", "/ResourceTypes"],
    ["get", "/Schemas"],
    ["get", "/NoSuchEndpoint"],
  ];
  const before = await writeFootprint(bridge.store);
  for (const [method, path] of routes) {
    const res = await scimClient(bridge.http, { basePath: bridge.basePath, token: other.token }).request(
      method as "get",
      path,
      { userName: "x", displayName: "x" },
    );
    expect(res.status, `${method} ${path}`).toBe(401);
    expect(res.body.schemas).toEqual(["urn:ietf:params:scim:api:messages:2.0:Error"]);
    expect(res.headers["www-authenticate"]).toContain("Bearer");
  }
  // An unknown directory looks exactly like a wrong token.
  await scimClient(bridge.http, { basePath: "/scim/v2/dir-doesnotexist", token: bridge.token })
    .get("/Users")
    .expect(401);
  expect(await writeFootprint(bridge.store)).toEqual(before);
});

it("builds every URL from the requesting directory, even with requests for two directories in flight at once", async () => {
  const dirs = [bridge as TestDirectory & { scim: ScimClient }, other];
  const calls = Array.from({ length: 60 }, (_, i) => {
    const dir = dirs[i % 2]!;
    const kind = i % 3;
    const req =
      kind === 0
        ? dir.scim.post("/Users", { userName: `parallel-${i}-${randomUUID()}@x.test` })
        : kind === 1
          ? dir.scim.get("/Users?count=5")
          : dir.scim.get("/ServiceProviderConfig");
    return req.then((res) => ({ dir, res }));
  });
  for (const { dir, res } of await Promise.all(calls)) {
    const urls =
      JSON.stringify(res.body)
        .match(/https?:\/\/[^"]+/g)
        ?.filter((u) => !u.includes("rfc-editor.org")) ?? [];
    for (const url of urls) expect(url.startsWith(`${dir.baseUrl}/`), url).toBe(true);
    if (res.headers.location) expect(res.headers.location.startsWith(`${dir.baseUrl}/Users/`)).toBe(true);
  }
});

describe("bearer token forms (RFC 6750 §2.1, RFC 7644 §7.4)", () => {
  // A directory of its own: failed authentications are throttled per address and directory.
  let dir: TestDirectory;
  beforeAll(async () => void (dir = await bridge.newDirectory()));
  const users = () => `${dir.basePath}/Users`;

  it("accepts the scheme in any case", async () => {
    await bridge.http.get(users()).set("Authorization", `bearer ${dir.token}`).expect(200);
    await bridge.http.get(users()).set("Authorization", `BEARER ${dir.token}`).expect(200);
  });

  it("refuses the token anywhere but the Authorization header, and malformed headers, with a SCIM 401", async () => {
    const refused = [
      bridge.http.get(`${users()}?access_token=${dir.token}`),
      bridge.http.get(users()).set("Authorization", `Bearer  ${dir.token}`),
      bridge.http.get(users()).set("Authorization", `Bearer ${dir.token} extra`),
      bridge.http.get(users()).set("Authorization", `Basic ${dir.token}`),
      bridge.http.get(users()).set("Authorization", "Bearer "),
      bridge.http.get(users()).set("Authorization", dir.token),
    ];
    for (const req of refused) {
      const res = await req;
      expect(res.status).toBe(401);
      expect(res.body.schemas).toEqual(["urn:ietf:params:scim:api:messages:2.0:Error"]);
      expect(res.headers["www-authenticate"]).toContain('Bearer realm="scim-bridge"');
    }
  });
});
