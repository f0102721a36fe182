import type Database from "better-sqlite3";
import { opOf, sqliteConnectionOf, type SqlStore, type StoreUnit } from "./sql.js";
import { runSync, type StoreOp } from "./store-op.js";

/**
 * Group commit for SCIM writes. Writes that arrive in the same turn of the event loop run one after
 * another in ONE IMMEDIATE transaction, each inside its own savepoint (so one request's failure rolls
 * back only its own changes), and the transaction commits, with its fsync (synchronous=FULL), before
 * any of them is answered. A write alone in its turn runs in the transaction without a savepoint.
 * Durability per request is unchanged; the fsync is shared (the reliability
 * notes' "batch in group commits rather than relaxing fsync"). The whole batch is one synchronous
 * call, so no other code of the process (the sync worker, the admin API) can interleave with it.
 *
 * That is SQLite-only machinery (one connection, one writer, ops run synchronously). On PostgreSQL
 * each write is its own transaction (`store.write`): the pool runs them concurrently and the server
 * groups their WAL flushes itself.
 */
export interface WriteQueue {
  /**
   * Runs `op` as one write; resolves once it is durable, rejects with what `op` threw (nothing of it
   * stored). Given a factory, on PostgreSQL a write that lost a deadlock is run again (SqlStore.write).
   */
  run<T>(op: StoreUnit<T>): Promise<T>;
}

/** Group commit on SQLite; on any other store, each write a unit of its own. */
export function createWriteQueue(store: SqlStore): WriteQueue {
  const sqlite = store.dialect === "sqlite" ? sqliteConnectionOf(store) : undefined;
  if (!sqlite) return { run: (op) => store.write(op) };
  return groupCommit(sqlite);
}

interface Pending {
  op: StoreOp<unknown>;
  resolve: (value: unknown) => void;
  reject: (error: unknown) => void;
}

/** Bounds one transaction's length (and so the wait of its first request). */
const maxBatch = 256;

function groupCommit(sqlite: Database.Database): WriteQueue {
  // BEGIN IMMEDIATE, COMMIT and the savepoints as cached statements on the connection.
  const statement = (text: string) => sqlite.prepare(text);
  const pending: Pending[] = [];
  let scheduled = false;

  // A write alone in its turn (a client writing in sequence) needs no savepoint: on failure the whole
  // transaction, which holds only its changes, rolls back. A savepoint copies every page the write
  // first touches into its statement journal, and costs two more statements.
  const flushOne = (item: Pending): void => {
    try {
      statement("BEGIN IMMEDIATE").run();
    } catch (error) {
      item.reject(error);
      return;
    }
    let value: unknown;
    try {
      value = runSync(sqlite, item.op);
    } catch (error) {
      if (sqlite.inTransaction) statement("ROLLBACK").run();
      item.reject(error);
      return;
    }
    try {
      statement("COMMIT").run();
    } catch (error) {
      if (sqlite.inTransaction) statement("ROLLBACK").run();
      item.reject(error);
      return;
    }
    item.resolve(value);
  };

  const flush = (): void => {
    scheduled = false;
    const batch = pending.splice(0, maxBatch);
    if (pending.length > 0) schedule();
    if (batch.length === 1) return flushOne(batch[0]!);
    const outcomes: ({ ok: true; value: unknown } | { ok: false; error: unknown })[] = [];
    // The ops run on the connection inside this transaction; none of them opens one of its own.
    // A savepoint keeps a copy of every page its write changes (a user's create changes about 26),
    // in a temporary file once past 64 KiB, which cost as much CPU as the write itself. SQLite reads
    // temp_store when the transaction begins (PRAGMA temp_store, "Pragma statements supported by
    // SQLite"); this connection keeps the default, temporary files, for everything else.
    statement("PRAGMA temp_store = MEMORY").run();
    try {
      statement("BEGIN IMMEDIATE").run();
    } catch (error) {
      // Busy beyond busy_timeout: nothing of the batch ran.
      statement("PRAGMA temp_store = DEFAULT").run();
      for (const item of batch) item.reject(error);
      return;
    }
    try {
      for (const item of batch) {
        // A savepoint per request, so that one request's failure rolls back only its own changes.
        statement("SAVEPOINT scim_write").run();
        try {
          outcomes.push({ ok: true, value: runSync(sqlite, item.op) });
          statement("RELEASE scim_write").run();
        } catch (error) {
          statement("ROLLBACK TO scim_write").run();
          statement("RELEASE scim_write").run();
          outcomes.push({ ok: false, error });
        }
      }
      statement("COMMIT").run();
    } catch (error) {
      // COMMIT failed (disk full, I/O error) or a savepoint could not be undone: nothing of the batch is durable.
      if (sqlite.inTransaction) statement("ROLLBACK").run();
      for (const item of batch) item.reject(error);
      return;
    } finally {
      if (!sqlite.inTransaction) statement("PRAGMA temp_store = DEFAULT").run();
    }
    batch.forEach((item, i) => {
      const outcome = outcomes[i]!;
      if (outcome.ok) item.resolve(outcome.value);
      else item.reject(outcome.error);
    });
  };

  const schedule = (): void => {
    if (scheduled) return;
    scheduled = true;
    setImmediate(flush);
  };

  return {
    run<T>(op: StoreUnit<T>): Promise<T> {
      return new Promise<T>((resolve, reject) => {
        pending.push({ op: opOf(op), resolve: resolve as (value: unknown) => void, reject });
        schedule();
      });
    },
  };
}
