import { eq } from "drizzle-orm";
import { afterAll, beforeAll, expect, it } from "vitest";
import { directories } from "../../db/schema.js";
import { createGroup } from "../../src/directory/groups.js";
import { createUser, deleteUser, getUser, updateUser } from "../../src/directory/users.js";
import { createTestBridge, type TestBridge } from "../helpers/scim.js";
import { auditFor, pendingJob, writeFootprint } from "../helpers/store.js";
import { runSync } from "../../src/directory/store-op.js";

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

it("rolls back the user, its audit entry and its job together when the transaction fails", () => {
  const before = writeFootprint(bridge.db);
  expect(() =>
    bridge.db.transaction((tx) => {
      runSync(tx, createUser(ctx(), { userName: "rollback@x.test", active: true }));
      runSync(tx, createGroup(ctx(), { displayName: "Rollback" }, []));
      throw new Error("crash after the writes, before commit");
    }),
  ).toThrow("crash");
  expect(writeFootprint(bridge.db)).toEqual(before);
});

it("commits the audit entry and the job with each write, and keeps the live count", () => {
  const count = () =>
    bridge.db
      .select({ n: directories.userCount })
      .from(directories)
      .where(eq(directories.id, bridge.directoryId))
      .get()!.n;
  const start = count();
  const row = bridge.db.transaction((tx) =>
    runSync(tx, createUser(ctx(), { userName: "counted@x.test", active: true })),
  );
  expect(count()).toBe(start + 1);
  expect(auditFor(bridge.db, row.id).map((a) => a.action)).toEqual(["user.create"]);
  expect(pendingJob(bridge.db, "user", row.id)).toMatchObject({
    organizationId: bridge.organizationId,
    directoryId: bridge.directoryId,
  });

  bridge.db.transaction((tx) =>
    runSync(tx, updateUser(ctx(), row, { userName: "counted@x.test", active: false }, "user.patch")),
  );
  const updated = runSync(bridge.db, getUser(bridge.directoryId, row.id))!;
  bridge.db.transaction((tx) => runSync(tx, deleteUser(ctx(), updated)));
  expect(count()).toBe(start);
  const audit = auditFor(bridge.db, row.id);
  expect(audit.map((a) => a.action)).toEqual(["user.create", "user.deactivate", "user.delete"]);
  expect(audit.every((a) => a.actorType === "directory" && a.actorId === bridge.directoryId)).toBe(true);
});
