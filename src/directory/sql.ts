import { AsyncLocalStorage } from "node:async_hooks";
import type Database from "better-sqlite3";
import pg from "pg";

/**
 * One way to run SQL on either store dialect: SQLite through better-sqlite3 (synchronous, one
 * connection) and PostgreSQL through node-postgres (asynchronous, a pool). Store code written
 * against `Queryable` and `SqlStore` runs unchanged on both, so a rule (audit entry and jobs in the
 * write's transaction, one user per folded userName) is written once.
 *
 * - SQL text uses `?` placeholders; on PostgreSQL they become `$1…$n` (outside string literals,
 *   quoted identifiers and comments).
 * - Rows look the same on both: PostgreSQL's int8 (epoch milliseconds, counters) arrives as a
 *   number and booleans as 1 or 0, as SQLite returns them. Column aliases must be double-quoted to
 *   keep their case on PostgreSQL (`user_name AS "userName"`), which SQLite accepts too.
 * - Parameters: JavaScript booleans are bound as 1/0 on SQLite (better-sqlite3 refuses booleans);
 *   PostgreSQL reads '1'/'0' into a boolean column.
 *
 * A unit of work (`read` or `write`) owns its connection until its promise settles. On SQLite the
 * one connection is shared by the whole process, so units run one at a time (a mutex): another
 * caller's statement can never land inside a transaction that is waiting on an `await`.
 */
export type Dialect = "sqlite" | "postgres";
export type SqlParam = string | number | boolean | null;

export interface Queryable {
  readonly dialect: Dialect;
  /** The first row, or undefined. */
  get<T>(text: string, params?: readonly SqlParam[]): Promise<T | undefined>;
  all<T>(text: string, params?: readonly SqlParam[]): Promise<T[]>;
  /** Runs a statement; resolves with the number of rows it changed. */
  run(text: string, params?: readonly SqlParam[]): Promise<number>;
}

export interface SqlStore {
  readonly dialect: Dialect;
  /** Runs `work` in one read snapshot: every query in it sees the same committed state. */
  read<T>(work: (q: Queryable) => Promise<T>): Promise<T>;
  /**
   * Runs `work` in one write transaction. Resolves once the commit is durable; when `work` throws,
   * everything it wrote is rolled back and the promise rejects with what it threw.
   */
  write<T>(work: (q: Queryable) => Promise<T>): Promise<T>;
  close(): Promise<void>;
}

/** The store's error for a unit of work opened inside another on the same store (it would wait for itself). */
export class NestedUnitOfWork extends Error {
  constructor() {
    super("a store read or write was started inside another one on the same store: pass its Queryable down instead");
    this.name = "NestedUnitOfWork";
  }
}

/** A duplicate in a unique index or constraint, on either dialect. */
export function isUniqueViolation(err: unknown): boolean {
  if (typeof err !== "object" || err === null) return false;
  const code = (err as { code?: unknown }).code;
  // SQLite's extended result code; PostgreSQL's SQLSTATE 23505 (unique_violation).
  return code === "SQLITE_CONSTRAINT_UNIQUE" || code === "23505";
}

const positional = new Map<string, string>();
const maxPositionalCache = 2000;

/**
 * `?` → `$1…$n` for node-postgres, leaving `?` inside '…' strings, "…" identifiers, `--` and
 * `/* … *\/` comments alone. Cached per text: store SQL is a fixed set of statements.
 */
export function toPositional(text: string): string {
  const cached = positional.get(text);
  if (cached !== undefined) return cached;
  let out = "";
  let n = 0;
  let i = 0;
  while (i < text.length) {
    const c = text[i]!;
    if (c === "'" || c === '"') {
      // Quotes inside are doubled ('it''s'), which this loop reads as two adjacent literals.
      const end = text.indexOf(c, i + 1);
      const stop = end === -1 ? text.length : end + 1;
      out += text.slice(i, stop);
      i = stop;
    } else if (c === "-" && text[i + 1] === "-") {
      const end = text.indexOf("\n", i);
      const stop = end === -1 ? text.length : end;
      out += text.slice(i, stop);
      i = stop;
    } else if (c === "/" && text[i + 1] === "*") {
      const end = text.indexOf("*/", i + 2);
      const stop = end === -1 ? text.length : end + 2;
      out += text.slice(i, stop);
      i = stop;
    } else if (c === "?") {
      out += `$${++n}`;
      i++;
    } else {
      out += c;
      i++;
    }
  }
  if (positional.size >= maxPositionalCache) positional.delete(positional.keys().next().value!);
  positional.set(text, out);
  return out;
}

/** A FIFO lock: `acquire` resolves with the function that releases it. */
class Mutex {
  #tail: Promise<void> = Promise.resolve();
  acquire(): Promise<() => void> {
    let release!: () => void;
    const next = new Promise<void>((resolve) => (release = resolve));
    const ready = this.#tail.then(() => release);
    this.#tail = this.#tail.then(() => next);
    return ready;
  }
}

const sqliteParams = (params: readonly SqlParam[]): unknown[] =>
  params.map((p) => (p === true ? 1 : p === false ? 0 : p));

/** SQLite: statements run at once on the shared connection (cached by its prepare), results resolved. */
function sqliteQueryable(sqlite: Database.Database): Queryable {
  return {
    dialect: "sqlite",
    get: async <T>(text: string, params: readonly SqlParam[] = []) =>
      sqlite.prepare(text).get(...sqliteParams(params)) as T | undefined,
    all: async <T>(text: string, params: readonly SqlParam[] = []) =>
      sqlite.prepare(text).all(...sqliteParams(params)) as T[],
    run: async (text: string, params: readonly SqlParam[] = []) =>
      sqlite.prepare(text).run(...sqliteParams(params)).changes,
  };
}

