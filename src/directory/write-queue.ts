import type { Db, Tx } from "./database.js";
import { connectionOf, prepared } from "./statements.js";

/**
 * Group commit for SCIM writes. Writes that arrive in the same turn of the event loop run one after
 * another in ONE IMMEDIATE transaction, each inside its own savepoint (so one request's failure rolls
 * back only its own changes), and the transaction commits, with its fsync (synchronous=FULL), before
 * any of them is answered. A write alone in its turn runs in the transaction without a savepoint.
 * Durability per request is unchanged; the fsync is shared (the reliability
 * notes' "batch in group commits rather than relaxing fsync"). The whole batch is one synchronous
 * call, so no other code of the process (the sync worker, the admin API) can interleave with it.
 */
export interface WriteQueue {
  /** Runs `write` in the next batch; resolves once the batch is durable, rejects with what `write` threw. */
  run<T>(write: (tx: Tx) => T): Promise<T>;
}

interface Pending {
  write: (tx: Tx) => unknown;
  resolve: (value: unknown) => void;
  reject: (error: unknown) => void;
}

/** Bounds one transaction's length (and so the wait of its first request). */
const maxBatch = 256;

export function createWriteQueue(db: Db): WriteQueue {
  const pending: Pending[] = [];
  let scheduled = false;

  // A write alone in its turn (a client writing in sequence) needs no savepoint: on failure the whole
  // transaction, which holds only its changes, rolls back. A savepoint copies every page the write
  // first touches into its statement journal, and costs two more statements.
  const flushOne = (item: Pending): void => {
    const tx = db as unknown as Tx;
    try {
      prepared(db, "BEGIN IMMEDIATE").run();
    } catch (error) {
      item.reject(error);
      return;
    }
    let value: unknown;
    try {
      value = item.write(tx);
    } catch (error) {
      if (connectionOf(db).inTransaction) prepared(db, "ROLLBACK").run();
      item.reject(error);
      return;
    }
    try {
      prepared(db, "COMMIT").run();
    } catch (error) {
      if (connectionOf(db).inTransaction) prepared(db, "ROLLBACK").run();
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
    // BEGIN IMMEDIATE and COMMIT as cached statements on the connection rather than through
    // db.transaction(): drizzle builds a transaction object (a whole database facade) per call. The
    // writes get the connection itself as their handle; none of them opens a transaction of its own.
    const tx = db as unknown as Tx;
    // A savepoint keeps a copy of every page its write changes (a user's create changes about 26),
    // in a temporary file once past 64 KiB, which cost as much CPU as the write itself. SQLite reads
    // temp_store when the transaction begins (PRAGMA temp_store, "Pragma statements supported by
    // SQLite"); this connection keeps the default, temporary files, for everything else.
    prepared(db, "PRAGMA temp_store = MEMORY").run();
    try {
      prepared(db, "BEGIN IMMEDIATE").run();
    } catch (error) {
      // Busy beyond busy_timeout: nothing of the batch ran.
      prepared(db, "PRAGMA temp_store = DEFAULT").run();
      for (const item of batch) item.reject(error);
      return;
    }
    try {
      for (const item of batch) {
        // A savepoint per request, so that one request's failure rolls back only its own changes.
        prepared(tx, "SAVEPOINT scim_write").run();
        try {
          outcomes.push({ ok: true, value: item.write(tx) });
          prepared(tx, "RELEASE scim_write").run();
        } catch (error) {
          prepared(tx, "ROLLBACK TO scim_write").run();
          prepared(tx, "RELEASE scim_write").run();
          outcomes.push({ ok: false, error });
        }
      }
      prepared(db, "COMMIT").run();
    } catch (error) {
      // COMMIT failed (disk full, I/O error) or a savepoint could not be undone: nothing of the batch is durable.
      if (connectionOf(db).inTransaction) prepared(db, "ROLLBACK").run();
      for (const item of batch) item.reject(error);
      return;
    } finally {
      if (!connectionOf(db).inTransaction) prepared(db, "PRAGMA temp_store = DEFAULT").run();
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
    run<T>(write: (tx: Tx) => T): Promise<T> {
      return new Promise<T>((resolve, reject) => {
        pending.push({ write, resolve: resolve as (value: unknown) => void, reject });
        schedule();
      });
    },
  };
}
