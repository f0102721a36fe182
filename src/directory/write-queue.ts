import type { Db, Tx } from "./database.js";
import { prepared } from "./statements.js";

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
    try {
      db.transaction(
        (tx) => {
          for (const item of batch) {
            // A savepoint per request (cached statements: drizzle would prepare three per request).
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
        },
        { behavior: "immediate" },
      );
    } catch (error) {
      // BEGIN or COMMIT failed (busy beyond busy_timeout, disk full): nothing of the batch is durable.
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
