import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTestBridge, type TestBridge } from "../helpers/scim.js";
import { memberIdsOf, storedGroup, storedUser } from "../helpers/store.js";

/** PATCH semantics (RFC 7644 §3.5.2) beyond the IdP replays: every op, filtered paths, members. */
let bridge: TestBridge;
beforeAll(async () => {
  bridge = await createTestBridge();
});
afterAll(async () => bridge.close());

const patchOp = (...Operations: unknown[]) => ({
  schemas: ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
  Operations,
});
const enterprise = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";

async function user(extra: Record<string, unknown> = {}): Promise<string> {
  return (await bridge.scim.post("/Users", { userName: `p-${randomUUID()}@x.test`, ...extra }).expect(201)).body.id;
}
const doc = async (id: string) => (await storedUser(bridge.store, id))!.document;

describe("user PATCH", () => {
  it.each(["add", "ADD", "Add", "aDd"])("accepts op %j", async (op) => {
    const id = await user();
    await bridge.scim.patch(`/Users/${id}`, patchOp({ op, path: "title", value: "Boss" })).expect(204);
    expect((await doc(id)).title).toBe("Boss");
  });

  it("removes an attribute, a sub-attribute, a filtered value and a filtered value's sub-attribute", async () => {
    const id = await user({
      title: "T",
      name: { givenName: "G", familyName: "F" },
      emails: [
        { value: "w@x.test", type: "work" },
        { value: "h@x.test", type: "home", display: "Home" },
      ],
    });
    await bridge.scim
      .patch(
        `/Users/${id}`,
        patchOp(
          { op: "remove", path: "title" },
          { op: "remove", path: "name.givenName" },
          { op: "remove", path: 'emails[type eq "work"]' },
          { op: "Remove", path: 'emails[type eq "home"].display' },
        ),
      )
      .expect(204);
    expect(await doc(id)).not.toHaveProperty("title");
    expect((await doc(id)).name).toEqual({ familyName: "F" });
    expect((await doc(id)).emails).toEqual([{ value: "h@x.test", type: "home" }]);
  });

  it("treats a null value as removal and ignores a remove of something absent", async () => {
    const id = await user({ title: "T", nickName: "N" });
    await bridge.scim
      .patch(`/Users/${id}`, patchOp({ op: "replace", path: "title", value: null }, { op: "remove", path: "locale" }))
      .expect(204);
    expect(await doc(id)).not.toHaveProperty("title");
    expect((await doc(id)).nickName).toBe("N");
  });

  it("merges a complex value on add and replace, leaving other sub-attributes", async () => {
    const id = await user({ name: { givenName: "G", familyName: "F" } });
    await bridge.scim
      .patch(`/Users/${id}`, patchOp({ op: "replace", path: "name", value: { middleName: "M" } }))
      .expect(204);
    expect((await doc(id)).name).toEqual({ givenName: "G", familyName: "F", middleName: "M" });
  });

  it("replaces a whole multi-valued attribute, and add appends without duplicating", async () => {
    const id = await user({ emails: [{ value: "a@x.test", type: "work" }] });
    await bridge.scim
      .patch(
        `/Users/${id}`,
        patchOp({
          op: "add",
          path: "emails",
          value: [
            { value: "a@x.test", type: "work" },
            { value: "b@x.test", type: "home" },
          ],
        }),
      )
      .expect(204);
    expect((await doc(id)).emails).toEqual([
      { value: "a@x.test", type: "work" },
      { value: "b@x.test", type: "home" },
    ]);
    await bridge.scim
      .patch(`/Users/${id}`, patchOp({ op: "replace", path: "emails", value: [{ value: "c@x.test", type: "other" }] }))
      .expect(204);
    expect((await doc(id)).emails).toEqual([{ value: "c@x.test", type: "other" }]);
  });

  it("makes a newly primary value the only primary one", async () => {
    const id = await user({ emails: [{ value: "a@x.test", type: "work", primary: true }] });
    await bridge.scim
      .patch(
        `/Users/${id}`,
        patchOp({ op: "add", path: "emails", value: [{ value: "b@x.test", type: "home", primary: true }] }),
      )
      .expect(204);
    expect((await doc(id)).emails).toEqual([
      { value: "a@x.test", type: "work", primary: false },
      { value: "b@x.test", type: "home", primary: true },
    ]);
  });

  it("addresses extension attributes by URN path, by no-path URN object, and removes the extension", async () => {
    const id = await user();
    await bridge.scim
      .patch(`/Users/${id}`, patchOp({ op: "add", value: { [enterprise]: { department: "Ops", costCenter: "42" } } }))
      .expect(204);
    expect((await doc(id))[enterprise]).toEqual({ department: "Ops", costCenter: "42" });
    await bridge.scim.patch(`/Users/${id}`, patchOp({ op: "remove", path: `${enterprise}:costCenter` })).expect(204);
    expect((await doc(id))[enterprise]).toEqual({ department: "Ops" });
    await bridge.scim.patch(`/Users/${id}`, patchOp({ op: "remove", path: enterprise })).expect(204);
    expect(await doc(id)).not.toHaveProperty(enterprise);
    expect((await bridge.scim.get(`/Users/${id}`)).body.schemas).toEqual([
      "urn:ietf:params:scim:schemas:core:2.0:User",
    ]);
  });

  it("ignores read-only, unknown and password targets, and never stores a password", async () => {
    const id = await user();
    const before = (await storedUser(bridge.store, id))!;
    await bridge.scim
      .patch(
        `/Users/${id}`,
        patchOp(
          { op: "replace", value: { id: "other", meta: { version: "x" }, password: "hunter2", unknownThing: 1 } },
          { op: "replace", path: "password", value: "hunter2" },
        ),
      )
      .expect(204);
    expect(await storedUser(bridge.store, id)).toEqual(before);
  });

  it("answers 200 with the resource when the request names attributes", async () => {
    const id = await user();
    const res = await bridge.scim
      .patch(`/Users/${id}?attributes=title`, patchOp({ op: "add", path: "title", value: "Chief" }))
      .expect(200);
    expect(res.body).toEqual({ schemas: ["urn:ietf:params:scim:schemas:core:2.0:User"], id, title: "Chief" });
  });

  it("does not write a version when nothing changes", async () => {
    const id = await user({ title: "Same" });
    await bridge.scim.patch(`/Users/${id}`, patchOp({ op: "replace", path: "title", value: "Same" })).expect(204);
    expect((await storedUser(bridge.store, id))!.version).toBe(1);
  });

  it("keeps the user's status when active is removed", async () => {
    const id = await user({ active: false });
    await bridge.scim.patch(`/Users/${id}`, patchOp({ op: "remove", path: "active" })).expect(204);
    expect((await storedUser(bridge.store, id))!.active).toBe(false);
  });
});

