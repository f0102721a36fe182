import { userInfo } from "node:os";
import type { Actor } from "../directory/audit.js";
import { openDatabase } from "../directory/database.js";
import { isPostgresUrl, migratePostgres } from "../directory/postgres.js";
import { postgresStore, sqliteStore, type SqlStore } from "../directory/sql.js";

/** Opens the store a command works on; the command closes it (withStore does). */
export type OpenStore = () => Promise<SqlStore>;

/**
 * The store at DATABASE_URL, migrated: the one place the CLI tells the dialects apart. SQLite: one
 * connection (openDatabase applies the migrations). PostgreSQL: the migrations first (under their
 * advisory lock, so commands and servers starting together do not race), then a small pool; a
 * command runs one unit at a time.
 */
export async function openStore(url: string): Promise<SqlStore> {
  if (isPostgresUrl(url)) {
    await migratePostgres(url);
    return postgresStore(url, { poolSize: 2, applicationName: "scim-bridge cli" });
  }
  return sqliteStore(openDatabase(url).sqlite);
}

/** `scim-bridge migrate`: applies pending migrations to the database at `url`, and nothing else. */
export async function migrateDatabase(url: string): Promise<void> {
  if (isPostgresUrl(url)) return migratePostgres(url);
  openDatabase(url).close();
}

/**
 * How every command opens the database: one store per command, closed whatever happens. What the
 * store or a service refuses (unknown name, invalid value, conflict) is thrown on, and the program's
 * one error handler prints its message and exits 1; a command never half-reports an error itself.
 */
export async function withStore<T>(open: OpenStore, run: (store: SqlStore) => T | Promise<T>): Promise<T> {
  const store = await open();
  try {
    return await run(store);
  } finally {
    await store.close();
  }
}

/** The operator at this terminal, for the audit log: `cli:<name>`, by default the OS user. */
export const cliOperator = (name?: string): Actor => ({ type: "operator", id: `cli:${name ?? userInfo().username}` });
