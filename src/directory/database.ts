import { mkdirSync } from "node:fs";
import { createRequire } from "node:module";
import { Worker } from "node:worker_threads";
import { dirname, join, resolve } from "node:path";
import Database from "better-sqlite3";
import { drizzle, type BetterSQLite3Database } from "drizzle-orm/better-sqlite3";
import { migrate } from "drizzle-orm/better-sqlite3/migrator";
import * as schema from "../../db/schema.js";
import { packageRoot } from "../paths.js";
import { registerFold } from "./fold.js";

export type Db = BetterSQLite3Database<typeof schema>;
/** A drizzle transaction handle; store functions take `Db | Tx` so callers can compose one transaction. */
export type Tx = Parameters<Parameters<Db["transaction"]>[0]>[0];
export type DbOrTx = Db | Tx;

export interface OpenDatabase {
  db: Db;
  sqlite: Database.Database;
  close(): void;
}

/** Parses DATABASE_URL: `sqlite:<path>` or `sqlite::memory:`. */
export function sqlitePathFromUrl(url: string): string {
  if (!url.startsWith("sqlite:")) {
    throw new Error(
      `DATABASE_URL must start with "sqlite:" (PostgreSQL is not supported yet); got "${url.split(":")[0]}:"`,
    );
  }
  const path = url.slice("sqlite:".length);
  if (path === "") throw new Error('DATABASE_URL "sqlite:" needs a path, e.g. sqlite:./data/bridge.db');
  return path.startsWith("//") ? path.slice(2) : path;
}

export interface OpenOptions {
  /**
   * "full" (default): every commit is fsynced, so an acknowledged SCIM write survives power loss
   * (docs/design.md, invariant 1). "normal": commits survive a process crash but the last ones may
   * roll back on power loss; only for the sync worker's own bookkeeping (applied state, job
   * outcomes), where a lost write just re-runs an idempotent reconcile.
   */
  durability?: "full" | "normal";
  /**
   * true (default): a commit that grows the WAL past 1,000 pages checkpoints it itself, inside the
   * commit. false: never; `serve` runs startBackgroundCheckpoints() instead, so that no SCIM write
   * waits for a checkpoint. Only for a process that runs the background checkpointer.
   */
  autoCheckpoint?: boolean;
  /**
   * SQLite's page cache of this connection, in MiB (PRAGMA cache_size): the only part of the
   * database held in process memory, so memory stays flat however large the directory grows; pages
   * beyond it are read from the operating system's file cache. Default defaultCacheMiB.
   */
  cacheMiB?: number;
  /**
   * Bytes of the database file mapped into memory (PRAGMA mmap_size), in MiB. Default 0: reads go
   * through the page cache only. Mapping saves a copy per page read, but every mapped page read counts
   * in the process's resident memory (shared with the file cache, reclaimable), up to this size.
   */
  mmapMiB?: number;
}

/** Page cache per connection by default, in MiB (SQLite's own default is 2 MiB). */
export const defaultCacheMiB = 32;

/** Statements kept per connection; filters make many SQL shapes, so the oldest beyond this go. */
const maxCachedStatements = 1000;

/** The driver's own prepare, kept beside the caching one for statements that must not be shared. */
const uncachedPrepare = new WeakMap<Database.Database, Database.Database["prepare"]>();

/** A statement of the caller's own, outside the shared cache (so no other user can change its mode). */
export function prepareOwn(sqlite: Database.Database, source: string): Database.Statement {
  return (uncachedPrepare.get(sqlite) ?? sqlite.prepare.bind(sqlite))(source);
}

/**
 * Makes `prepare` return a cached statement for SQL it has prepared before. drizzle prepares anew on
 * every query it runs, and preparing (parsing and planning the SQL) cost more CPU than running the
 * query on the hot paths. A statement handed out again starts in plain row mode, whatever raw() or
 * pluck() an earlier user left set (reset only when one was set: two native calls per query
 * otherwise). Statements are only ever run to completion (never iterate()d), so sharing one is safe
 * on this single-threaded connection.
 */