describe("group PATCH on members", () => {
  async function group(memberIds: string[] = []): Promise<string> {
    return (
      await bridge.scim
        .post("/Groups", { displayName: `G ${randomUUID()}`, members: memberIds.map((value) => ({ value })) })
        .expect(201)
    ).body.id;
  }

  it("dedupes adds, ignores removal of non-members, and counts members exactly", async () => {
    const [a, b] = [await user(), await user()];
    const id = await group([a]);
    await bridge.scim
      .patch(
        `/Groups/${id}`,
        patchOp({ op: "add", path: "members", value: [{ value: a }, { value: b }, { value: b }] }),
      )
      .expect(204);
    await bridge.scim
      .patch(`/Groups/${id}`, patchOp({ op: "remove", path: "members", value: [{ value: randomUUID() }] }))
      .expect(204);
    expect(await memberIdsOf(bridge.store, id)).toEqual([a, b].sort());
    expect((await storedGroup(bridge.store, id))!.memberCount).toBe(2);
  });

  it("removes with an or-filter, empties with a bare remove, and adds through a no-path value", async () => {
    const [a, b, c] = [await user(), await user(), await user()];
    const id = await group([a, b, c]);
    await bridge.scim
      .patch(`/Groups/${id}`, patchOp({ op: "remove", path: `members[value eq "${a}" or value eq "${b}"]` }))
      .expect(204);
    expect(await memberIdsOf(bridge.store, id)).toEqual([c]);
    await bridge.scim.patch(`/Groups/${id}`, patchOp({ op: "remove", path: "members" })).expect(204);
    expect(await memberIdsOf(bridge.store, id)).toEqual([]);
    await bridge.scim.patch(`/Groups/${id}`, patchOp({ op: "add", value: { members: [{ value: a }] } })).expect(204);
    expect(await memberIdsOf(bridge.store, id)).toEqual([a]);
    expect((await storedGroup(bridge.store, id))!.memberCount).toBe(1);
  });

  it("nets out an add and a remove of the same member in one request", async () => {
    const a = await user();
    const id = await group();
    await bridge.scim
      .patch(
        `/Groups/${id}`,
        patchOp(
          { op: "add", path: "members", value: [{ value: a }] },
          { op: "remove", path: `members[value eq "${a}"]` },
        ),
      )
      .expect(204);
    expect(await memberIdsOf(bridge.store, id)).toEqual([]);
    expect((await storedGroup(bridge.store, id))!.version).toBe(1);
  });

  it("applies no operation when one member id is unknown", async () => {
    const a = await user();
    const id = await group();
    await bridge.scim
      .patch(
        `/Groups/${id}`,
        patchOp(
          { op: "replace", path: "displayName", value: "Renamed" },
          { op: "add", path: "members", value: [{ value: a }, { value: randomUUID() }] },
        ),
      )
      .expect(400);
    expect(await memberIdsOf(bridge.store, id)).toEqual([]);
    expect((await storedGroup(bridge.store, id))!.displayName).not.toBe("Renamed");
  });

  it("removes a deleted user from its groups and moves the groups' versions", async () => {
    const a = await user();
    const id = await group([a]);
    await bridge.scim.delete(`/Users/${a}`).expect(204);
    expect(await memberIdsOf(bridge.store, id)).toEqual([]);
    expect(await storedGroup(bridge.store, id)).toMatchObject({ memberCount: 0, version: 2 });
  });
});
