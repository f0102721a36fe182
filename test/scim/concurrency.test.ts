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
