/**
 * Which dialect a suite's bridge runs on. The "main" vitest project runs every suite on SQLite; the
 * "postgres" project runs the suites vitest.config.ts lists a second time, on PostgreSQL (a fresh
 * database per bridge on the server its global setup started). A suite reads this only through
 * createTestDatabase (or createTestBridge), never to skip itself.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { inject } from "vitest";
import { openDatabase } from "../../src/directory/database.js";
import { migratePostgres } from "../../src/directory/postgres.js";
import { postgresStore, sqliteStore, type SqlStore } from "../../src/directory/sql.js";
import { freshDatabase } from "./postgres.js";

export type TestDialect = "sqlite" | "postgres";

export const testDialect: TestDialect = inject("testDialect") === "postgres" ? "postgres" : "sqlite";

export interface TestDatabaseUrl {
  /** sqlite:<file> or postgres://… */
  url: string;
  dialect: TestDialect;
  /** Removes the file or drops the database (after every store on it closed). */
  remove(): Promise<void>;
}

/** A new database of this run's dialect, for createBridge (which migrates it; on PostgreSQL a copy of one already migrated). */
export async function createTestDatabase(): Promise<TestDatabaseUrl> {
  if (testDialect === "postgres") {
    const database = await freshDatabase({ template: await migratedTemplate() });
    return { url: database.url, dialect: "postgres", remove: () => database.drop() };
  }
  const dir = mkdtempSync(join(tmpdir(), "scim-bridge-test-"));
  return {
    url: `sqlite:${join(dir, "bridge.db")}`,
    dialect: "sqlite",
    remove: async () => rmSync(dir, { recursive: true, force: true }),
  };
}

/**
 * `count` stores on one new database of this run's dialect, as that many instances would hold it: on
 * SQLite a connection each to one file, on PostgreSQL a pool each. `close` closes them all (a test may
 * close one itself first: a store closes once) and removes the database.
 */
export async function openTestStores(count = 1): Promise<{ stores: SqlStore[]; close(): Promise<void> }> {
  const database = await createTestDatabase();
  const stores = Array.from({ length: count }, (_, i) =>
    database.dialect === "postgres"
      ? postgresStore(database.url, { poolSize: 4, applicationName: `test instance ${i + 1}` })
      : sqliteStore(openDatabase(database.url).sqlite),
  );
  // A pool refuses a second end(); a store a test closed (to see what a dead database looks like) is not closed again.
  for (const store of stores) {
    const close = store.close.bind(store);
    let closing: Promise<void> | undefined;
    store.close = () => (closing ??= close());
  }
  return {
    stores,
    async close() {
      for (const store of stores) await store.close();
      await database.remove();
    },
  };
}

let template: Promise<string> | undefined;

/**
 * A migrated database, made once per test process, that each new database copies: CREATE DATABASE
 * … TEMPLATE copies its files, where running the migrations again cost each bridge seconds on the
 * 2-core CI machine (createBridge still runs them, finding nothing to apply). Dropped with the server.
 */
function migratedTemplate(): Promise<string> {
  template ??= (async () => {
    const database = await freshDatabase();
    await migratePostgres(database.url);
    return new URL(database.url).pathname.slice(1);
  })();
  return template;
}
