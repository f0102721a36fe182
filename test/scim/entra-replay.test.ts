import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Lane } from "../../src/directory/outbox.js";
import { entra } from "../fixtures/idp/entra.js";
import { createTestBridge, type TestBridge } from "../helpers/scim.js";
import { emailIndexOf, memberIdsOf, pendingJob, storedGroup, storedUser } from "../helpers/store.js";

/** Every Entra request shape in test/fixtures/idp/entra.ts, replayed; each test checks the answer and what was stored. */
const enterprise = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
const listResponse = "urn:ietf:params:scim:api:messages:2.0:ListResponse";

let bridge: TestBridge;
beforeAll(async () => {
  bridge = await createTestBridge();
});
afterAll(async () => bridge.close());

const createUser = async (userName = `${randomUUID()}@testuser.com`) => {
  const res = await bridge.scim.post("/Users", entra.createUser(userName, randomUUID())).expect(201);
  return res.body as { id: string; userName: string };
};

describe("Entra: connection test and matching", () => {
  it("answers Test Connection's random-GUID query with 200 and an empty ListResponse, never 404", async () => {
    const res = await bridge.scim.get(entra.testConnection(randomUUID())).expect(200);
    expect(res.headers["content-type"]).toMatch(/^application\/scim\+json/);
    expect(res.body).toEqual({
      schemas: [listResponse],
      totalResults: 0,
      itemsPerPage: 0,
      startIndex: 1,
      Resources: [],
    });
  });

  it("answers the group matching query with excludedAttributes=members", async () => {
    const created = await bridge.scim
      .post("/Groups", entra.createGroup(`Sales ${randomUUID()}`, randomUUID()))
      .expect(201);
    await bridge.scim.patch(`/Groups/${created.body.id}`, entra.addMembers((await createUser()).id)).expect(204);
    const res = await bridge.scim.get(entra.groupMatch(created.body.displayName)).expect(200);
    expect(res.body.totalResults).toBe(1);
    expect(res.body.Resources[0].id).toBe(created.body.id);
    expect(res.body.Resources[0]).not.toHaveProperty("members");
  });

  it("matches on externalId sent unquoted and '+'-encoded, and on the work email", async () => {
    const user = await bridge.scim
      .post("/Users", entra.createUserWithNulls(`jyoung-${randomUUID()}@example.com`))
      .expect(201);
    for (const path of [entra.externalIdUnquoted("jyoung"), entra.externalIdPlusEncoded("jyoung")]) {
      const res = await bridge.scim.get(path).expect(200);
      expect(res.body.Resources.map((r: { id: string }) => r.id)).toContain(user.body.id);
    }
    const byEmail = await bridge.scim.get(entra.workEmailMatch("JYOUNG@example.com")).expect(200);
    expect(byEmail.body.Resources.map((r: { id: string }) => r.id)).toContain(user.body.id);
  });
});

describe("Entra: create user", () => {
  it("creates the documented user, ignoring meta, with a stable id and scim+json", async () => {
    const userName = `Test_User_${randomUUID()}@testuser.com`;
    const res = await bridge.scim
      .post("/Users", entra.createUser(userName, "0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef"))
      .expect(201);
    expect(res.headers["content-type"]).toMatch(/^application\/scim\+json/);
    expect(res.headers.location).toBe(`${bridge.baseUrl}/Users/${res.body.id}`);
    expect(res.body).toMatchObject({
      userName,
      active: true,
      externalId: "0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef",
      meta: { resourceType: "User" },
    });
    const stored = (await storedUser(bridge.store, res.body.id))!;
    expect(stored.document).not.toHaveProperty("meta");
    expect(stored.document).not.toHaveProperty("roles");
    expect(stored.userNameLower).toBe(userName.toLowerCase());
    await bridge.scim.get(`/Users/${res.body.id}`).expect(200);
  });

  it("treats explicit nulls (and top-level department/manager) as absent", async () => {
    const res = await bridge.scim
      .post("/Users", entra.createUserWithNulls(`nulls-${randomUUID()}@example.com`))
      .expect(201);
    for (const key of ["addresses", "phoneNumbers", "preferredLanguage", "title", "department", "manager"]) {
      expect(res.body).not.toHaveProperty(key);
      expect((await storedUser(bridge.store, res.body.id))!.document).not.toHaveProperty(key);
    }
  });

  it("stores a manager sent as a bare string and returns it as {value}", async () => {
    const res = await bridge.scim
      .post(
        "/Users",
        entra.createUserWithManagerString(`mgr-${randomUUID()}@x.test`, "26118915-6090-4610-87e4-49d8ca9f808d"),
      )
      .expect(201);
    expect(res.body[enterprise]).toEqual({
      employeeNumber: "701984",
      department: "Tour Operations",
      manager: { value: "26118915-6090-4610-87e4-49d8ca9f808d" },
    });
    expect(
      ((await storedUser(bridge.store, res.body.id))!.document[enterprise] as { manager: unknown }).manager,
    ).toEqual({
      value: "26118915-6090-4610-87e4-49d8ca9f808d",
    });
  });

  it("answers a duplicate userName with 409 uniqueness and a detail", async () => {
    const user = await createUser();
    const res = await bridge.scim
      .post("/Users", entra.createUser(user.userName.toUpperCase(), randomUUID()))
      .expect(409);
    expect(res.body).toMatchObject({ status: "409", scimType: "uniqueness" });
    expect(res.body.detail).toBeTruthy();
  });
});

