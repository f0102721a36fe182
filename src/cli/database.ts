import { userInfo } from "node:os";
import type { Actor } from "../directory/audit.js";
import { openDatabase, type Db } from "../directory/database.js";
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
 * The refusal of a command whose code below the CLI still needs SQLite: one line naming what is
 * missing, printed by the program's error handler (no stack trace).
 */
export function refuseOnPostgres(url: string, what: string): void {
  if (isPostgresUrl(url)) throw new Error(`${what} does not run on PostgreSQL yet; use a sqlite: DATABASE_URL for it`);
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

/**
 * Transitional, for the commands whose services still take a SQLite handle (org, setup-link, admin):
 * withStore replaces it once they run on the store.
 */
export function withDatabase<H extends { db: Db; close(): void }, T>(openDb: () => H, run: (handle: H) => T): T {
  const handle = openDb();
  try {
    return run(handle);
  } finally {
    handle.close();
  }
}

/** The operator at this terminal, for the audit log: `cli:<name>`, by default the OS user. */
export const cliOperator = (name?: string): Actor => ({ type: "operator", id: `cli:${name ?? userInfo().username}` });