/**
 * A SqlStore over one better-sqlite3 connection (opened by openDatabase: WAL, busy timeout, cached
 * statements). Writes are IMMEDIATE transactions (the write lock is taken up front, so a second
 * process writing meanwhile makes this one wait instead of failing at its first write); reads are
 * deferred transactions, which in WAL mode see one snapshot without blocking writers.
 */
export function sqliteStore(sqlite: Database.Database): SqlStore {
  const lock = new Mutex();
  const inside = new AsyncLocalStorage<true>();
  const q = sqliteQueryable(sqlite);
  const unit = async <T>(begin: string, work: (q: Queryable) => Promise<T>): Promise<T> => {
    if (inside.getStore()) throw new NestedUnitOfWork();
    const release = await lock.acquire();
    try {
      sqlite.prepare(begin).run();
      let value: T;
      try {
        value = await inside.run(true, () => work(q));
      } catch (error) {
        if (sqlite.inTransaction) sqlite.prepare("ROLLBACK").run();
        throw error;
      }
      sqlite.prepare("COMMIT").run();
      return value;
    } finally {
      release();
    }
  };
  return {
    dialect: "sqlite",
    read: (work) => unit("BEGIN", work),
    write: (work) => unit("BEGIN IMMEDIATE", work),
    close: async () => {
      const release = await lock.acquire();
      try {
        sqlite.close();
      } finally {
        release();
      }
    },
  };
}

/**
 * Type parsers for this store's pools only (never node-postgres's global ones): int8 as a number
 * (every int8 here is epoch milliseconds or a counter, far below 2^53) and booleans as 1/0.
 */
function rowTypes(): pg.CustomTypesConfig {
  const int8 = 20;
  const bool = 16;
  return {
    getTypeParser: ((oid: number, format?: "text" | "binary") => {
      if (oid === int8) return (value: string) => Number(value);
      if (oid === bool) return (value: string) => (value === "t" ? 1 : 0);
      return pg.types.getTypeParser(oid, format);
    }) as pg.CustomTypesConfig["getTypeParser"],
  };
}

function pgQueryable(client: pg.PoolClient): Queryable {
  const query = async <T>(text: string, params: readonly SqlParam[]) =>
    (await client.query<T & pg.QueryResultRow>(toPositional(text), params as unknown[])) as pg.QueryResult<
      T & pg.QueryResultRow
    >;
  return {
    dialect: "postgres",
    get: async <T>(text: string, params: readonly SqlParam[] = []) => (await query<T>(text, params)).rows[0],
    all: async <T>(text: string, params: readonly SqlParam[] = []) => (await query<T>(text, params)).rows,
    run: async (text: string, params: readonly SqlParam[] = []) => (await query(text, params)).rowCount ?? 0,
  };
}

export interface PostgresStoreOptions {
  /** Connections in this instance's pool (node-postgres Pool `max`). Default 10. */
  poolSize?: number;
  /** Shown in pg_stat_activity. */
  applicationName?: string;
  /** Longest a unit of work may wait for a free connection, in ms. Default 10 s. */
  connectTimeoutMs?: number;
}

/**
 * A SqlStore over a node-postgres pool. Writes run at READ COMMITTED with synchronous_commit on (the
 * server default, restated per session so a server configured otherwise cannot weaken an
 * acknowledged write); reads run REPEATABLE READ READ ONLY, one snapshot for the unit.
 */
export function postgresStore(url: string, options: PostgresStoreOptions = {}): SqlStore {
  const pool = new pg.Pool({
    connectionString: url,
    max: options.poolSize ?? 10,
    connectionTimeoutMillis: options.connectTimeoutMs ?? 10_000,
    application_name: options.applicationName ?? "scim-bridge",
    types: rowTypes(),
    options: "-c synchronous_commit=on",
  });
  // An idle client whose server went away emits 'error' on the pool; unhandled, that would end the
  // process. The next checkout gets a fresh connection, so it only needs to be seen.
  pool.on("error", () => {});
  const inside = new AsyncLocalStorage<true>();
  const unit = async <T>(begin: string, work: (q: Queryable) => Promise<T>): Promise<T> => {
    if (inside.getStore()) throw new NestedUnitOfWork();
    return pgTransaction(pool, begin, (client) => inside.run(true, () => work(pgQueryable(client))));
  };
  return {
    dialect: "postgres",
    read: (work) => unit("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", work),
    write: (work) => unit("BEGIN", work),
    close: () => pool.end(),
  };
}

/**
 * Runs `work` in one transaction (opened by `begin`) on a connection of `pool`: committed when it
 * resolves, rolled back when it throws. A connection that could not roll back, or whose COMMIT failed
 * on a dead socket, is discarded rather than handed to the next caller in an unknown state.
 */
export async function pgTransaction<T>(
  pool: pg.Pool,
  begin: string,
  work: (client: pg.PoolClient) => Promise<T>,
): Promise<T> {
  const client = await pool.connect();
  let broken = false;
  try {
    await client.query(begin);
    let value: T;
    try {
      value = await work(client);
    } catch (error) {
      await client.query("ROLLBACK").catch(() => (broken = true));
      throw error;
    }
    await client.query("COMMIT");
    return value;
  } catch (error) {
    if (!broken) broken = isConnectionError(error);
    throw error;
  } finally {
    client.release(broken);
  }
}

const isConnectionError = (error: unknown): boolean => {
  const code = (error as { code?: unknown } | null)?.code;
  // Class 08 (connection exception) and 57P01 (admin shutdown), or a socket error from node.
  return typeof code === "string" && (code.startsWith("08") || code === "57P01" || code.startsWith("E"));
};
