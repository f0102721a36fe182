import type Database from "better-sqlite3";
import pg from "pg";

const pgTypes = pg.types;
import { prepareOwn, type DbOrTx } from "./database.js";
import { connectionOf } from "./statements.js";

/**
 * Store work written once for both dialects. A `StoreOp<T>` is a generator that yields the
 * statements it needs and receives their results; a driver runs it:
 *
 * - on SQLite synchronously (`runSync`), every statement a cached prepared statement of the one
 *   connection. A SQLite transaction therefore never spans an `await`: nothing else of the process
 *   can run inside it, and group commit can run many writes in one synchronous call;
 * - on PostgreSQL asynchronously (`runOnClient`), one round trip a statement, on the transaction's
 *   pooled connection.
 *
 * This is the shape Babel's gensync uses for code that must run both synchronously and
 * asynchronously. Ops compose with `yield*`: `const row = yield* one<Row>(sql, [id])`,
 * `yield* recordAudit(entry)`.
 *
 * Rules for writing one (both dialects must give the same rows; test/postgres runs ops on both):
 * - `?` placeholders only; column aliases double-quoted to keep their case (`user_name AS "userName"`).
 * - Rows arrive in SQLite's shape on both: int8 as a number, booleans as 1/0, JSON as its text.
 * - A statement that fails throws into the op. On PostgreSQL a failed statement aborts the whole
 *   transaction, so an op that catches an error and goes on issuing statements must run the failing
 *   part inside `savepoint(...)`; catching only to rethrow a different error needs nothing.
 * - Where the dialects' SQL differs, branch on `yield* dialect()` (see `jsonTextList`).
 */
export type Dialect = "sqlite" | "postgres";
export type SqlParam = string | number | boolean | null;

export interface Statement {
  readonly kind: "one" | "many" | "value" | "exec" | "later" | "dialect" | "together";
  readonly text: string;
  readonly params: readonly SqlParam[];
  /** For "together": the reads to send at once (each "one", "many" or "value"). */
  readonly statements?: readonly Statement[];
}

export type StoreOp<T> = Generator<Statement, T, unknown>;

const none: readonly SqlParam[] = [];

/** The first row the query returns, or undefined. */
export function* one<T>(text: string, params: readonly SqlParam[] = none): StoreOp<T | undefined> {
  return (yield { kind: "one", text, params }) as T | undefined;
}

/** Every row the query returns. */
export function* many<T>(text: string, params: readonly SqlParam[] = none): StoreOp<T[]> {
  return (yield { kind: "many", text, params }) as T[];
}

/**
 * The first column of the first row the query returns, or undefined when it returns none. For a
 * single value read very often (a counter on every request): on SQLite it makes no row object.
 */
export function* value<T>(text: string, params: readonly SqlParam[] = none): StoreOp<T | undefined> {
  return (yield { kind: "value", text, params }) as T | undefined;
}

/** Runs a statement that returns no rows; gives the number of rows it changed. */
export function* exec(text: string, params: readonly SqlParam[] = none): StoreOp<number> {
  return (yield { kind: "exec", text, params }) as number;
}

/**
 * A write whose outcome the op neither reads nor handles (an audit entry, a job, the directory's
 * generation): the driver may hold it and send it with what follows. It still runs after every
 * statement before it and before any statement after it, in the op's transaction, and its failure
 * fails the whole unit (it is never thrown into the op, which could mistake it for a failure of a
 * statement it does handle). SQLite runs it at once; PostgreSQL sends the held writes of a unit
 * together, the last ones with its COMMIT, one round trip for all (pgUnit in ./sql.ts).
 */
export function* later(text: string, params: readonly SqlParam[] = none): StoreOp<void> {
  yield { kind: "later", text, params };
}

/**
 * Reads that do not depend on each other's results, sent at once: `const [a, b] = yield* together(
 * many(…), one(…))`. Each op must be a single `one`, `many` or `value`. SQLite runs them in turn;
 * PostgreSQL sends them as one simple query (parameters inlined, as for held writes), with the unit's
 * BEGIN when it has not gone yet: one round trip instead of one each. Such texts are planned at each
 * run, so keep this for reads whose round trips cost more than their planning (the worker's per-user
 * loads). If one fails, the error is thrown here, for the whole group.
 */
