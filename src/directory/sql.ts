import type Database from "better-sqlite3";
import pg from "pg";
import { handleOf, type Db } from "./database.js";
import {
  endedBy,
  inlineParams,
  runOnClient,
  runSync,
  shapeResult,
  sqliteShapedTypes,
  togetherResults,
  togetherText,
  toPositional,
  type Dialect,
  type SqlParam,
  type Statement,
  type StoreOp,
} from "./store-op.js";

/**
 * The store over either dialect: SQLite through better-sqlite3 (synchronous, one connection) and
 * PostgreSQL through node-postgres (asynchronous, a pool). Store work is written once as a
 * `StoreOp` (./store-op.ts) and run in a unit of work here, so a rule (audit entry and jobs in the
 * write's transaction, one user per folded userName) is written once for both.
 *
 * - SQL text uses `?` placeholders; on PostgreSQL they become `$1…$n` (outside string literals,
 *   quoted identifiers and comments).
 * - Rows look the same on both: PostgreSQL's int8 (epoch milliseconds, counters) arrives as a
 *   number and booleans as 1 or 0, as SQLite returns them. Column aliases must be double-quoted to
 *   keep their case on PostgreSQL (`user_name AS "userName"`), which SQLite accepts too.
 * - Parameters: JavaScript booleans are bound as 1/0 on SQLite (better-sqlite3 refuses booleans).
 *
 * On SQLite a unit of work runs synchronously, start to commit, within the call: no other code of
 * the process can run inside its transaction, and its promise is already settled when returned.
 */
export type { Dialect, SqlParam };
export { toPositional };

/**
 * What a unit of work runs: an op (a generator object, which runs once), or a function making a
 * fresh op each time it is called. Only the second can be run again: on PostgreSQL a unit given a
 * factory is retried when the server chose it as a deadlock victim or failed it for serialization
 * (see `retryableConflict`). The factory must not depend on state an earlier attempt changed.
 */
export type StoreUnit<T> = StoreOp<T> | (() => StoreOp<T>);

export interface SqlStore {
  readonly dialect: Dialect;
  /** Runs `op` in one read snapshot: every query in it sees the same committed state. */
  read<T>(op: StoreUnit<T>): Promise<T>;
  /**
   * Runs `op` with no snapshot of its own: each statement sees what was committed when it ran (READ
   * COMMITTED). Only for ops whose statements need not agree: a single statement, or later
   * statements that only look further into what earlier ones found, where a newer answer is as good
   * (a token check: epoch, then lookup). On PostgreSQL this saves the BEGIN and COMMIT round trips of
   * a unit; on SQLite it is `read`.
   */
  readCommitted<T>(op: StoreUnit<T>): Promise<T>;
  /**
   * Runs `op` in one write transaction. Resolves once the commit is durable; when `op` throws,
   * everything it wrote is rolled back and the promise rejects with what it threw.
   */
  write<T>(op: StoreUnit<T>): Promise<T>;
  close(): Promise<void>;
}

/** The op of a unit: the generator itself, or a fresh one from its factory. */
export const opOf = <T>(unit: StoreUnit<T>): StoreOp<T> => (typeof unit === "function" ? unit() : unit);

/** The store's error for a unit of work opened inside another on the same store (it would wait for itself). */
export class NestedUnitOfWork extends Error {
  constructor() {
    super(
      "a store read or write was started inside another one on the same store: compose the ops with yield* instead",
    );
    this.name = "NestedUnitOfWork";
  }
}

/**
 * A failure of the store that says nothing about the request: the same unit of work, sent again
 * shortly, may well succeed. The unit was rolled back, so nothing of it was stored.
 * - SQLite: another process held the write lock beyond busy_timeout (SQLITE_BUSY, SQLITE_LOCKED).
 * - PostgreSQL (SQLSTATE, "PostgreSQL Error Codes"): a deadlock (40P01) or serialization failure
 *   (40001) that chose this transaction, a lock or statement timeout (55P03, 57014), too many
 *   connections (53300), the server shutting down or starting (57P01-57P03), the connection lost
 *   (class 08), or no pooled connection free within its timeout.
 */
