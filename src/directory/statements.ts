import type Database from "better-sqlite3";
import type { SQL } from "drizzle-orm";
import { SQLiteSyncDialect } from "drizzle-orm/sqlite-core";
import type { DbOrTx } from "./database.js";

/**
 * Statements for the hot SCIM paths (token check, reads by id, list and filter queries). The
 * connection caches every statement it prepares (see cacheStatements in ./database.ts), so running
 * the same SQL text again costs no parse or plan. SQL is still composed with drizzle's `sql` template
 * (every value a bound parameter); only its text is used as the cache key. A drizzle transaction runs
 * on the same connection, so these statements take part in it.
 */
type Statement = Database.Statement<unknown[], unknown>;

const dialect = new SQLiteSyncDialect();

/** drizzle keeps the better-sqlite3 connection on its (untyped) session, for databases and transactions alike. */
export const connectionOf = (db: DbOrTx): Database.Database =>
  (db as unknown as { session: { client: Database.Database } }).session.client;

export function prepared(db: DbOrTx, text: string): Statement {
  return connectionOf(db).prepare(text);
}

export function selectAll<T>(db: DbOrTx, query: SQL): T[] {
  const { sql, params } = dialect.sqlToQuery(query);
  return prepared(db, sql).all(...params) as T[];
}

export function selectOne<T>(db: DbOrTx, query: SQL): T | undefined {
  const { sql, params } = dialect.sqlToQuery(query);
  return prepared(db, sql).get(...params) as T | undefined;
}

/** Runs reads in one snapshot (a deferred transaction), so a count and its page agree. */
export function readSnapshot<T>(db: DbOrTx, read: () => T): T {
  const client = connectionOf(db);
  if (client.inTransaction) return read();
  prepared(db, "BEGIN").run();
  try {
    return read();
  } finally {
    prepared(db, "COMMIT").run();
  }
}