export function* together<T extends unknown[]>(...ops: { [K in keyof T]: StoreOp<T[K]> }): StoreOp<T> {
  const statements = ops.map((op) => {
    const step = op.next();
    if (step.done || !isRead(step.value)) throw new Error("together() takes single reads: one, many or value");
    return step.value;
  });
  const results = (yield { kind: "together", text: "", params: none, statements }) as unknown[];
  return ops.map((op, i) => {
    const step = op.next(results[i]);
    if (!step.done) throw new Error("together() takes single reads: one, many or value");
    return step.value;
  }) as T;
}
const isRead = (s: Statement): boolean => s.kind === "one" || s.kind === "many" || s.kind === "value";

/** The dialect the op runs on, for the few statements whose SQL differs. */
export function* dialect(): StoreOp<Dialect> {
  return (yield { kind: "dialect", text: "", params: none }) as Dialect;
}

let savepoints = 0;

/**
 * Runs `op` inside a savepoint: when it throws, only its own changes are undone and the enclosing
 * transaction stays usable (on PostgreSQL, where a failed statement otherwise aborts it), then the
 * error is rethrown for the caller to handle.
 */
export function* savepoint<T>(op: StoreOp<T>): StoreOp<T> {
  const name = `op_${++savepoints % 1_000_000}`;
  yield* exec(`SAVEPOINT ${name}`);
  let value: T;
  try {
    value = yield* op;
  } catch (error) {
    yield* exec(`ROLLBACK TO SAVEPOINT ${name}`);
    yield* exec(`RELEASE SAVEPOINT ${name}`);
    throw error;
  }
  yield* exec(`RELEASE SAVEPOINT ${name}`);
  return value;
}

/**
 * A list of strings bound as one parameter (a JSON array), as a subquery of one text column named
 * `value`: `WHERE id IN (${yield* jsonTextList()})` with `JSON.stringify(ids)` as its parameter. One
 * statement text whatever the list's length, so it stays cached.
 */
export function* jsonTextList(): StoreOp<string> {
  return yield* jsonList("text");
}

/**
 * jsonTextList of `type`. On PostgreSQL the elements pass through an array: its planner takes a
 * set-returning function for 100 rows and then joined a one-user lookup by hashing a whole table
 * (a sequential scan of a big group's memberships for every synced user, 20 times the cost), while it
 * takes the unnest of an array it cannot see for 10, and probes the index.
 */
export function* jsonList(type: "text" | "bigint"): StoreOp<string> {
  if ((yield* dialect()) === "sqlite") return "SELECT value FROM json_each(?)";
  const element =
    type === "text"
      ? "json_array_elements_text(CAST(? AS json))"
      : `CAST(json_array_elements_text(CAST(? AS json)) AS ${type})`;
  return `SELECT unnest(ARRAY(SELECT ${element})) AS value`;
}

/**
 * The lock clause for a read the op will write back (read, then write a counter, a version, a list):
 * `FOR UPDATE` on PostgreSQL, where concurrent transactions would otherwise both read the old value;
 * nothing on SQLite, whose write transactions already run one at a time (BEGIN IMMEDIATE).
 */
export function* forUpdate(): StoreOp<string> {
  return (yield* dialect()) === "postgres" ? "FOR UPDATE" : "";
}

// better-sqlite3 refuses JavaScript booleans; SQLite stores them as 1/0 anyway.
const sqliteParams = (params: readonly SqlParam[]): unknown[] =>
  params.map((p) => (p === true ? 1 : p === false ? 0 : p));

const isConnection = (db: DbOrTx | Database.Database): db is Database.Database =>
  typeof (db as Database.Database).prepare === "function";

/** Statements in pluck mode, per connection: their own (prepareOwn), as the shared cache resets modes. */
const plucked = new WeakMap<Database.Database, Map<string, Database.Statement>>();
function pluckedStatement(sqlite: Database.Database, text: string): Database.Statement {
  let statements = plucked.get(sqlite);
  if (!statements) plucked.set(sqlite, (statements = new Map()));
  let statement = statements.get(text);
  if (!statement) statements.set(text, (statement = prepareOwn(sqlite, text).pluck()));
  return statement;
}

