import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, expect, it } from "vitest";
import { many } from "../../src/directory/store-op.js";
import { createTestBridge, type TestBridge } from "../helpers/scim.js";
import { auditFor, memberIdsOf, pendingJob, storedGroup } from "../helpers/store.js";

/** Writes that race: none is lost, none is doubled. */
let bridge: TestBridge;
beforeAll(async () => {
  bridge = await createTestBridge();
});
afterAll(async () => bridge.close());

const patchOp = (Operations: unknown[]) => ({ schemas: ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], Operations });

it("loses no member when 20 PATCHes add members to one group at once", async () => {
  const ids = await Promise.all(
    Array.from(
      { length: 20 },
      async (_, i) =>
        (await bridge.scim.post("/Users", { userName: `member-${i}-${randomUUID()}@x.test` }).expect(201)).body
          .id as string,
    ),
  );
  const group = await bridge.scim.post("/Groups", { displayName: `Race ${randomUUID()}` }).expect(201);
  const responses = await Promise.all(
    ids.map((id) =>
      bridge.scim.patch(`/Groups/${group.body.id}`, patchOp([{ op: "Add", path: "members", value: [{ value: id }] }])),
    ),
  );
  expect(responses.map((r) => r.status)).toEqual(ids.map(() => 204));
  expect(await memberIdsOf(bridge.store, group.body.id)).toEqual([...ids].sort());
  const stored = (await storedGroup(bridge.store, group.body.id))!;
  expect(stored.memberCount).toBe(20);
  expect(stored.version).toBe(21);
  for (const id of ids) expect(await pendingJob(bridge.store, "user", id)).toBeDefined();
  expect((await auditFor(bridge.store, group.body.id)).filter((a) => a.action === "group.patch")).toHaveLength(20);
  const read = await bridge.scim.get(`/Groups/${group.body.id}`).expect(200);
  expect(read.body.members).toHaveLength(20);
});

it("leaves exactly one user when the same userName is created 20 times at once, in any case", async () => {
  const name = `dup-${randomUUID()}@x.test`;
  const responses = await Promise.all(
    Array.from({ length: 20 }, (_, i) => bridge.scim.post("/Users", { userName: i % 2 ? name.toUpperCase() : name })),
  );
  const statuses = responses.map((r) => r.status).sort();
  expect(statuses.filter((s) => s === 201)).toHaveLength(1);
  expect(statuses.filter((s) => s === 409)).toHaveLength(19);
  for (const r of responses.filter((r) => r.status === 409)) expect(r.body.scimType).toBe("uniqueness");
  const live = await bridge.store.read(
    many<{ id: string }>("SELECT id FROM users WHERE directory_id = ? AND user_name_lower = ? AND deleted_at IS NULL", [
      bridge.directoryId,
      name.toLowerCase(),
    ]),
  );
  expect(live).toHaveLength(1);
});

it("applies concurrent PATCHes to one user one after another (no lost update)", async () => {
  const user = await bridge.scim.post("/Users", { userName: `multi-${randomUUID()}@x.test` }).expect(201);
  const responses = await Promise.all(
    Array.from({ length: 10 }, (_, i) =>
      bridge.scim.patch(
        `/Users/${user.body.id}`,
        patchOp([{ op: "add", path: "emails", value: [{ value: `e${i}@x.test`, type: `t${i}` }] }]),
      ),
    ),
  );
  expect(responses.every((r) => r.status === 204)).toBe(true);
  const read = await bridge.scim.get(`/Users/${user.body.id}`).expect(200);
  expect(read.body.emails).toHaveLength(10);
  expect(read.body.meta.version).toBe('W/"11"');
});

const newUsers = (n: number, prefix: string) =>
  Promise.all(
    Array.from(
      { length: n },
      async (_, i) =>
        (await bridge.scim.post("/Users", { userName: `${prefix}-${i}-${randomUUID()}@x.test` }).expect(201)).body
          .id as string,
    ),
  );

it("keeps the member count equal to the members when adds and removals of one member race", async () => {
  const others = await newUsers(8, "count");
  const [contested] = await newUsers(1, "contested");
  const group = await bridge.scim.post("/Groups", { displayName: `Count ${randomUUID()}` }).expect(201);
  const add = (id: string) => patchOp([{ op: "Add", path: "members", value: [{ value: id }] }]);
  const remove = (id: string) => patchOp([{ op: "Remove", path: `members[value eq "${id}"]` }]);
  const responses = await Promise.all([
    ...others.map((id) => bridge.scim.patch(`/Groups/${group.body.id}`, add(id))),
    ...Array.from({ length: 6 }, (_, i) =>
      bridge.scim.patch(`/Groups/${group.body.id}`, i % 2 ? remove(contested!) : add(contested!)),
    ),
  ]);
  expect(responses.map((r) => r.status)).toEqual(responses.map(() => 204));
  const members = await memberIdsOf(bridge.store, group.body.id);
  for (const id of others) expect(members).toContain(id);
  const stored = (await storedGroup(bridge.store, group.body.id))!;
  expect(stored.memberCount).toBe(members.length);
  const read = await bridge.scim.get(`/Groups/${group.body.id}`).expect(200);
  expect(read.body.members ?? []).toHaveLength(members.length);
});

it("leaves no member on a group deleted while member PATCHes race it", async () => {
  // A few rounds: the race is won or lost at a different point each time.
  for (let round = 0; round < 3; round++) {
    const ids = await newUsers(10, `gone${round}`);
    const group = await bridge.scim
      .post("/Groups", { displayName: `Gone ${randomUUID()}`, members: [{ value: ids[0] }] })
      .expect(201);
    const responses = await Promise.all([
      ...ids
        .slice(1)
        .map((id) =>
          bridge.scim.patch(
            `/Groups/${group.body.id}`,
            patchOp([{ op: "Add", path: "members", value: [{ value: id }] }]),
          ),
        ),
      bridge.scim.delete(`/Groups/${group.body.id}`),
    ]);
    expect(responses.at(-1)!.status).toBe(204);
    // Each PATCH either landed before the delete (204) or found the group gone (404), never a 500.
    for (const r of responses.slice(0, -1)) expect([204, 404]).toContain(r.status);
    await bridge.scim.get(`/Groups/${group.body.id}`).expect(404);
    expect(await memberIdsOf(bridge.store, group.body.id)).toEqual([]);
    expect((await storedGroup(bridge.store, group.body.id))!.memberCount).toBe(0);
  }
});