describe("Entra: PATCH users in both modes", () => {
  it('disables with Replace active "False" (204), keeps the user readable, and enqueues a deprovision', async () => {
    const user = await createUser();
    await bridge.scim.patch(`/Users/${user.id}`, entra.disable()).expect(204);
    expect((await storedUser(bridge.store, user.id))!.active).toBe(false);
    expect((await pendingJob(bridge.store, "user", user.id))?.lane).toBe(Lane.deprovision);
    const read = await bridge.scim.get(`/Users/${user.id}`).expect(200);
    expect(read.body.active).toBe(false);
    const filtered = await bridge.scim.get(entra.testConnection(user.userName)).expect(200);
    expect(filtered.body.Resources[0].active).toBe(false);
  });

  it('accepts op "Add" on active as a replace', async () => {
    const user = await createUser();
    await bridge.scim.patch(`/Users/${user.id}`, entra.disableWithAdd()).expect(204);
    expect((await storedUser(bridge.store, user.id))!.document.active).toBe(false);
  });

  it("adds a single-valued attribute with op Add", async () => {
    const user = await createUser();
    await bridge.scim.patch(`/Users/${user.id}`, entra.addNickName()).expect(204);
    expect((await storedUser(bridge.store, user.id))!.document.nickName).toBe("Babs");
  });

  it("applies one Replace per attribute, with a value-filter path and an extension URN path", async () => {
    const user = await createUser();
    await bridge.scim.patch(`/Users/${user.id}`, entra.replaceEach()).expect(204);
    const doc = (await storedUser(bridge.store, user.id))!.document;
    expect(doc).toMatchObject({
      displayName: "Bjfe",
      externalId: "new-external-id",
      name: { givenName: "Kkom", familyName: "updatedFamilyName" },
      emails: [{ primary: true, type: "work", value: "updatedEmail@microsoft.com" }],
      [enterprise]: { employeeNumber: "Eqpj" },
    });
    expect((await emailIndexOf(bridge.store, user.id)).map((e) => e.valueLower)).toEqual([
      "updatedemail@microsoft.com",
    ]);
  });

  it("expands the aadOptscim062020 no-path object: dotted keys and URN keys, never stored literally", async () => {
    const user = await createUser();
    await bridge.scim.patch(`/Users/${user.id}`, entra.replaceFlagMode()).expect(204);
    const doc = (await storedUser(bridge.store, user.id))!.document;
    expect(doc).toMatchObject({
      displayName: "Bjfe",
      name: { givenName: "Kkom", familyName: "Unua" },
      [enterprise]: { employeeNumber: "Aklq" },
    });
    expect((doc.emails as { value: string }[])[0]!.value).toBe("flag@microsoft.com");
    expect(
      Object.keys(doc)
        .filter((k) => k !== enterprise)
        .some((k) => k.includes(".") || k.startsWith("urn:")),
    ).toBe(false);
  });

  it('expands op "add" with dotted keys', async () => {
    const user = await createUser();
    await bridge.scim.patch(`/Users/${user.id}`, entra.addDottedKeys()).expect(204);
    expect((await storedUser(bridge.store, user.id))!.document).toMatchObject({
      displayName: "Dotty",
      name: { givenName: "Dot", formatted: "Dot Ty", familyName: "familyName" },
    });
  });

  it("replaces userName, and the new one is what filters find", async () => {
    const user = await createUser();
    const renamed = `renamed-${randomUUID()}@testuser.com`;
    await bridge.scim.patch(`/Users/${user.id}`, entra.replaceUserName(renamed)).expect(204);
    expect((await bridge.scim.get(entra.testConnection(renamed))).body.totalResults).toBe(1);
    expect((await bridge.scim.get(entra.testConnection(user.userName))).body.totalResults).toBe(0);
  });

  it("creates the value a filter path names when none matches (emails, addresses, phoneNumbers)", async () => {
    const res = await bridge.scim.post("/Users", { userName: `bare-${randomUUID()}@x.test` }).expect(201);
    await bridge.scim.patch(`/Users/${res.body.id}`, entra.addFilteredValues()).expect(204);
    expect((await storedUser(bridge.store, res.body.id))!.document).toMatchObject({
      emails: [{ type: "work", value: "created@microsoft.com" }],
      addresses: [{ type: "work", streetAddress: "1 Main St" }],
      phoneNumbers: [{ type: "mobile", value: "+1 555 0100" }],
    });
  });
});