function runSqlite(sqlite: Database.Database, s: Statement): unknown {
  switch (s.kind) {
    case "value": {
      const statement = pluckedStatement(sqlite, s.text);
      // A native call with spread arguments is slower even when there are none.
      return s.params.length === 0 ? statement.get() : statement.get(...sqliteParams(s.params));
    }
    case "one":
      return sqlite.prepare(s.text).get(...sqliteParams(s.params));
    case "many":
      return sqlite.prepare(s.text).all(...sqliteParams(s.params));
    case "exec":
      return sqlite.prepare(s.text).run(...sqliteParams(s.params)).changes;
    case "later":
      sqlite.prepare(s.text).run(...sqliteParams(s.params));
      return undefined;
    case "dialect":
      return "sqlite";
    case "together":
      return s.statements!.map((read) => runSqlite(sqlite, read));
  }
}

/**
 * Runs `op` on a SQLite connection (or drizzle handle over one), synchronously, inside whatever
 * transaction the connection has open; it opens none itself.
 */
export function runSync<T>(db: DbOrTx | Database.Database, op: StoreOp<T>): T {
  const sqlite = isConnection(db) ? db : connectionOf(db);
  let step = op.next();
  while (!step.done) {
    let result: unknown;
    try {
      result = runSqlite(sqlite, step.value);
    } catch (error) {
      if (step.value.kind === "later") throw endedBy(op, error);
      step = op.throw(error);
      continue;
    }
    step = op.next(result);
  }
  return step.value;
}

/** A held write failed: the op is ended (its finally blocks run) without seeing the error, which fails the unit. */
export function endedBy(op: StoreOp<unknown>, error: unknown): unknown {
  op.return(undefined);
  return error;
}

/**
 * Runs `op` as one IMMEDIATE write transaction on the SQLite connection behind `db`, or inside the
 * transaction already open on it. For callers that are still synchronous; a caller that can await
 * uses `SqlStore.write`, which does the same on SQLite and also runs on PostgreSQL.
 */
export function writeSync<T>(db: DbOrTx, op: StoreOp<T>): T {
  const sqlite = connectionOf(db);
  if (sqlite.inTransaction) return runSync(sqlite, op);
  return sqlite.transaction(() => runSync(sqlite, op)).immediate();
}

/**
 * Rows in SQLite's shape, given per query (never node-postgres's global parsers, and whatever the
 * pool was configured with): int8 as a number (every int8 here is epoch milliseconds or a counter,
 * far below 2^53) and booleans as 1/0.
 */
export const sqliteShapedTypes: pg.CustomTypesConfig = {
  getTypeParser: ((oid: number, format?: "text" | "binary") => {
    if (oid === 20) return (value: string) => Number(value); // int8
    if (oid === 16) return (value: string) => (value === "t" ? 1 : 0); // bool
    return pgTypes.getTypeParser(oid, format);
  }) as pg.CustomTypesConfig["getTypeParser"],
};

/** A node-postgres Client, PoolClient or Pool (a Pool runs each statement on whichever connection is free). */
export type PgQueryTarget = Pick<pg.ClientBase, "query"> | Pick<pg.Pool, "query">;

/**
 * The name to run a statement under, or undefined to run it unnamed. A named statement is parsed and
 * planned once per connection and its plan kept (node-postgres "Queries", prepared statements), which
 * for the short statements of a SCIM request is most of the server's work. Store SQL is mostly a
 * fixed set of texts; filters and some admin queries are built per request, so a text gets a name
 * only from its second use, and at most `maxNamed` texts do, so that a stream of one-off texts cannot
 * grow every connection's set of prepared statements without end. Behind PgBouncer in transaction
 * mode this needs PgBouncer 1.21+ with max_prepared_statements set (docs/operating.md).
 */
export function statementName(text: string): string | undefined {
  const name = named.get(text);
  if (name !== undefined) return name;
  if (named.size >= maxNamed) return undefined;
  if (!seenOnce.delete(text)) {
    if (seenOnce.size >= maxNamed) seenOnce.delete(seenOnce.values().next().value!);
    seenOnce.add(text);
    return undefined;
  }
  const fresh = `scim_bridge_${named.size}`;
  named.set(text, fresh);
  return fresh;
}
const maxNamed = 500;
const named = new Map<string, string>();
const seenOnce = new Set<string>();