function cacheStatements(sqlite: Database.Database): void {
  const prepare = sqlite.prepare.bind(sqlite);
  uncachedPrepare.set(sqlite, prepare);
  const cache = new Map<string, Database.Statement>();
  const moded = new WeakSet<Database.Statement>();
  sqlite.prepare = ((source: string) => {
    let statement = cache.get(source);
    if (statement) {
      if (moded.has(statement)) {
        statement.raw(false).pluck(false);
        moded.delete(statement);
      }
      return statement;
    }
    statement = prepare(source);
    if (statement.reader) {
      const s = statement;
      const raw = s.raw.bind(s);
      const pluck = s.pluck.bind(s);
      // The driver tells "no argument" (on) from undefined (an error): pass on exactly what was given.
      s.raw = (...on: [boolean?]) => (on[0] !== false && moded.add(s), raw(...on));
      s.pluck = (...on: [boolean?]) => (on[0] !== false && moded.add(s), pluck(...on));
    }
    if (cache.size >= maxCachedStatements) cache.delete(cache.keys().next().value!);
    cache.set(source, statement);
    return statement;
  }) as Database.Database["prepare"];
}

/**
 * Triggers behind credential_epochs (see db/schema.ts): any change that can end a SCIM token's
 * validity, by any process and through any path (cascades from a deleted directory or organization
 * included), moves the counter that token caches compare. Idempotent, so every open runs it.
 */
const credentialTriggers = `
INSERT OR IGNORE INTO credential_epochs (name, epoch) VALUES ('scim_tokens', 0);
CREATE TRIGGER IF NOT EXISTS scim_tokens_epoch_on_update AFTER UPDATE OF token_hash, directory_id, expires_at, revoked_at ON scim_tokens
  BEGIN UPDATE credential_epochs SET epoch = epoch + 1 WHERE name = 'scim_tokens'; END;
CREATE TRIGGER IF NOT EXISTS scim_tokens_epoch_on_delete AFTER DELETE ON scim_tokens
  BEGIN UPDATE credential_epochs SET epoch = epoch + 1 WHERE name = 'scim_tokens'; END;
`;

/**
 * Rows written before case folding was Unicode-aware (NFC, then lower case, final sigma as σ) hold
 * ASCII-only folded columns: "Élodie" folded to "Élodie", and `eq "élodie"` missed it through the
 * index. Refolds them once, marked by PRAGMA user_version. Only rows with a character outside
 * printable ASCII can differ, so the GLOB keeps scim_fold (a call into JavaScript) off the rest. A
 * userName whose refolded form another live user of the directory already holds keeps its old value
 * (OR IGNORE): refusing to start over it would be worse, and both users stay reachable by exact case.
 */
const foldBackfillVersion = 1;
const foldBackfill = `
UPDATE OR IGNORE users SET user_name_lower = scim_fold(user_name)
  WHERE user_name GLOB '*[^ -~]*' AND user_name_lower IS NOT scim_fold(user_name);
UPDATE groups SET display_name_lower = scim_fold(display_name)
  WHERE display_name GLOB '*[^ -~]*' AND display_name_lower IS NOT scim_fold(display_name);
UPDATE user_emails SET value_lower = scim_fold(e.value)
  FROM (SELECT ue.user_id, ue.position, json_extract(u.resource, '$.emails[' || ue.position || '].value') AS value
        FROM user_emails ue JOIN users u ON u.id = ue.user_id) e
  WHERE e.user_id = user_emails.user_id AND e.position = user_emails.position
    AND e.value GLOB '*[^ -~]*' AND user_emails.value_lower IS NOT scim_fold(e.value);
`;

function backfillFolding(sqlite: Database.Database): void {
  if ((sqlite.pragma("user_version", { simple: true }) as number) >= foldBackfillVersion) return;
  sqlite
    .transaction(() => {
      sqlite.exec(foldBackfill);
      sqlite.pragma(`user_version = ${foldBackfillVersion}`);
    })
    .immediate();
}

/** Opens the database (WAL, foreign keys, busy timeout) and applies pending migrations. */
export function openDatabase(url: string, options: OpenOptions = {}): OpenDatabase {
  const path = sqlitePathFromUrl(url);
  if (path !== ":memory:") mkdirSync(dirname(resolve(path)), { recursive: true });
  const sqlite = new Database(path);
  cacheStatements(sqlite);
  sqlite.pragma("journal_mode = WAL");
  sqlite.pragma(`synchronous = ${options.durability === "normal" ? "NORMAL" : "FULL"}`);
  sqlite.pragma("foreign_keys = ON");
  // Negative cache_size is in KiB (SQLite documentation, PRAGMA cache_size).
  sqlite.pragma(`cache_size = ${-Math.round((options.cacheMiB ?? defaultCacheMiB) * 1024)}`);
  sqlite.pragma(`mmap_size = ${Math.round((options.mmapMiB ?? 0) * 1024 * 1024)}`);
  if (options.autoCheckpoint === false) sqlite.pragma("wal_autocheckpoint = 0");
  // Concurrent processes (CLI beside a running server) wait instead of failing with SQLITE_BUSY.
  sqlite.pragma("busy_timeout = 5000");
  const db = drizzle(sqlite, { schema });
  // Every transaction here reads, then writes. A DEFERRED one that another process (the CLI beside
  // the server, a second worker) wrote under in the meantime fails with SQLITE_BUSY at its first
  // write, and busy_timeout cannot help; IMMEDIATE takes the write lock up front and waits instead.
  const deferred = db.transaction.bind(db);
  db.transaction = ((fn, config) => deferred(fn, { behavior: "immediate", ...config })) as Db["transaction"];
  migrate(db, { migrationsFolder: join(packageRoot, "db", "sqlite") });
  sqlite.transaction(() => sqlite.exec(credentialTriggers)).immediate();
  // Every connection can evaluate scim_fold (filters, the backfill below).
  registerFold(sqlite);
  backfillFolding(sqlite);
  handles.set(sqlite, db);
  return { db, sqlite, close: () => sqlite.close() };
}

