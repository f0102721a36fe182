/**
 * Reads and writes for sync tests, through the store ops both dialects run (src/directory/store-op.ts):
 * the same SQL with `?` placeholders on SQLite and PostgreSQL, rows in SQLite's shape (int8 as a
 * number, booleans as 1/0). Each call is one unit of work of its own.
 */
import type { SqlStore } from "../../src/directory/sql.js";
import { exec, many, one, value, type SqlParam } from "../../src/directory/store-op.js";

/** The first column of the first row, or undefined. */
export const sqlValue = <T>(store: SqlStore, text: string, params: readonly SqlParam[] = []): Promise<T | undefined> =>
  store.read(value<T>(text, params));

/** The first row, or undefined. */
export const sqlRow = <T>(store: SqlStore, text: string, params: readonly SqlParam[] = []): Promise<T | undefined> =>
  store.read(one<T>(text, params));

/** Every row. */
export const sqlRows = <T>(store: SqlStore, text: string, params: readonly SqlParam[] = []): Promise<T[]> =>
  store.read(many<T>(text, params));

/** A statement that returns no rows, in a write unit of its own; the number of rows it changed. */
export const sqlExec = (store: SqlStore, text: string, params: readonly SqlParam[] = []): Promise<number> =>
  store.write(exec(text, params));

/** The organization's slug (the Auth0 Organization's name). */
export async function slugOf(store: SqlStore, organizationId: string): Promise<string> {
  const slug = await sqlValue<string>(store, "SELECT slug FROM organizations WHERE id = ?", [organizationId]);
  if (slug === undefined) throw new Error(`no organization ${organizationId}`);
  return slug;
}

/** The Auth0 user the bridge linked a directory user to, or null. */
export async function linkedAuth0Id(store: SqlStore, userId: string): Promise<string | null> {
  return (
    (await sqlValue<string | null>(store, "SELECT auth0_user_id FROM user_sync WHERE user_id = ?", [userId])) ?? null
  );
}
