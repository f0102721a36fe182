/**
 * The sync engine's thread (./engine-thread.ts): its own database connection (synchronous=NORMAL,
 * as the in-process worker's), its own Management API client and rate limiter (the buckets are
 * shared through the database with every process calling the tenant), and the job worker. What the
 * main thread must see goes back as messages: batched events once per turn, a heartbeat every second.
 */
import { parentPort, workerData } from "node:worker_threads";
import type { DestinationStream } from "pino";
import { createManagementClient } from "../auth0/client.js";
import { openDatabase } from "../directory/database.js";
import { sqliteStore } from "../directory/sql.js";
import { createLogger } from "../logging.js";
import { createSyncEngine } from "./engine.js";
import type { FromSyncThread, SyncThreadData, SyncThreadEvent, ToSyncThread } from "./engine-thread.js";
import { webhookInvitationDelivery } from "./invitations.js";

const data = workerData as SyncThreadData;
const port = parentPort!;
const send = (message: FromSyncThread): void => port.postMessage(message);

let queue: SyncThreadEvent[] = [];
let flushScheduled = false;
const flush = (): void => {
  flushScheduled = false;
  if (queue.length === 0) return;
  const events = queue;
  queue = [];
  send({ t: "batch", events });
};
/** One message per turn rather than one per event: a push completes hundreds of jobs a second. */
const push = (event: SyncThreadEvent): void => {
  queue.push(event);
  if (!flushScheduled) {
    flushScheduled = true;
    setImmediate(flush);
  }
};

// Whatever is queued when the thread ends (a crash included) goes out with its last message.
process.once("exit", flush);

const destination: DestinationStream = { write: (line: string) => push(["l", line]) };
const log = createLogger({ level: data.logLevel, destination });

const connection = openDatabase(data.databaseUrl, {
  ...data.sqlite,
  durability: "normal",
  ...(data.autoCheckpoint ? {} : { autoCheckpoint: false }),
});
const engine = createSyncEngine({
  store: sqliteStore(connection.sqlite),
  client: createManagementClient(data.auth0, data.managementClient ?? {}),
  ...data.settings,
  ...(data.invitationWebhook
    ? { invitations: webhookInvitationDelivery(data.invitationWebhook.url, data.invitationWebhook.secret) }
    : {}),
  log,
  onAuth0Failure: (organizationId, errorCode) => push(["f", organizationId, errorCode]),
  observer: { onCall: (cls, status, durationMs) => push(["c", cls, status, durationMs]) },
  events: {
    onOutcome: (job, outcome) =>
      push(["o", job.kind, job.lane, job.organizationId, job.firstEnqueuedAt, outcome.status, Date.now()]),
    onError: (err) => log.warn({ err }, "job worker: database write failed; retrying on the next poll"),
  },
});

if (data.setup) {
  // Test seam (BridgeOverrides.syncThread.workerSetup): e.g. a way to crash this thread on demand.
  const hooks = (await import(data.setup)) as { setup?: (thread: { log: typeof log }) => void | Promise<void> };
  await hooks.setup?.({ log });
}

const beat = (): void =>
  send({
    t: "beat",
    lastTickAt: engine.worker.lastTickAt,
    activeJobs: engine.worker.activeJobs,
    budget: engine.limiter.snapshot(),
  });
const heartbeat = setInterval(beat, 1000);

let started = false;
let stopping = false;
port.on("message", (message: ToSyncThread) => {
  if (message.t === "wake") engine.worker.notify();
  else if (message.t === "start" && !stopping && !started) {
    started = true;
    engine.worker.start();
    send({ t: "ready" });
    beat();
  } else if (message.t === "stop" && !stopping) {
    stopping = true;
    clearInterval(heartbeat);
    void (async () => {
      try {
        await engine.worker.stop(message.timeoutMs);
      } finally {
        engine.limiter.stop();
        beat();
        connection.close();
        flush();
        send({ t: "stopped" });
      }
    })();
  }
});
