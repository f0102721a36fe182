import { afterAll, beforeAll, expect, it } from "vitest";
import { createGroup } from "../../src/directory/groups.js";
import { createUser, deleteUser, getUser, updateUser } from "../../src/directory/users.js";
import { createTestBridge, type TestBridge } from "../helpers/scim.js";
import { auditFor, pendingJob, writeFootprint } from "../helpers/store.js";
import { value } from "../../src/directory/store-op.js";

/** Store writes: the resource, its audit entry and its reconcile job commit together or not at all. */
let bridge: TestBridge;
beforeAll(async () => {
  bridge = await createTestBridge();
});
afterAll(async () => bridge.close());

const ctx = () => ({
  organizationId: bridge.organizationId,
  directoryId: bridge.directoryId,
  actor: { type: "directory" as const, id: bridge.directoryId },
  requestId: null,
  at: Date.now(),
});

it("rolls back the user, its audit entry and its job together when the transaction fails", async () => {
  const before = await writeFootprint(bridge.store);
  await expect(
    bridge.store.write(
      (function* () {
        yield* createUser(ctx(), { userName: "rollback@x.test", active: true });
        yield* createGroup(ctx(), { displayName: "Rollback" }, []);
        throw new Error("crash after the writes, before commit");
      })(),
    ),
  ).rejects.toThrow("crash");
  expect(await writeFootprint(bridge.store)).toEqual(before);
});

it("commits the audit entry and the job with each write, and keeps the live count", async () => {
  const count = async () =>
    (await bridge.store.read(value<number>("SELECT user_count FROM directories WHERE id = ?", [bridge.directoryId])))!;
  const start = await count();
  const row = await bridge.store.write(createUser(ctx(), { userName: "counted@x.test", active: true }));
  expect(await count()).toBe(start + 1);
  expect((await auditFor(bridge.store, row.id)).map((a) => a.action)).toEqual(["user.create"]);
  expect(await pendingJob(bridge.store, "user", row.id)).toMatchObject({
    organizationId: bridge.organizationId,
    directoryId: bridge.directoryId,
  });

  await bridge.store.write(updateUser(ctx(), row, { userName: "counted@x.test", active: false }, "user.patch"));
  const updated = (await bridge.store.read(getUser(bridge.directoryId, row.id)))!;
  await bridge.store.write(deleteUser(ctx(), updated));
  expect(await count()).toBe(start);
  const audit = await auditFor(bridge.store, row.id);
  expect(audit.map((a) => a.action)).toEqual(["user.create", "user.deactivate", "user.delete"]);
  expect(audit.every((a) => a.actorType === "directory" && a.actorId === bridge.directoryId)).toBe(true);
});