export function isTransientStoreError(err: unknown): boolean {
  if (typeof err !== "object" || err === null) return false;
  const code = (err as { code?: unknown }).code;
  if (typeof code === "string") {
    if (code === "SQLITE_BUSY" || code === "SQLITE_LOCKED" || code.startsWith("SQLITE_BUSY_")) return true;
    if (["40P01", "40001", "55P03", "57014", "53300", "57P01", "57P02", "57P03"].includes(code)) return true;
    if (/^08[0-9A-Z]{3}$/.test(code)) return true;
    // node's socket errors while talking to the server.
    if (["ECONNREFUSED", "ECONNRESET", "EPIPE", "ETIMEDOUT", "EHOSTUNREACH"].includes(code)) return true;
  }
  const message = (err as { message?: unknown }).message;
  // node-postgres's pool: no connection became free within connectionTimeoutMillis.
  return (
    typeof message === "string" &&
    (message === "timeout exceeded when trying to connect" ||
      message === "Connection terminated unexpectedly" ||
      message === "Connection terminated due to connection timeout")
  );
}

/**
 * A PostgreSQL failure that says only that this transaction lost a race with another one, after
 * which the server rolled it back whole: a deadlock victim (40P01) or a serialization failure
 * (40001). Running the same unit again in a fresh transaction is what PostgreSQL's documentation
 * asks of applications ("Serialization Failure Handling"). Nothing else is retried: a timeout or a
 * lost connection may leave the server busy or the outcome of a COMMIT unknown.
 */
export function retryableConflict(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return code === "40P01" || code === "40001";
}

/** A row referring to one that does not exist (a foreign key), on either dialect. */
export function isForeignKeyViolation(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  // SQLite's extended result code; PostgreSQL's SQLSTATE 23503 (foreign_key_violation).
  return code === "SQLITE_CONSTRAINT_FOREIGNKEY" || code === "23503";
}

/** A duplicate in a unique index or constraint, on either dialect. */
export function isUniqueViolation(err: unknown): boolean {
  if (typeof err !== "object" || err === null) return false;
  const code = (err as { code?: unknown }).code;
  // SQLite's extended result code; PostgreSQL's SQLSTATE 23505 (unique_violation).
  return code === "SQLITE_CONSTRAINT_UNIQUE" || code === "23505";
}

/**
 * A SqlStore over one better-sqlite3 connection (opened by openDatabase: WAL, busy timeout, cached
 * statements). Writes are IMMEDIATE transactions (the write lock is taken up front, so a second
 * process writing meanwhile makes this one wait instead of failing at its first write); reads are
 * deferred transactions, which in WAL mode see one snapshot without blocking writers.
 */
export function sqliteStore(sqlite: Database.Database): SqlStore {
  let store = sqliteStores.get(sqlite);
  if (!store) {
    sqliteStores.set(sqlite, (store = newSqliteStore(sqlite)));
    storeConnections.set(store, sqlite);
  }
  return store;
}

/**
 * The drizzle handle behind a SQLite store, for SQLite-only machinery that must answer within the
 * call (the rate limiter's DatabaseBudget; on PostgreSQL the asynchronous PostgresBudget takes its
 * place). `what` names that machinery in the error thrown for any other store.
 */
export function sqliteDbOf(store: SqlStore, what: string): Db {
  const sqlite = storeConnections.get(store);
  const db = sqlite && handleOf(sqlite);
  if (!db) throw new Error(`${what} runs on a SQLite store only (this one is ${store.dialect})`);
  return db;
}
const storeConnections = new WeakMap<SqlStore, Database.Database>();

/**
 * The SQLite connection behind a store made by sqliteStore, for machinery that exists only on SQLite
 * (group commit, the read pool's fold function); undefined for any other store.
 */
export function sqliteConnectionOf(store: SqlStore): Database.Database | undefined {
  return storeConnections.get(store);
}

/** One store per connection, so code handed the connection (a test, a thread) and code handed the store share it. */
const sqliteStores = new WeakMap<Database.Database, SqlStore>();

function newSqliteStore(sqlite: Database.Database): SqlStore {
  // One writer at a time: SQLite has no deadlocks between transactions, so nothing is retried here.
  const unit = <T>(begin: string, work: StoreUnit<T>): Promise<T> => {
    try {
      if (sqlite.inTransaction) throw new NestedUnitOfWork();
      sqlite.prepare(begin).run();
      let value: T;
      try {
        value = runSync(sqlite, opOf(work));
      } catch (error) {
        if (sqlite.inTransaction) sqlite.prepare("ROLLBACK").run();
        throw error;
      }
      sqlite.prepare("COMMIT").run();
      return Promise.resolve(value);
    } catch (error) {
      return Promise.reject(error);
    }
  };
  return {
    dialect: "sqlite",
    read: (op) => unit("BEGIN", op),
    readCommitted: (op) => unit("BEGIN", op),
    write: (op) => unit("BEGIN IMMEDIATE", op),
    close: async () => {
      sqlite.close();
    },
  };
}

