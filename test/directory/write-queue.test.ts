import { afterAll, beforeAll, expect, it } from "vitest";
import { openDatabase, type OpenDatabase } from "../../src/directory/database.js";
import { createUser, getUser } from "../../src/directory/users.js";
import { createWriteQueue } from "../../src/directory/write-queue.js";
import { createTestBridge, type TestBridge } from "../helpers/scim.js";
import { auditFor, pendingJob } from "../helpers/store.js";
import { sqliteStore } from "../../src/directory/sql.js";
import { runSync } from "../../src/directory/store-op.js";

/**
 * Group commit: writes queued in the same turn share one transaction, each in its own savepoint, so
 * one request's failure undoes only its own changes and the others are durable when answered.
 */
let bridge: TestBridge;
/** A second connection: what is visible there was committed, not merely written. */
let other: OpenDatabase;
beforeAll(async () => {
  bridge = await createTestBridge();
  other = openDatabase(`sqlite:${bridge.sqlite.name}`);
});
afterAll(async () => {
  other.close();
  await bridge.close();
});

const ctx = () => ({
  organizationId: bridge.organizationId,
  directoryId: bridge.directoryId,
  actor: { type: "directory" as const, id: bridge.directoryId },
  requestId: null,
  at: Date.now(),
});

it("commits the writes of one batch that succeeded and undoes only the one that failed", async () => {
  const writes = createWriteQueue(bridge.store);
  const first = writes.run(createUser(ctx(), { userName: "batch-first@x.test" }));
  let failedId: string | undefined;
  const failing = writes.run(
    (function* () {
      failedId = (yield* createUser(ctx(), { userName: "batch-failing@x.test" })).id;
      throw new Error("the request fails after its write");
    })(),
  );
  const third = writes.run(createUser(ctx(), { userName: "batch-third@x.test" }));
  const [a, b, c] = await Promise.allSettled([first, failing, third]);
  expect(a.status).toBe("fulfilled");
  expect(b).toMatchObject({ status: "rejected", reason: new Error("the request fails after its write") });
  expect(c.status).toBe("fulfilled");
  const ok = [a, c].map((r) => (r as PromiseFulfilledResult<{ id: string }>).value.id);
  for (const id of ok) {
    expect(runSync(other.db, getUser(bridge.directoryId, id))?.id).toBe(id);
    expect((await auditFor(sqliteStore(other.sqlite), id)).map((e) => e.action)).toEqual(["user.create"]);
    expect(await pendingJob(sqliteStore(other.sqlite), "user", id)).toBeDefined();
  }
  expect(runSync(other.db, getUser(bridge.directoryId, failedId!))).toBeUndefined();
  expect(await auditFor(sqliteStore(other.sqlite), failedId!)).toEqual([]);
  expect(await pendingJob(sqliteStore(other.sqlite), "user", failedId!)).toBeUndefined();
  // The connection is left outside any transaction for the next batch and for everyone else.
  expect(bridge.sqlite.inTransaction).toBe(false);
  await expect(writes.run(createUser(ctx(), { userName: "batch-next@x.test" }))).resolves.toBeDefined();
});

it("undoes all of a write alone in its turn that fails after writing, and keeps the connection usable", async () => {
  const writes = createWriteQueue(bridge.store);
  let id: string | undefined;
  await expect(
    writes.run(
      (function* () {
        id = (yield* createUser(ctx(), { userName: "alone-failing@x.test" })).id;
        throw new Error("the request fails after its write");
      })(),
    ),
  ).rejects.toThrow("the request fails after its write");
  expect(runSync(other.db, getUser(bridge.directoryId, id!))).toBeUndefined();
  expect(await auditFor(sqliteStore(other.sqlite), id!)).toEqual([]);
  expect(await pendingJob(sqliteStore(other.sqlite), "user", id!)).toBeUndefined();
  expect(bridge.sqlite.inTransaction).toBe(false);
  // The same userName is free again, and a write alone that succeeds is committed when it resolves.
  const row = await writes.run(createUser(ctx(), { userName: "alone-failing@x.test" }));
  expect(runSync(other.db, getUser(bridge.directoryId, row.id))?.userName).toBe("alone-failing@x.test");
  expect((await auditFor(sqliteStore(other.sqlite), row.id)).map((e) => e.action)).toEqual(["user.create"]);
  expect(await pendingJob(sqliteStore(other.sqlite), "user", row.id)).toBeDefined();
});

it("commits a batch whose writes each change more than a statement journal keeps in memory by default", async () => {
  const writes = createWriteQueue(bridge.store);
  // 40 emails a user: index pages and rows well past 64 KiB per savepoint.
  const emails = (n: number) => Array.from({ length: 40 }, (_, i) => ({ value: `big-${n}-${i}@x.test`, type: "work" }));
  const results = await Promise.allSettled(
    [1, 2, 3].map((n) =>
      writes.run(
        (function* () {
          const row = yield* createUser(ctx(), { userName: `big-${n}@x.test`, emails: emails(n) });
          if (n === 2) throw new Error("the second fails after its write");
          return row;
        })(),
      ),
    ),
  );
  expect(results.map((r) => r.status)).toEqual(["fulfilled", "rejected", "fulfilled"]);
  for (const r of [results[0], results[2]]) {
    const row = (r as PromiseFulfilledResult<{ id: string }>).value;
    expect(runSync(other.db, getUser(bridge.directoryId, row.id))).toBeDefined();
  }
  expect(other.sqlite.prepare("SELECT count(*) FROM user_emails WHERE value_lower LIKE 'big-2-%'").pluck().get()).toBe(
    0,
  );
  expect(other.sqlite.prepare("SELECT count(*) FROM user_emails WHERE value_lower LIKE 'big-3-%'").pluck().get()).toBe(
    40,
  );
  expect(bridge.sqlite.inTransaction).toBe(false);
});

it("rejects every write of a batch that cannot begin, and writes nothing", async () => {
  const writes = createWriteQueue(bridge.store);
  // Another connection holds the write lock longer than busy_timeout allows.
  other.sqlite.pragma("busy_timeout = 0");
  bridge.sqlite.pragma("busy_timeout = 0");
  other.sqlite.prepare("BEGIN IMMEDIATE").run();
  try {
    const results = await Promise.allSettled([
      writes.run(createUser(ctx(), { userName: "locked-1@x.test" })),
      writes.run(createUser(ctx(), { userName: "locked-2@x.test" })),
    ]);
    expect(results.map((r) => r.status)).toEqual(["rejected", "rejected"]);
  } finally {
    other.sqlite.prepare("ROLLBACK").run();
    bridge.sqlite.pragma("busy_timeout = 5000");
    other.sqlite.pragma("busy_timeout = 5000");
  }
  expect(bridge.sqlite.inTransaction).toBe(false);
  await expect(writes.run(createUser(ctx(), { userName: "locked-1@x.test" }))).resolves.toBeDefined();
});
