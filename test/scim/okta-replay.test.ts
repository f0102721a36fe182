import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Lane } from "../../src/directory/outbox.js";
import { okta } from "../fixtures/idp/okta.js";
import { createTestBridge, scimClient, type TestBridge } from "../helpers/scim.js";
import { auditFor, memberIdsOf, pendingJob, storedGroup, storedUser } from "../helpers/store.js";

/** Every Okta request shape in test/fixtures/idp/okta.ts, replayed; each test checks the answer and what was stored. */
let bridge: TestBridge;
beforeAll(async () => {
  bridge = await createTestBridge();
});
afterAll(async () => bridge.close());

const userName = () => `test.user.${randomUUID()}@okta.local`;

describe("Okta: lookup, create, import", () => {
  it("answers the assignment lookup with 200, integer paging fields and no results", async () => {
    const res = await bridge.scim.get(okta.lookup(userName())).expect(200);
    expect(res.body).toMatchObject({ totalResults: 0, startIndex: 1, itemsPerPage: 0, Resources: [] });
  });

  it("creates a user from Okta's body, dropping the placeholder password and readOnly groups", async () => {
    const name = userName();
    const res = await bridge.scim
      .post("/Users", okta.createUser(name))
      .set("Content-Type", "application/json")
      .expect(201);
    expect(res.body).toMatchObject({ userName: name, locale: "en-US", displayName: "Test User", active: true });
    expect(res.body).not.toHaveProperty("password");
    expect(res.body).not.toHaveProperty("groups");
    const stored = (await storedUser(bridge.store, res.body.id))!;
    expect(stored.resource).not.toContain("1mz050nq");
    expect(JSON.stringify(await auditFor(bridge.store, res.body.id))).not.toContain("1mz050nq");
    expect(stored.document).not.toHaveProperty("groups");
  });

  it("finds the user by an upper-cased userName (caseExact=false) and refuses a second create with 409", async () => {
    const name = userName();
    const created = await bridge.scim.post("/Users", okta.createUser(name)).expect(201);
    const upper = await bridge.scim.get(okta.lookup(name.toUpperCase())).expect(200);
    expect(upper.body.Resources.map((r: { id: string }) => r.id)).toEqual([created.body.id]);
    const again = await bridge.scim.post("/Users", okta.createUser(name)).expect(409);
    expect(again.body).toMatchObject({ scimType: "uniqueness", status: "409" });
  });

  it("imports every user page by page in a stable order with a true totalResults", async () => {
    const dir = await bridge.newDirectory();
    const ids: string[] = [];
    for (let i = 0; i < 7; i++)
      ids.push((await dir.scim.post("/Users", okta.createUser(userName())).expect(201)).body.id);
    const seen: string[] = [];
    for (let start = 1; start <= 7; start += 3) {
      const page = await dir.scim.get(okta.importPage(start, 3)).expect(200);
      expect(page.body.totalResults).toBe(7);
      expect(page.body.startIndex).toBe(start);
      seen.push(...page.body.Resources.map((r: { id: string }) => r.id));
    }
    expect(seen).toEqual(ids);
  });
});

describe("Okta: PUT updates", () => {
  it("accepts the echoed representation (id, meta, groups, display) and stores the change", async () => {
    const name = userName();
    const created = await bridge.scim.post("/Users", okta.createUser(name)).expect(201);
    const read = await bridge.scim.get(`/Users/${created.body.id}`).expect(200);
    const res = await bridge.scim.put(`/Users/${created.body.id}`, okta.replaceUser(read.body.id, name)).expect(200);
    expect(res.body.name).toEqual({ givenName: "Another", middleName: "Excited", familyName: "User" });
    const stored = (await storedUser(bridge.store, created.body.id))!;
    expect(stored.version).toBe(2);
    expect(stored.document.name).toEqual({ givenName: "Another", middleName: "Excited", familyName: "User" });
    // RFC 7644 §3.5.1: attributes missing from the PUT are cleared (Okta sends all it maps).
    expect(stored.document).not.toHaveProperty("locale");
    expect(stored.document).not.toHaveProperty("groups");
  });

  it("deactivates and reactivates with PUT active false/true (AIW apps)", async () => {
    const name = userName();
    const created = await bridge.scim.post("/Users", okta.createUser(name)).expect(201);
    await bridge.scim.put(`/Users/${created.body.id}`, okta.replaceUser(created.body.id, name, false)).expect(200);
    expect((await storedUser(bridge.store, created.body.id))!.active).toBe(false);
    expect((await pendingJob(bridge.store, "user", created.body.id))?.lane).toBe(Lane.deprovision);
    await bridge.scim.put(`/Users/${created.body.id}`, okta.replaceUser(created.body.id, name, true)).expect(200);
    expect((await storedUser(bridge.store, created.body.id))!.active).toBe(true);
  });
});

