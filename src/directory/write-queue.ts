import type { Db, Tx } from "./database.js";
import { connectionOf, prepared } from "./statements.js";

/**
 * Group commit for SCIM writes. Writes that arrive in the same turn of the event loop run one after
 * another in ONE IMMEDIATE transaction, each inside its own savepoint (so one request's failure rolls
 * back only its own changes), and the transaction commits, with its fsync (synchronous=FULL), before
 * any of them is answered. Durability per request is unchanged; the fsync is shared (the reliability
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

  const flush = (): void => {
    scheduled = false;
    const batch = pending.splice(0, maxBatch);
    if (pending.length > 0) schedule();
    const outcomes: ({ ok: true; value: unknown } | { ok: false; error: unknown })[] = [];
    // BEGIN IMMEDIATE and COMMIT as cached statements on the connection rather than through
    // db.transaction(): drizzle builds a transaction object (a whole database facade) per call. The
    // writes get the connection itself as their handle; none of them opens a transaction of its own.
    const tx = db as unknown as Tx;
    try {
      prepared(db, "BEGIN IMMEDIATE").run();
    } catch (error) {
      // Busy beyond busy_timeout: nothing of the batch ran.
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
