/**
 * SQLite commits flushed off the event loop (src/directory/wal-sync.ts): a SCIM write is answered
 * only once a flush of the write-ahead log that began after its commit has finished; concurrent
 * writers share flushes; a failed flush stops every later acknowledgement and shows in /readyz's
 * wording. The flush is injected so the test decides when it ends.
 */
import { expect, it } from "vitest";
import { walSync } from "../../src/directory/wal-sync.js";
import { createWriteQueue } from "../../src/directory/write-queue.js";
import { createUser, getUser } from "../../src/directory/users.js";
import { runSync } from "../../src/directory/store-op.js";
import { isBridgeError } from "../../src/errors.js";
import { createTestBridge } from "../helpers/scim.js";

function controlledFlushes() {
  const started: { resolve: () => void; reject: (e: unknown) => void }[] = [];
  const flush = () => new Promise<void>((resolve, reject) => started.push({ resolve, reject }));
  return { started, flush };
}

const tick = () => new Promise((r) => setImmediate(r));

it("acknowledges a commit only after a flush that began after it", async () => {
  const { started, flush } = controlledFlushes();
  const sync = walSync("/nowhere-wal", flush);
  let first = false;
  void sync.committed().then(() => (first = true));
  expect(started).toHaveLength(1);
  // Committed while the first flush runs: that flush may have missed it.
  let second = false;
  void sync.committed().then(() => (second = true));
  started[0]!.resolve();
  await tick();
  expect(first).toBe(true);
  expect(second).toBe(false);
  expect(started).toHaveLength(2);
  started[1]!.resolve();
  await tick();
  expect(second).toBe(true);
});

it("shares one flush among every commit made while the previous one ran", async () => {
  const { started, flush } = controlledFlushes();
  const sync = walSync("/nowhere-wal", flush);
  const acknowledged: number[] = [];
  void sync.committed().then(() => acknowledged.push(0));
  for (let i = 1; i <= 20; i++) void sync.committed().then(() => acknowledged.push(i));
  started[0]!.resolve();
  await tick();
  started[1]!.resolve();
  await tick();
  expect(started).toHaveLength(2);
  expect(acknowledged).toHaveLength(21);
  // Nothing is waiting: durable() needs no flush.
  await sync.durable();
  expect(started).toHaveLength(2);
});

it("after a failed flush acknowledges nothing more, with a 503 that says what to do", async () => {
  const { started, flush } = controlledFlushes();
  const sync = walSync("/nowhere-wal", flush);
  const waiting = sync.committed();
  const alsoWaiting = sync.committed();
  started[0]!.reject(Object.assign(new Error("I/O error"), { code: "EIO" }));
  for (const p of [waiting, alsoWaiting, sync.committed(), sync.durable()]) {
    const error = await p.then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(isBridgeError(error) && error.status).toBe(503);
    expect((error as Error).message).toMatch(/could not be flushed to disk \(EIO\).*restart/);
  }
  expect(sync.problem()).toMatch(/EIO/);
  // No flush is attempted any more: a later success could hide the pages the failed one dropped.
  expect(started).toHaveLength(1);
});

it("leaves the connection at synchronous=FULL for the other writes made on it", async () => {
  const bridge = await createTestBridge();
  try {
    const writes = createWriteQueue(bridge.store);
    const ctx = {
      organizationId: bridge.organizationId,
      directoryId: bridge.directoryId,
      actor: { type: "directory" as const, id: bridge.directoryId },
      requestId: null,
      at: Date.now(),
    };
    const alone = await writes.run(createUser(ctx, { userName: "alone@x.test" }));
    const [a, b] = await Promise.all([
      writes.run(createUser(ctx, { userName: "batch-a@x.test" })),
      writes.run(createUser(ctx, { userName: "batch-b@x.test" })),
    ]);
    // 2 = FULL (SQLite documentation, PRAGMA synchronous).
    expect(bridge.sqlite.pragma("synchronous", { simple: true })).toBe(2);
    for (const user of [alone, a, b]) {
      expect(runSync(bridge.sqlite, getUser(bridge.directoryId, user.id))?.userName).toBe(user.userName);
    }
  } finally {
    await bridge.close();
  }
});