describe("Okta: deactivate and reactivate with PATCH", () => {
  it("applies {op: replace, value: {active: false}} and back, checking false → true → false", async () => {
    const created = await bridge.scim.post("/Users", okta.createUser(userName())).expect(201);
    const id = created.body.id as string;
    for (const active of [false, true, false]) {
      await bridge.scim.patch(`/Users/${id}`, okta.setActive(active)).expect(204);
      expect((await storedUser(bridge.store, id))!.active).toBe(active);
      expect((await bridge.scim.get(`/Users/${id}`).expect(200)).body.active).toBe(active);
    }
    expect((await auditFor(bridge.store, id)).map((a) => a.action)).toEqual([
      "user.create",
      "user.deactivate",
      "user.reactivate",
      "user.deactivate",
    ]);
  });
});

describe("Okta: group push", () => {
  it("creates, renames with the id in the value, applies a delta removing a never-member, full-pushes, and deletes", async () => {
    const [a, b, c] = await Promise.all(
      [1, 2, 3].map(
        async () => (await bridge.scim.post("/Users", okta.createUser(userName())).expect(201)).body.id as string,
      ),
    );
    const created = await bridge.scim.post("/Groups", okta.createGroup(`Test SCIMv2 ${randomUUID()}`)).expect(201);
    const id = created.body.id as string;

    await bridge.scim.patch(`/Groups/${id}`, okta.renameGroup(id, "Renamed SCIMv2")).expect(204);
    expect((await storedGroup(bridge.store, id))!.displayName).toBe("Renamed SCIMv2");

    await bridge.scim
      .patch(
        `/Groups/${id}`,
        okta.membershipDelta(randomUUID(), [
          { value: a!, display: "a" },
          { value: b!, display: "b" },
        ]),
      )
      .expect(204);
    expect(await memberIdsOf(bridge.store, id)).toEqual([a, b].sort());

    await bridge.scim.patch(`/Groups/${id}`, okta.membershipDelta(a!, [{ value: c!, display: "c" }])).expect(204);
    expect(await memberIdsOf(bridge.store, id)).toEqual([b, c].sort());

    await bridge.scim.patch(`/Groups/${id}`, okta.fullPush([{ value: a!, display: "a" }])).expect(204);
    expect(await memberIdsOf(bridge.store, id)).toEqual([a]);
    expect((await storedGroup(bridge.store, id))!.memberCount).toBe(1);

    const found = await bridge.scim.get(okta.groupLookup("Renamed SCIMv2")).expect(200);
    expect(found.body.Resources.map((g: { id: string }) => g.id)).toEqual([id]);

    await bridge.scim.delete(`/Groups/${id}`).expect(204);
    await bridge.scim.get(`/Groups/${id}`).expect(404);
  });

  it("replaces membership with PUT carrying the full member list (AIW apps)", async () => {
    const [a, b] = await Promise.all(
      [1, 2].map(
        async () => (await bridge.scim.post("/Users", okta.createUser(userName())).expect(201)).body.id as string,
      ),
    );
    const created = await bridge.scim
      .post("/Groups", { ...okta.createGroup(`AIW ${randomUUID()}`), members: [{ value: a }] })
      .expect(201);
    const res = await bridge.scim
      .put(`/Groups/${created.body.id}`, okta.replaceGroup("AIW renamed", [{ value: b!, display: "b" }]))
      .expect(200);
    expect(res.body.displayName).toBe("AIW renamed");
    expect(res.body.members.map((m: { value: string }) => m.value)).toEqual([b]);
    expect(await memberIdsOf(bridge.store, created.body.id)).toEqual([b]);
    // Both the removed and the added member get a reconcile job.
    expect(await pendingJob(bridge.store, "user", a!)).toBeDefined();
    expect(await pendingJob(bridge.store, "user", b!)).toBeDefined();
  });
});

describe("Okta: errors it reads", () => {
  it("answers bad credentials with a 401 SCIM Error carrying status and detail", async () => {
    const res = await scimClient(bridge.http, { basePath: bridge.basePath, token: "not-a-token" })
      .get("/Users")
      .expect(401);
    expect(res.body).toMatchObject({ schemas: ["urn:ietf:params:scim:api:messages:2.0:Error"], status: "401" });
    expect(res.body.detail).toBeTruthy();
    expect(res.headers["www-authenticate"]).toMatch(/^Bearer realm="scim-bridge", error="invalid_token"/);
  });
});