async function runPostgres(target: PgQueryTarget, s: Statement): Promise<unknown> {
  if (s.kind === "dialect") return "postgres";
  if (s.kind === "together") {
    const reads = s.statements!;
    const results = await (target as pg.ClientBase).query({ text: togetherText(reads), types: sqliteShapedTypes });
    return togetherResults(reads, results);
  }
  const text = toPositional(s.text);
  const name = statementName(text);
  if (s.kind === "value") {
    const result = await (target as pg.ClientBase).query<unknown[]>({
      ...(name ? { name } : {}),
      text,
      values: s.params as unknown[],
      types: sqliteShapedTypes,
      rowMode: "array",
    });
    return result.rows[0]?.[0];
  }
  const result = await (target as pg.ClientBase).query({
    ...(name ? { name } : {}),
    text,
    values: s.params as unknown[],
    types: sqliteShapedTypes,
  });
  if (s.kind === "one") return result.rows[0];
  if (s.kind === "many") return result.rows;
  if (s.kind === "later") return undefined;
  return result.rowCount ?? 0;
}

/** The reads of a "together" as the statements of one simple query. */
export const togetherText = (reads: readonly Statement[]): string =>
  reads.map((r) => inlineParams(r.text, r.params)).join(";\n");

/** What each read of a "together" receives, from the last `reads.length` results of a simple query. */
export function togetherResults(reads: readonly Statement[], results: pg.QueryResult | pg.QueryResult[]): unknown[] {
  const all = Array.isArray(results) ? results : [results];
  const own = all.slice(all.length - reads.length);
  return reads.map((read, i) => shapeResult(read, own[i]!));
}

/** What the op receives for a statement's result, from a simple query's result. */
export function shapeResult(s: Statement, result: pg.QueryResult): unknown {
  switch (s.kind) {
    case "one":
      return result.rows[0];
    case "many":
      return result.rows;
    case "value": {
      const row = result.rows[0] as Record<string, unknown> | undefined;
      return row === undefined ? undefined : row[result.fields[0]!.name];
    }
    default:
      return result.rowCount ?? 0;
  }
}

/**
 * `text` with each `?` placeholder replaced by its parameter as a quoted literal, for statements sent
 * together in one simple query (which takes no parameters). Every value is quoted, numbers and
 * booleans too, which is how node-postgres sends parameters (as text of a type the server infers
 * from the context), so a statement means the same either way. Strings go through node-postgres's
 * escapeLiteral (quotes and backslashes doubled, E'' when a backslash is present), which is safe
 * whatever standard_conforming_strings says.
 */
export function inlineParams(text: string, params: readonly SqlParam[]): string {
  let n = 0;
  const sql = scanPlaceholders(text, () => {
    if (n >= params.length) throw new Error(`statement has more placeholders than its ${params.length} parameters`);
    const p = params[n++]!;
    if (p === null) return "NULL";
    if (typeof p === "number") {
      if (!Number.isFinite(p)) throw new Error(`a parameter is not a finite number: ${p}`);
      return `'${String(p)}'`;
    }
    return pg.escapeLiteral(typeof p === "boolean" ? String(p) : p);
  });
  if (n !== params.length) throw new Error(`statement has ${n} placeholders for ${params.length} parameters`);
  return sql;
}

/** Runs `op` on a PostgreSQL connection, inside whatever transaction it has open; it opens none itself. */
export async function runOnClient<T>(target: PgQueryTarget, op: StoreOp<T>): Promise<T> {
  let step = op.next();
  while (!step.done) {
    let result: unknown;
    try {
      result = await runPostgres(target, step.value);
    } catch (error) {
      if (step.value.kind === "later") throw endedBy(op, error);
      step = op.throw(error);
      continue;
    }
    step = op.next(result);
  }
  return step.value;
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
  let n = 0;
  const out = scanPlaceholders(text, () => `$${++n}`);
  if (positional.size >= maxPositionalCache) positional.delete(positional.keys().next().value!);
  positional.set(text, out);
  return out;
}

/** `text` with each `?` outside '…' strings, "…" identifiers and comments replaced by `replace()`. */
function scanPlaceholders(text: string, replace: () => string): string {
  let out = "";
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
      out += replace();
      i++;
    } else {
      out += c;
      i++;
    }
  }
  return out;
}
