/**
 * Which store failures are transient (the edge answers them 503 with Retry-After, the unit having been
 * rolled back) and which are not, produced for real on PostgreSQL.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { migratePostgres } from "../../src/directory/postgres.js";
import { isTransientStoreError, postgresStore, type SqlStore } from "../../src/directory/sql.js";
import { exec, one } from "../../src/directory/store-op.js";
import { freshDatabase, postgresUnavailable, withClient, type TestDatabase } from "../support/postgres.js";

const failureOf = (p: Promise<unknown>): Promise<unknown> =>
  p.then(
    () => {
      throw new Error("expected the unit to fail");
    },
    (e: unknown) => e,
  );

describe.skipIf(postgresUnavailable)("transient store failures on PostgreSQL", () => {
  let database: TestDatabase;
  let store: SqlStore;
  beforeAll(async () => {
    database = await freshDatabase();
    await migratePostgres(database.url);
    store = postgresStore(database.url, { poolSize: 4 });
    await withClient(database.url, (c) =>
      c.query("CREATE TABLE pairs (id int PRIMARY KEY, n int NOT NULL); INSERT INTO pairs VALUES (1, 0), (2, 0)"),
    );
  });
  afterAll(async () => {
    await store?.close();
    await database?.drop();
  });

  it("a deadlock between two writes fails one of them as transient, and the other commits", async () => {
    // Each write locks one row, sleeps while the other locks its own, then wants the other's.
    const a = store.write(
      (function* () {
        yield* exec("UPDATE pairs SET n = n + 1 WHERE id = 1");
        yield* exec("SELECT pg_sleep(0.3)");
        yield* exec("UPDATE pairs SET n = n + 1 WHERE id = 2");
      })(),
    );
    const b = store.write(
      (function* () {
        yield* exec("UPDATE pairs SET n = n + 1 WHERE id = 2");
        yield* exec("SELECT pg_sleep(0.3)");
        yield* exec("UPDATE pairs SET n = n + 1 WHERE id = 1");
      })(),
    );
    const outcomes = await Promise.allSettled([a, b]);
    const failed = outcomes.filter((o): o is PromiseRejectedResult => o.status === "rejected");
    expect(failed).toHaveLength(1);
    expect((failed[0]!.reason as { code?: string }).code).toBe("40P01");
    expect(isTransientStoreError(failed[0]!.reason)).toBe(true);
    // The failed unit was rolled back whole: each row moved twice, by the one that committed.
    const rows = await store.read(
      (function* () {
        return yield* one<{ total: number }>("SELECT CAST(sum(n) AS bigint) AS total FROM pairs");
      })(),
    );
    expect(rows!.total).toBe(2);
  });

  it("no pooled connection free within the timeout is transient", async () => {
    const small = postgresStore(database.url, { poolSize: 1, connectTimeoutMs: 150 });
    try {
      const holding = small.write(exec("SELECT pg_sleep(0.6)"));
      const error = await failureOf(small.read(one("SELECT 1")));
      expect(isTransientStoreError(error)).toBe(true);
      await holding;
    } finally {
      await small.close();
    }
  });

  it("a server that refuses connections is transient; a constraint or a syntax error is not", async () => {
    const nowhere = postgresStore("postgres://nobody@127.0.0.1:1/none", { connectTimeoutMs: 500 });
    try {
      expect(isTransientStoreError(await failureOf(nowhere.read(one("SELECT 1"))))).toBe(true);
    } finally {
      await nowhere.close();
    }
    const duplicate = await failureOf(store.write(exec("INSERT INTO pairs VALUES (1, 0)")));
    expect((duplicate as { code?: string }).code).toBe("23505");
    expect(isTransientStoreError(duplicate)).toBe(false);
    expect(isTransientStoreError(await failureOf(store.read(one("SELEC 1"))))).toBe(false);
  });
});