export interface PostgresStoreOptions {
  /** Connections in this instance's pool (node-postgres Pool `max`). Default 10. */
  poolSize?: number;
  /** Shown in pg_stat_activity. */
  applicationName?: string;
  /** Longest a unit of work may wait for a free connection, in ms. Default 10 s. */
  connectTimeoutMs?: number;
  /**
   * Runs of a unit given as a factory, at most, when it keeps losing deadlocks or serialization
   * checks (default 3: the first and two retries). After the last, the failure reaches the caller
   * (SCIM answers 503 with Retry-After).
   */
  conflictAttempts?: number;
  /** Told of each retry (log it at warn: it shows contention between writers). */
  onConflictRetry?: (event: ConflictRetry) => void;
}

/** A unit of work that lost a deadlock or serialization check and is about to run again. */
export interface ConflictRetry {
  /** SQLSTATE: 40P01 (deadlock) or 40001 (serialization failure). */
  code: string;
  /** The attempt that failed, from 1. */
  attempt: number;
  /** The pause before the next attempt, in ms. */
  delayMs: number;
  /** Whether the unit was a write. */
  write: boolean;
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
    types: sqliteShapedTypes,
    options: "-c synchronous_commit=on",
  });
  // An idle client whose server went away emits 'error' on the pool; unhandled, that would end the
  // process. The next checkout gets a fresh connection, so it only needs to be seen.
  pool.on("error", () => {});
  const attempts = Math.max(1, options.conflictAttempts ?? 3);
  const unit = async <T>(begin: string, work: StoreUnit<T>): Promise<T> => {
    if (typeof work !== "function") return pgUnit(pool, begin, work);
    for (let attempt = 1; ; attempt++) {
      try {
        // A fresh op and a fresh transaction each time; pgUnit rolled the failed one back.
        return await pgUnit(pool, begin, work());
      } catch (error) {
        if (attempt >= attempts || !retryableConflict(error)) throw error;
        const delayMs = conflictBackoffMs(attempt);
        options.onConflictRetry?.({
          code: (error as { code: string }).code,
          attempt,
          delayMs,
          write: !begin.includes("READ ONLY"),
        });
        await new Promise((resolve) => setTimeout(resolve, delayMs));
      }
    }
  };
  const store: SqlStore = {
    dialect: "postgres",
    read: (op) => unit("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", op),
    readCommitted: (op) => pgUnit(pool, undefined, opOf(op)),
    write: (op) => unit("BEGIN", op),
    close: () => pool.end(),
  };
  pools.set(store, pool);
  return store;
}

/**
 * Short and jittered ("full jitter"), so that the two sides of a deadlock do not meet again in
 * step: up to 20 ms after the first failure, 40 ms after the second, …, capped at 200 ms.
 */
const conflictBackoffMs = (attempt: number): number =>
  Math.round(Math.random() * Math.min(200, 20 * 2 ** (attempt - 1)));

const pools = new WeakMap<SqlStore, pg.Pool>();
/**
 * The pool behind a PostgreSQL store, for the PostgreSQL-only parts that manage their own
 * transactions (the job queue's claims, the shared rate budget); undefined for a SQLite store.
 */
export const postgresPoolOf = (store: SqlStore): pg.Pool | undefined => pools.get(store);

/**
 * Runs `work` in one transaction (opened by `begin`) on a connection of `pool`: committed when it
 * resolves, rolled back when it throws. A connection that could not roll back, or whose COMMIT failed
 * on a dead socket, is discarded rather than handed to the next caller in an unknown state.
 */
export function pgTransaction<T>(
  pool: pg.Pool,
  begin: string | null,
  work: (client: pg.PoolClient) => Promise<T>,
): Promise<T> {
  return onConnection(pool, async (client, discard) => {
    // null: `work` sends the BEGIN itself, with its first statement.
    if (begin !== null) await client.query(begin);
    let value: T;
    try {
      value = await work(client);
    } catch (error) {
      await client.query("ROLLBACK").catch(discard);
      throw error;
    }
    await client.query("COMMIT");
    return value;
  });
}

/**
 * Runs `work` on a connection of `pool` and hands it back, unless it failed as a connection (or
 * `work` called `discard`: a ROLLBACK that failed), in which case it is dropped rather than given
 * to the next caller in an unknown state.
 */
