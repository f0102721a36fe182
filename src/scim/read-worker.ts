/**
 * One thread of the SCIM read pool (./read-pool.ts): a read-only connection of its own to the same
 * WAL database, running the read ops of ./reads.ts one at a time, each in one read unit of a store
 * over that connection. Each read starts a new read transaction, so it sees every write the main
 * connection committed before the read was sent. SQLite only: on PostgreSQL reads run through the
 * main store's `store.read` and there is no pool.
 */
import { parentPort, workerData } from "node:worker_threads";
import { openReadConnection } from "../directory/database.js";
import { isBridgeError } from "../errors.js";
import { PageAnchors } from "./paging.js";
import type { FromReadWorker, ReadWorkerData, ToReadWorker } from "./read-pool.js";
import { readOp } from "./reads.js";
import { sqliteStore } from "../directory/sql.js";

const data = workerData as ReadWorkerData;
const port = parentPort!;
const { sqlite } = openReadConnection(data.databaseUrl, data.sqlite);
if (data.setup) {
  // Test seam (BridgeOverrides.readPool.workerSetup): e.g. a deliberately slow SQL function.
  const hooks = (await import(data.setup)) as { setup?: (connection: typeof sqlite) => void | Promise<void> };
  await hooks.setup?.(sqlite);
}
// Sequential page walks resume by keyset (./paging.ts); this thread's own anchors.
const anchors = new PageAnchors();
const store = sqliteStore(sqlite);

const reply = (message: FromReadWorker) => port.postMessage(message);

port.on("message", ({ id, request }: ToReadWorker) => {
  // On SQLite the unit runs synchronously: one read at a time, as before.
  store.read(readOp(request, anchors)).then(
    (result) => reply({ id, result }),
    (err: unknown) => replyError(id, err),
  );
});

function replyError(id: number, err: unknown): void {
  if (isBridgeError(err))
    reply({
      id,
      error: {
        kind: err.kind,
        message: err.message,
        ...(err.retryAfter === undefined ? {} : { retryAfter: err.retryAfter }),
      },
    });
  else {
    const e = err as { message?: unknown; code?: unknown; stack?: unknown };
    reply({
      id,
      error: {
        message: String(e?.message ?? err),
        ...(typeof e?.code === "string" ? { code: e.code } : {}),
        ...(typeof e?.stack === "string" ? { stack: e.stack } : {}),
      },
    });
  }
}
reply({ ready: true });