const handles = new WeakMap<Database.Database, Db>();
/** The drizzle handle openDatabase made for this connection. */
export const handleOf = (sqlite: Database.Database): Db | undefined => handles.get(sqlite);

/**
 * Checkpoints the WAL from a worker thread with a connection of its own, every `intervalMs`, so that
 * the copy of committed pages into the database file (and its fsync) never runs inside a SCIM
 * write's commit or on the event loop. PASSIVE checkpoints neither wait for nor block readers and
 * writers; SQLite restarts the WAL from its beginning once a checkpoint has caught up. A failed
 * checkpoint is reported through `onError` (the WAL keeps growing until one succeeds). `stop()` ends
 * the thread after a last checkpoint.
 */
export function startBackgroundCheckpoints(
  url: string,
  onError: (message: string) => void,
  intervalMs = 200,
): { stop(): Promise<void> } {
  const path = sqlitePathFromUrl(url);
  if (path === ":memory:") return { stop: async () => undefined };
  // The thread's code is plain CommonJS evaluated as a string, so the same file works from src/ under
  // tsx and from dist/; it loads the driver by the path this module resolves.
  const code = `
    const { parentPort, workerData } = require("node:worker_threads");
    const Database = require(workerData.driver);
    const db = new Database(workerData.path);
    db.pragma("busy_timeout = 5000");
    const checkpoint = () => { try { db.pragma("wal_checkpoint(PASSIVE)"); } catch (err) { parentPort.postMessage({ error: String(err && err.message || err) }); } };
    const timer = setInterval(checkpoint, workerData.intervalMs);
    parentPort.on("message", () => { clearInterval(timer); checkpoint(); db.close(); parentPort.close(); });
  `;
  const driver = createRequire(import.meta.url).resolve("better-sqlite3");
  const worker = new Worker(code, { eval: true, workerData: { driver, path: resolve(path), intervalMs } });
  let exited = false;
  const exit = new Promise<void>((done) => worker.once("exit", () => ((exited = true), done())));
  worker.on("message", (m: { error?: string }) => m.error && onError(m.error));
  worker.on("error", (err) => onError(err.message));
  worker.unref();
  return {
    stop: async () => {
      if (exited) return;
      worker.ref(); // the caller waits for it: keep the process alive until it is done
      worker.postMessage("stop");
      // A last checkpoint normally takes milliseconds; never let it hold up a shutdown.
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([exit, new Promise((r) => (timer = setTimeout(r, 5_000)))]);
      clearTimeout(timer);
    },
  };
}

/**
 * A read-only connection to a database another connection has opened and migrated (the SCIM read
 * pool's workers, docs/design.md "Concurrency"). In WAL mode readers never block the writer nor each
 * other, and each read transaction sees every commit that finished before it began. No migrations,
 * no triggers: only the statement cache and scim_fold, which filters call.
 */
export function openReadConnection(url: string, options: Pick<OpenOptions, "cacheMiB" | "mmapMiB"> = {}): OpenDatabase {
  const path = sqlitePathFromUrl(url);
  const sqlite = new Database(path, { readonly: true, fileMustExist: true });
  cacheStatements(sqlite);
  // The same memory bounds as every other connection of the process (see OpenOptions).
  sqlite.pragma(`cache_size = ${-Math.round((options.cacheMiB ?? defaultCacheMiB) * 1024)}`);
  sqlite.pragma(`mmap_size = ${Math.round((options.mmapMiB ?? 0) * 1024 * 1024)}`);
  sqlite.pragma("busy_timeout = 5000");
  registerFold(sqlite);
  const db = drizzle(sqlite, { schema });
  return { db, sqlite, close: () => sqlite.close() };
}