async function onConnection<T>(
  pool: pg.Pool,
  work: (client: pg.PoolClient, discard: () => void) => Promise<T>,
): Promise<T> {
  const client = await pool.connect();
  let broken = false;
  try {
    return await work(client, () => {
      broken = true;
    });
  } catch (error) {
    if (!broken) broken = isConnectionError(error);
    throw error;
  } finally {
    client.release(broken);
  }
}

/**
 * Runs `op` as one transaction on a connection of `pool`, opened by `begin` (BEGIN and its options),
 * in as few round trips as the op allows: the BEGIN goes with the op's first statement, and the
 * writes the op hands over with `later` are held and sent together, before its next statement or
 * with the COMMIT. Such combined texts go as one simple query, parameters inlined as quoted literals
 * (inlineParams); every other statement is a prepared one of its own. A unit whose COMMIT went with
 * its last writes is as durable as any: the server answers only once the COMMIT is flushed.
 *
 * A statement that fails is thrown into the op (which may handle it: a savepoint, a unique
 * violation); a held write that fails fails the unit. Either way, the transaction is rolled back.
 */
/** The last statement's result of a simple query (node-postgres answers one of several with an array). */
export const lastResult = <R extends pg.QueryResultRow>(
  r: pg.QueryResult<R> | pg.QueryResult<R>[],
): pg.QueryResult<R> => (Array.isArray(r) ? r.at(-1)! : r);

export function pgUnit<T>(pool: pg.Pool, begin: string | undefined, op: StoreOp<T>): Promise<T> {
  return onConnection(pool, async (client, discard) => {
    // Texts not sent yet, in order: the BEGIN, then held writes.
    const held: string[] = begin === undefined ? [] : [begin];
    let sent = false;
    /** Sends the held texts, plus `last` if given, as one simple query; every statement's result. */
    const flushAll = async (last?: string): Promise<pg.QueryResult | pg.QueryResult[]> => {
      const texts = last === undefined ? held.splice(0) : [...held.splice(0), last];
      sent = true;
      return (await client.query({ text: texts.join(";\n"), types: sqliteShapedTypes })) as
        pg.QueryResult | pg.QueryResult[];
    };
    /** flushAll, and the last statement's result. */
    const flush = async (last?: string): Promise<pg.QueryResult> => lastResult(await flushAll(last));
    try {
      let step = op.next();
      while (!step.done) {
        const s = step.value;
        if (s.kind === "later") {
          held.push(inlineParams(s.text, s.params));
          step = op.next(undefined);
          continue;
        }
        if (s.kind !== "dialect" && held.length > 0) {
          // Held writes are flushed on their own before a statement the op reads or handles, so that
          // a failure of theirs is never thrown into the op as that statement's; only a BEGIN rides along.
          if (held.length > (begin === undefined || sent ? 0 : 1))
            await flush().catch((error: unknown) => {
              throw endedBy(op, error);
            });
          else {
            let result: unknown;
            try {
              result =
                s.kind === "together"
                  ? togetherResults(s.statements!, await flushAll(togetherText(s.statements!)))
                  : shapeResult(s, await flush(inlineParams(s.text, s.params)));
            } catch (error) {
              step = op.throw(error);
              continue;
            }
            step = op.next(result);
            continue;
          }
        }
        let result: unknown;
        try {
          result = await runOnClient(client, singleStatement(s));
        } catch (error) {
          step = op.throw(error);
          continue;
        }
        step = op.next(result);
      }
      if (begin === undefined) {
        if (held.length > 0) await flush();
      } else if (sent || held.length > 1) {
        // The last held writes go with the COMMIT (an op of no statement sent nothing at all).
        await flush("COMMIT");
      }
      return step.value;
    } catch (error) {
      if (sent && begin !== undefined) await client.query("ROLLBACK").catch(discard);
      throw error;
    }
  });
}

/** An op of the one statement `s`, to run it through runOnClient (a prepared statement of its own). */
function* singleStatement(s: Statement): StoreOp<unknown> {
  return yield s;
}

const isConnectionError = (error: unknown): boolean => {
  const code = (error as { code?: unknown } | null)?.code;
  // Class 08 (connection exception) and 57P01 (admin shutdown), or a socket error from node.
  return typeof code === "string" && (code.startsWith("08") || code === "57P01" || code.startsWith("E"));
};