describe("Entra: manager", () => {
  it("accepts a bare-string manager id, including a forward reference, and returns {value}", async () => {
    const user = await createUser();
    const notYetProvisioned = randomUUID();
    await bridge.scim.patch(`/Users/${user.id}`, entra.managerBareString(notYetProvisioned)).expect(204);
    const read = await bridge.scim.get(`/Users/${user.id}`).expect(200);
    expect(read.body[enterprise].manager).toEqual({ value: notYetProvisioned });
    expect(read.body.schemas).toContain(enterprise);
  });

  it('accepts the older path "manager" with an array holding $ref', async () => {
    const user = await createUser();
    const manager = await createUser();
    await bridge.scim.patch(`/Users/${user.id}`, entra.managerOldShape(manager.id)).expect(204);
    const stored = (await storedUser(bridge.store, user.id))!.document[enterprise] as { manager: { value: string } };
    expect(stored.manager.value).toBe(manager.id);
  });
});

describe("Entra: disable, restore, hard delete", () => {
  it('keeps group memberships while inactive and restores with "True"', async () => {
    const user = await createUser();
    const group = await bridge.scim.post("/Groups", entra.createGroup(`Dyn ${randomUUID()}`, randomUUID())).expect(201);
    await bridge.scim.patch(`/Groups/${group.body.id}`, entra.addMembers(user.id)).expect(204);
    await bridge.scim.patch(`/Users/${user.id}`, entra.disable()).expect(204);
    expect(await memberIdsOf(bridge.store, group.body.id)).toEqual([user.id]);
    await bridge.scim.patch(`/Users/${user.id}`, entra.restore()).expect(204);
    expect((await storedUser(bridge.store, user.id))!.active).toBe(true);
    const read = await bridge.scim.get(`/Groups/${group.body.id}`).expect(200);
    expect(read.body.members.map((m: { value: string }) => m.value)).toEqual([user.id]);
  });

  it("hard-deletes with 204, then 404, leaving a tombstone and freeing the userName", async () => {
    const user = await createUser();
    await bridge.scim.delete(`/Users/${user.id}`).expect(204);
    const gone = await bridge.scim.get(`/Users/${user.id}`).expect(404);
    expect(gone.body).toMatchObject({ schemas: ["urn:ietf:params:scim:api:messages:2.0:Error"], status: "404" });
    expect((await storedUser(bridge.store, user.id))!.deletedAt).not.toBeNull();
    expect((await pendingJob(bridge.store, "user", user.id))?.lane).toBe(Lane.deprovision);
    expect((await bridge.scim.get(entra.testConnection(user.userName))).body.totalResults).toBe(0);
    await bridge.scim.post("/Users", entra.createUser(user.userName, randomUUID())).expect(201);
  });
});

describe("Entra: groups", () => {
  it("creates a group with the ADSCIM schema URN and meta, empty", async () => {
    const res = await bridge.scim
      .post("/Groups", entra.createGroup("displayName", "8aa1a0c0-c4c3-4bc0-b4a5-2ef676900159"))
      .expect(201);
    expect(res.body).toMatchObject({
      schemas: ["urn:ietf:params:scim:schemas:core:2.0:Group"],
      displayName: "displayName",
      externalId: "8aa1a0c0-c4c3-4bc0-b4a5-2ef676900159",
    });
    expect((await storedGroup(bridge.store, res.body.id))!.memberCount).toBe(0);
    const again = await bridge.scim.get(`/Groups/${res.body.id}?excludedAttributes=members`).expect(200);
    expect(again.body).not.toHaveProperty("members");
  });

  it("adds several members in one PATCH, removes only the listed ones by value array, renames, deletes", async () => {
    const [a, b, c] = [await createUser(), await createUser(), await createUser()];
    const group = await bridge.scim.post("/Groups", entra.createGroup(`Eng ${randomUUID()}`, randomUUID())).expect(201);
    const id = group.body.id as string;
    const added = await bridge.scim.patch(`/Groups/${id}`, entra.addMembers(a.id, b.id, c.id)).expect(204);
    expect(added.text).toBe("");
    expect(await memberIdsOf(bridge.store, id)).toEqual([a.id, b.id, c.id].sort());
    for (const u of [a, b, c]) expect(await pendingJob(bridge.store, "user", u.id)).toBeDefined();

    await bridge.scim.patch(`/Groups/${id}`, entra.removeMembersByValue(b.id)).expect(204);
    expect(await memberIdsOf(bridge.store, id)).toEqual([a.id, c.id].sort());
    await bridge.scim.patch(`/Groups/${id}`, entra.removeMemberByFilter(c.id)).expect(204);
    expect(await memberIdsOf(bridge.store, id)).toEqual([a.id]);
    expect((await storedGroup(bridge.store, id))!.memberCount).toBe(1);

    await bridge.scim.patch(`/Groups/${id}`, entra.renameGroup("updatedDisplayName")).expect(204);
    expect((await storedGroup(bridge.store, id))!.displayName).toBe("updatedDisplayName");
    expect(await pendingJob(bridge.store, "group", id)).toBeDefined();

    await bridge.scim.delete(`/Groups/${id}`).expect(204);
    await bridge.scim.get(`/Groups/${id}`).expect(404);
    expect(await memberIdsOf(bridge.store, id)).toEqual([]);
  });
});
