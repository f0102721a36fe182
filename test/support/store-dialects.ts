/**
 * The bridge's store, migrated, on each dialect: for tests that run the same store ops on SQLite and
 * on PostgreSQL and expect the same outcome. Belongs to the "postgres" vitest project (the
 * PostgreSQL server comes from its global setup); under CI the PostgreSQL half never skips.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { openDatabase, type OpenDatabase } from "../../src/directory/database.js";
import { migratePostgres } from "../../src/directory/postgres.js";
import { postgresStore, sqliteStore, type SqlStore } from "../../src/directory/sql.js";
import { freshDatabase, postgresUnavailable, type TestDatabase } from "./postgres.js";

export interface StoreDialect {
  name: "SQLite" | "PostgreSQL";
  /** A new, empty, migrated store. */
  open(): Promise<SqlStore>;
  /** Closes and removes every store this dialect opened. */
  cleanup(): Promise<void>;
}

function sqlite(): StoreDialect {
  const opened: { dir: string; database: OpenDatabase }[] = [];
  return {
    name: "SQLite",
    open: async () => {
      const dir = mkdtempSync(join(tmpdir(), "store-dialect-"));
      const database = openDatabase(`sqlite:${join(dir, "bridge.db")}`);
      opened.push({ dir, database });
      return sqliteStore(database.sqlite);
    },
    cleanup: async () => {
      for (const { dir, database } of opened.splice(0)) {
        database.close();
        rmSync(dir, { recursive: true, force: true });
      }
    },
  };
}

function postgres(): StoreDialect {
  const opened: { database: TestDatabase; store: SqlStore }[] = [];
  return {
    name: "PostgreSQL",
    open: async () => {
      const database = await freshDatabase();
      await migratePostgres(database.url);
      const store = postgresStore(database.url, { poolSize: 4, applicationName: "store-dialects test" });
      opened.push({ database, store });
      return store;
    },
    cleanup: async () => {
      for (const { database, store } of opened.splice(0)) {
        await store.close();
        await database.drop();
      }
    },
  };
}

/** Both dialects, for `describe.each(storeDialects())("… on $name", …)`. */
export const storeDialects = (): StoreDialect[] => (postgresUnavailable === "" ? [sqlite(), postgres()] : [sqlite()]);
