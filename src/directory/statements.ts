import type Database from "better-sqlite3";
import type { SQL } from "drizzle-orm";
import { SQLiteSyncDialect } from "drizzle-orm/sqlite-core";
import type { DbOrTx } from "./database.js";

/**
 * Cached better-sqlite3 statements for the hot SCIM paths (token check, reads by id, list and filter
 * queries). drizzle builds the SQL and prepares a new statement on every call, which profiles showed
 * to be a quarter to a third of a read's CPU. SQL is still composed with drizzle's `sql` template
 * (every value a bound parameter); only its text is used as the cache key. A drizzle transaction runs
 * on the same connection, so these statements take part in it.
 */
type Statement = Database.Statement<unknown[], unknown>;

const cache = new WeakMap<Database.Database, Map<string, Statement>>();
/** Filters make many SQL shapes; the cache forgets the oldest beyond this many per connection. */
const maxCached = 500;
const dialect = new SQLiteSyncDialect();

/** drizzle keeps the better-sqlite3 connection on its (untyped) session, for databases and transactions alike. */
const connectionOf = (db: DbOrTx): Database.Database => (db as unknown as { session: { client: Database.Database } }).session.client;

export function prepared(db: DbOrTx, text: string): Statement {
  const client = connectionOf(db);
  let statements = cache.get(client);
  if (!statements) cache.set(client, (statements = new Map()));
  let statement = statements.get(text);
  if (!statement) {
    if (statements.size >= maxCached) statements.delete(statements.keys().next().value!);
    statements.set(text, (statement = client.prepare(text)));
  }
  return statement;
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
