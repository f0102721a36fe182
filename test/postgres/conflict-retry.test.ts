/**
 * A unit of work given as a factory is run again, in a fresh transaction, when PostgreSQL chose it as
 * a deadlock victim; nothing else is retried. Two stores on one database stand for two instances.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { migratePostgres } from "../../src/directory/postgres.js";
import { postgresStore, type ConflictRetry, type SqlStore } from "../../src/directory/sql.js";
import { exec, many, type StoreOp } from "../../src/directory/store-op.js";
import { createWriteQueue } from "../../src/directory/write-queue.js";
import { freshDatabase, postgresUnavailable, withClient, type TestDatabase } from "../support/postgres.js";

describe.skipIf(postgresUnavailable)("deadlock retry inside the store on PostgreSQL", () => {
  let database: TestDatabase;
  let first: SqlStore;
  let second: SqlStore;
  const retries: ConflictRetry[] = [];
  beforeAll(async () => {
    database = await freshDatabase();
    await migratePostgres(database.url);
    const open = (name: string) =>
      postgresStore(database.url, {
        poolSize: 2,
        applicationName: name,
        onConflictRetry: (event) => retries.push(event),
      });
    first = open("instance a");
    second = open("instance b");
    await withClient(database.url, (c) =>
      c.query("CREATE TABLE pairs (id int PRIMARY KEY, n int NOT NULL); CREATE TABLE writes (unit text PRIMARY KEY)"),
    );
  });
  beforeEach(async () => {
    retries.length = 0;
    await withClient(database.url, (c) =>
      c.query("TRUNCATE writes; DELETE FROM pairs; INSERT INTO pairs VALUES (1, 0), (2, 0)"),
    );
  });
  afterAll(async () => {
    await first?.close();
    await second?.close();
    await database?.drop();
  });

  /** Locks one row, waits while the other unit locks the other row, then wants that one: a deadlock. */
  const crossing = (unit: string, from: number, to: number, runs: string[]) =>
    function* (): StoreOp<void> {
      runs.push(unit);
      yield* exec("UPDATE pairs SET n = n + 1 WHERE id = ?", [from]);
      yield* exec("SELECT pg_sleep(0.3)");
      yield* exec("UPDATE pairs SET n = n + 1 WHERE id = ?", [to]);
      yield* exec("INSERT INTO writes (unit) VALUES (?)", [unit]);
    };

  const state = () =>
    first.read(function* () {
      return {
        pairs: yield* many<{ id: number; n: number }>("SELECT id, n FROM pairs ORDER BY id"),
        writes: (yield* many<{ unit: string }>("SELECT unit FROM writes ORDER BY unit")).map((w) => w.unit),
      };
    });

  it("the deadlock victim runs again and commits once: both units' effects are there exactly once", async () => {
    const runs: string[] = [];
    const outcomes = await Promise.allSettled([
      first.write(crossing("a", 1, 2, runs)),
      second.write(crossing("b", 2, 1, runs)),
    ]);
    expect(outcomes.map((o) => o.status)).toEqual(["fulfilled", "fulfilled"]);
    // One of them lost the deadlock and was made afresh for its second run. (Rarely, on a busy
    // machine, each backend's deadlock check fires before the other's abort lands and both lose: then
    // both run again. Either way every failed run was made afresh and left nothing.)
    expect(retries.length).toBeGreaterThanOrEqual(1);
    expect(retries[0]).toMatchObject({ code: "40P01", attempt: 1, write: true });
    expect(runs).toHaveLength(2 + retries.length);
    // Each unit moved each row once, and each recorded itself once: the failed run left nothing.
    expect(await state()).toEqual({
      pairs: [
        { id: 1, n: 2 },
        { id: 2, n: 2 },
      ],
      writes: ["a", "b"],
    });
  });

  it("SCIM's write path (the write queue) passes the retry through", async () => {
    const runs: string[] = [];
    const [a, b] = [createWriteQueue(first), createWriteQueue(second)];
    await Promise.all([a.run(crossing("a", 1, 2, runs)), b.run(crossing("b", 2, 1, runs))]);
    expect(retries.length).toBeGreaterThanOrEqual(1);
    expect(new Set(retries.map((r) => r.code))).toEqual(new Set(["40P01"]));
    expect(runs).toHaveLength(2 + retries.length);
    expect((await state()).writes).toEqual(["a", "b"]);
  });

  it("an op given as a generator, which cannot run twice, still fails as the victim", async () => {
    const runs: string[] = [];
    const outcomes = await Promise.allSettled([
      first.write(crossing("a", 1, 2, runs)()),
      second.write(crossing("b", 2, 1, runs)()),
    ]);
    const failed = outcomes.filter((o): o is PromiseRejectedResult => o.status === "rejected");
    expect(failed.map((f) => (f.reason as { code?: string }).code)).toEqual(["40P01"]);
    expect(retries).toEqual([]);
    expect((await state()).writes).toHaveLength(1);
  });

  it("a unique violation is not retried: the factory runs once and the caller gets the error", async () => {
    let runs = 0;
    const error = await first
      .write(function* () {
        runs++;
        yield* exec("INSERT INTO writes (unit) VALUES ('x')");
        yield* exec("INSERT INTO writes (unit) VALUES ('x')");
      })
      .then(
        () => undefined,
        (e: unknown) => e,
      );
    expect((error as { code?: string }).code).toBe("23505");
    expect(runs).toBe(1);
    expect(retries).toEqual([]);
    expect((await state()).writes).toEqual([]);
  });

  it("a unit that keeps losing gives up after its attempts, with the conflict", async () => {
    const once = postgresStore(database.url, {
      poolSize: 1,
      conflictAttempts: 2,
      onConflictRetry: (e) => retries.push(e),
    });
    let runs = 0;
    try {
      const error = await once
        .write(function* () {
          runs++;
          // What the server reports for a transaction it cannot serialize, raised here on every run.
          yield* exec("DO $$ BEGIN RAISE EXCEPTION 'conflict' USING ERRCODE = 'serialization_failure'; END $$");
        })
        .then(
          () => undefined,
          (e: unknown) => e,
        );
      expect((error as { code?: string }).code).toBe("40001");
      expect(runs).toBe(2);
      expect(retries.map((r) => r.attempt)).toEqual([1]);
    } finally {
      await once.close();
    }
  });
});
