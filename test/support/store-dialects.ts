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
import { exec, type StoreOp } from "../../src/directory/store-op.js";
import { freshDatabase, postgresUnavailable, type TestDatabase } from "./postgres.js";
import type { NewImport } from "../../src/sync/import/store.js";

export interface StoreDialect {
  name: "SQLite" | "PostgreSQL";
  /** A new, empty, migrated store. */
  open(): Promise<SqlStore>;
  /**
   * A new, empty, migrated database and two stores on it, as two instances (or the server and the
   * CLI) would hold: for what one must see of the other's writes.
   */
  openTwo(): Promise<[SqlStore, SqlStore]>;
  /** Closes and removes every store this dialect opened. */
  cleanup(): Promise<void>;
}

function sqlite(): StoreDialect {
  const opened: { dir?: string; database: OpenDatabase }[] = [];
  const open = async () => {
    const dir = mkdtempSync(join(tmpdir(), "store-dialect-"));
    const database = openDatabase(`sqlite:${join(dir, "bridge.db")}`);
    opened.push({ dir, database });
    return { store: sqliteStore(database.sqlite), path: join(dir, "bridge.db") };
  };
  return {
    name: "SQLite",
    open: async () => (await open()).store,
    openTwo: async () => {
      const first = await open();
      const database = openDatabase(`sqlite:${first.path}`);
      opened.push({ database });
      return [first.store, sqliteStore(database.sqlite)];
    },
    cleanup: async () => {
      for (const { database } of opened) if (database.sqlite.open) database.close();
      for (const { dir } of opened.splice(0)) if (dir) rmSync(dir, { recursive: true, force: true });
    },
  };
}

function postgres(): StoreDialect {
  const opened: { database: TestDatabase; stores: SqlStore[] }[] = [];
  const open = async (count: number) => {
    const database = await freshDatabase();
    await migratePostgres(database.url);
    const stores = Array.from({ length: count }, (_, i) =>
      postgresStore(database.url, { poolSize: 4, applicationName: `store-dialects test ${i + 1}` }),
    );
    opened.push({ database, stores });
    return stores;
  };
  return {
    name: "PostgreSQL",
    open: async () => (await open(1))[0]!,
    openTwo: async () => {
      const [first, second] = await open(2);
      return [first!, second!];
    },
    cleanup: async () => {
      for (const { database, stores } of opened.splice(0)) {
        for (const store of stores) await store.close();
        await database.drop();
      }
    },
  };
}

/** Both dialects, for `describe.each(storeDialects())("… on $name", …)`. */
export const storeDialects = (): StoreDialect[] => (postgresUnavailable === "" ? [sqlite(), postgres()] : [sqlite()]);

/** The organization `org_1` ("acme", isolated users, connection acme-db) that the rows of most store tests belong to. */
export const seedOrganization = (): StoreOp<number> =>
  exec(
    `INSERT INTO organizations (id, slug, display_name, user_model, connection, created_at, updated_at)
     VALUES ('org_1', 'acme', 'Acme', 'isolated', 'acme-db', 1, 1)`,
  );

/** An import of a 10-user file into org_1's directory dir_1 (seedOrganization), as the operator `adm_1` starts it. */
export const newTestImport = (fileSha256: string, at: number, fileName = `${fileSha256}.jsonl`): NewImport => ({
  organizationId: "org_1",
  directoryId: "dir_1",
  fileSha256,
  fileName,
  format: "jsonl",
  upsert: false,
  connection: "acme-db",
  records: 10,
  chunks: [{ chunk: 1, firstRecord: 1, lastRecord: 10, users: 10, bytes: 1000 }],
  actor: { type: "operator", id: "adm_1" },
  at,
});
