/**
 * Reads and writes for sync tests, through the store ops both dialects run (src/directory/store-op.ts):
 * the same SQL with `?` placeholders on SQLite and PostgreSQL, rows in SQLite's shape (int8 as a
 * number, booleans as 1/0). Each call is one unit of work of its own.
 */
import { afterAll, afterEach } from "vitest";
import { openDatabase, type OpenDatabase } from "../../src/directory/database.js";
import { migratePostgres } from "../../src/directory/postgres.js";
import { postgresPoolOf, postgresStore, sqliteStore, type SqlStore } from "../../src/directory/sql.js";
import { exec, many, one, value, type SqlParam } from "../../src/directory/store-op.js";
import { pgJobQueue, pgJobWakeups } from "../../src/sync/pg-job-queue.js";
import { backoffMs, sqliteJobQueue, type Worker, type WorkerOptions } from "../../src/sync/worker.js";
import { createTestDatabase, testDialect } from "../support/test-dialect.js";

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

/** A migrated store on a new database of this run's dialect (test/support/test-dialect.ts). */
export async function openTestStore(): Promise<{ store: SqlStore; close(): Promise<void> }> {
  const database = await createTestDatabase();
  let store: SqlStore;
  if (database.dialect === "postgres") {
    await migratePostgres(database.url);
    store = postgresStore(database.url, { poolSize: 4 });
  } else {
    store = sqliteStore(openDatabase(database.url).sqlite);
  }
  return {
    store,
    async close() {
      await store.close();
      await database.remove();
    },
  };
}

/**
 * The job queue and wake-ups the engine gives the worker on this store's dialect (src/sync/engine.ts):
 * the SQLite queue, or PostgreSQL's outbox (which takes the attempt limit and the backoff itself)
 * with the job channel's listener.
 */
export function workerQueueOf(
  store: SqlStore,
  options: Pick<WorkerOptions, "maxAttempts" | "backoff" | "random"> = {},
): Pick<WorkerOptions, "queue" | "wakeups"> {
  const pool = postgresPoolOf(store);
  if (!pool) return { queue: sqliteJobQueue(store) };
  return {
    queue: pgJobQueue(pool, store, {
      ...(options.maxAttempts === undefined ? {} : { maxAttempts: options.maxAttempts }),
      backoffMs: (attempt, lane) => backoffMs(attempt, lane, options.random ?? Math.random, options.backoff),
    }),
    wakeups: pgJobWakeups(pool),
  };
}

/**
 * A store a test for worker tests, on the run's dialect: a fresh in-memory SQLite database each, or
 * on PostgreSQL one database for the file (a new one per test would cost a CREATE DATABASE each),
 * its jobs emptied per test. Workers handed to `track` are stopped after each test. Call at the top
 * level of a test file: it registers the hooks.
 */
export function workerTestStores(): { store: () => Promise<SqlStore>; track: (worker: Worker) => Worker } {
  let opened: OpenDatabase[] = [];
  let workers: Worker[] = [];
  let shared: Awaited<ReturnType<typeof openTestStore>> | undefined;
  afterEach(async () => {
    for (const w of workers) await w.stop(1000);
    for (const o of opened) o.close();
    opened = [];
    workers = [];
  });
  afterAll(async () => {
    await shared?.close();
  });
  return {
    store: async () => {
      if (testDialect === "sqlite") {
        const o = openDatabase("sqlite::memory:");
        opened.push(o);
        return sqliteStore(o.sqlite);
      }
      shared ??= await openTestStore();
      await sqlExec(shared.store, "DELETE FROM jobs");
      return shared.store;
    },
    track: (worker) => {
      workers.push(worker);
      return worker;
    },
  };
}
