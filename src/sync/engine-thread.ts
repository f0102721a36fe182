/**
 * The sync engine in a worker thread of its own (docs/design.md, "Concurrency"): the thread builds
 * the engine (limiter, gateway, reconcilers, worker) on its own database connection and runs the
 * job worker, so that claiming, reconciling and recording jobs never holds up a SCIM request or the
 * post-login hook on the main thread, and the sync work uses another core.
 *
 * The main thread keeps what the rest of the process reads: wake-ups go to the thread when a job is
 * enqueued here; job outcomes, Auth0 call observations, Auth0 failures and log lines come back (in
 * batches, one message per turn of the thread's event loop) to the main thread's metrics and
 * logger; a heartbeat carries the worker's last poll and the rate budget for /readyz and /metrics.
 *
 * A thread that crashes is logged at error, counted, reported by /readyz until a new one runs, and
 * replaced with back-off. The jobs it held are taken over when their leases expire, as those of a
 * killed process are.
 */
import type { Worker } from "node:worker_threads";
import { startModuleWorker } from "../paths.js";
import { pino, type Logger } from "pino";
import type { SyncEngineOptions } from "./engine.js";
import type { RateSnapshot } from "../auth0/rate-limiter.js";
import type { Auth0Config, Config } from "../config.js";
import { onJobEnqueued } from "../directory/outbox.js";

/** Everything the thread needs to build the engine: plain data, copied into the thread. */
/**
 * The engine's settings that are plain data, so that they cross into the thread as they are: the
 * composition root builds them once for the in-process engine and the thread alike.
 */
export type EngineSettings = Pick<
  SyncEngineOptions,
  "plan" | "tenant" | "rateScale" | "invitationClientId" | "leaseMs" | "concurrency" | "pollMs" | "backoff" | "outage"
>;

export interface SyncThreadData {
  databaseUrl: string;
  sqlite?: { cacheMiB?: number; mmapMiB?: number };
  /** False when WAL checkpoints run in their own thread (the process's other connections do the same). */
  autoCheckpoint: boolean;
  auth0: Auth0Config;
  managementClient?: { maxRetries?: number };
  settings: EngineSettings;
  invitationWebhook?: { url: string; secret: string };
  logLevel: Config["logLevel"];
  /** Test seam: URL of a module whose `setup()` the thread runs before starting the worker. */
  setup?: string;
}

/** A job outcome as the metrics need it (the thread's clock gives the completion time). */
export interface JobOutcomeEvent {
  kind: string;
  lane: number;
  organizationId: string;
  firstEnqueuedAt: number;
  status: "done" | "retry" | "dead";
  at: number;
}

/** Batched events, as compact tuples: o = job outcome, c = Auth0 call, f = Auth0 failure, l = log line. */
export type SyncThreadEvent =
  | ["o", string, number, string, number, JobOutcomeEvent["status"], number]
  | ["c", string, number, number]
  | ["f", string, string]
  | ["l", string];

export type FromSyncThread =
  | { t: "ready" }
  | { t: "batch"; events: SyncThreadEvent[] }
  | { t: "beat"; lastTickAt: number; activeJobs: number; budget: RateSnapshot[] }
  | { t: "stopped" };

export type ToSyncThread = { t: "start" } | { t: "wake" } | { t: "stop"; timeoutMs: number };

export interface SyncThreadSinks {
  onOutcome(event: JobOutcomeEvent): void;
  onCall(cls: string, status: number, durationMs: number): void;
  onAuth0Failure(organizationId: string, errorCode: string): void;
  /** A thread stopped without being asked (after it was logged); for the crash counter. */
  onCrash(): void;
}

export interface SyncThreadOptions {
  data: SyncThreadData;
  log: Logger;
  sinks: SyncThreadSinks;
}

export interface SyncThreadHealth {
  /** ok: a thread runs the worker; starting: the first one is not running yet; restarting: it crashed and is being replaced. */
  status: "ok" | "starting" | "restarting" | "stopped";
  /** Crashes since the process started. */
  crashes: number;
  /** The last crash (ISO time and what happened), once there was one. */
  lastCrash?: { at: string; problem: string };
}

const here = import.meta.url;

const spawn = (data: SyncThreadData): Worker => startModuleWorker(here, "engine-worker", data);

/** A thread that ran this long before crashing starts the back-off over. */
const STABLE_MS = 60_000;

/** Replacement delay after `failures` crashes in a row: 200 ms doubling to 10 s. */
export const restartDelayMs = (failures: number): number => Math.min(10_000, 200 * 2 ** Math.max(0, failures - 1));

/** The main thread's handle on the sync engine's thread: starts, feeds, supervises and stops it. */
export class SyncThread {
  readonly #options: SyncThreadOptions;
  readonly #writeLine: (line: string) => void;
  #worker?: Worker;
  #ready = false;
  #started = false;
  #stopping = false;
  #failures = 0;
  #crashes = 0;
  #lastCrash?: { at: string; problem: string };
  #lastError?: string;
  #spawnedAt = 0;
  #respawn?: NodeJS.Timeout;
  #unsubscribe?: () => void;
  #budget?: RateSnapshot[];
  #activeJobs = 0;
  /** The worker's last poll in the thread (epoch ms); /readyz reports the worker dead when it goes stale. */
  lastTickAt = 0;

  constructor(options: SyncThreadOptions) {
    this.#options = options;
    this.#writeLine = lineWriter(options.log);
  }

  /**
   * Starts the thread without starting its worker: loading the engine's modules and opening the
   * connection take a while on a busy machine, and can overlap the first tenant check.
   */
  prepare(): void {
    if (this.#worker || this.#respawn || this.#stopping) return;
    this.#spawn();
  }

  /** Starts the worker in the thread (starting the thread first unless prepare() did). */
  start(): void {
    if (this.#started || this.#stopping) return;
    this.#started = true;
    // Jobs enqueued by this process's SCIM writes wake the thread at once (onJobEnqueued already
    // spaces the wakes); jobs other processes enqueue wait for its poll.
    this.#unsubscribe = onJobEnqueued(() => this.notify());
    if (this.#worker) this.#worker.postMessage({ t: "start" } satisfies ToSyncThread);
    else if (!this.#respawn) this.#spawn();
  }

  /** Wakes the thread's worker now (a job was enqueued). */
  notify(): void {
    if (this.#ready) this.#worker?.postMessage({ t: "wake" } satisfies ToSyncThread);
  }

  /** The rate-limit buckets as the thread's limiter last reported them (every second). */
  get budget(): RateSnapshot[] | undefined {
    return this.#budget;
  }

  get activeJobs(): number {
    return this.#activeJobs;
  }

  health(): SyncThreadHealth {
    const base = {
      crashes: this.#crashes,
      ...(this.#lastCrash ? { lastCrash: this.#lastCrash } : {}),
    };
    if (this.#stopping) return { status: "stopped", ...base };
    if (this.#ready) return { status: "ok", ...base };
    return { status: this.#crashes > 0 ? "restarting" : "starting", ...base };
  }

  /**
   * Graceful stop: the thread's worker claims nothing more, lets the jobs in flight finish their
   * current Auth0 call and hands back the leases of unfinished ones (Worker.stop), then the thread
   * ends. A thread that does not answer in time is terminated; its leases then expire as a crash's.
   */
  async stop(timeoutMs = 10_000): Promise<void> {
    if (this.#stopping) return;
    this.#stopping = true;
    this.#unsubscribe?.();
    clearTimeout(this.#respawn);
    const worker = this.#worker;
    if (!worker) return;
    const exited = new Promise<void>((resolve) => worker.once("exit", () => resolve()));
    worker.postMessage({ t: "stop", timeoutMs } satisfies ToSyncThread);
    const timer = setTimeout(() => void worker.terminate(), timeoutMs + 2_000);
    await exited;
    clearTimeout(timer);
  }

  #spawn(): void {
    this.#respawn = undefined;
    if (this.#stopping) return;
    let worker: Worker;
    try {
      worker = spawn(this.#options.data);
    } catch (err) {
      this.#crashed(`could not start the sync worker thread: ${err instanceof Error ? err.message : String(err)}`);
      return;
    }
    // An HTTP server keeps `serve` alive; the thread alone must not keep a test or a script running.
    worker.unref();
    // A replacement after a crash starts its worker at once; the first thread when start() says.
    if (this.#started) worker.postMessage({ t: "start" } satisfies ToSyncThread);
    this.#worker = worker;
    this.#ready = false;
    this.#lastError = undefined;
    this.#spawnedAt = Date.now();
    worker.on("message", (message: FromSyncThread) => {
      if (this.#worker !== worker) return;
      switch (message.t) {
        case "batch":
          this.#deliver(message.events);
          return;
        case "beat":
          this.lastTickAt = message.lastTickAt;
          this.#activeJobs = message.activeJobs;
          this.#budget = message.budget;
          return;
        case "ready":
          this.#ready = true;
          if (this.#crashes > 0) this.#options.log.info("sync worker thread restarted");
          return;
        case "stopped":
          // Everything is handed back and the connection closed: only open sockets may remain.
          void worker.terminate();
          return;
      }
    });
    worker.on("error", (err) => {
      if (this.#worker !== worker) return;
      this.#lastError = err instanceof Error ? (err.stack ?? err.message) : String(err);
    });
    worker.on("exit", (code) => {
      if (this.#worker !== worker) return;
      this.#worker = undefined;
      this.#ready = false;
      this.#activeJobs = 0;
      if (this.#stopping) return;
      this.#crashed(
        this.#lastError
          ? `the sync worker thread crashed: ${this.#lastError.split("\n")[0]}`
          : `the sync worker thread stopped (exit code ${code})`,
        this.#lastError,
      );
    });
  }

  #crashed(problem: string, stack?: string): void {
    if (Date.now() - this.#spawnedAt >= STABLE_MS) this.#failures = 0;
    this.#failures++;
    this.#crashes++;
    this.#lastCrash = { at: new Date().toISOString(), problem };
    const delay = restartDelayMs(this.#failures);
    this.#options.log.error(
      { restartInMs: delay, crashes: this.#crashes, ...(stack ? { stack } : {}) },
      `${problem}; restarting it. Jobs it held are taken over when their leases expire (JOB_LEASE_SECONDS); until it runs again, no job reaches Auth0`,
    );
    this.#options.sinks.onCrash();
    this.#respawn = setTimeout(() => this.#spawn(), delay);
    this.#respawn.unref();
  }

  #deliver(events: SyncThreadEvent[]): void {
    const { sinks } = this.#options;
    for (const e of events) {
      switch (e[0]) {
        case "o":
          sinks.onOutcome({
            kind: e[1],
            lane: e[2],
            organizationId: e[3],
            firstEnqueuedAt: e[4],
            status: e[5],
            at: e[6],
          });
          break;
        case "c":
          sinks.onCall(e[1], e[2], e[3]);
          break;
        case "f":
          sinks.onAuth0Failure(e[1], e[2]);
          break;
        case "l":
          this.#writeLine(e[1]);
          break;
      }
    }
  }
}

/**
 * The thread formats its lines with the same logger settings (createLogger: fields, redaction,
 * time of the event); they go out through the main logger's destination unchanged, so they
 * interleave with the main thread's lines in one stream. A logger without a destination of its
 * own (pino's silent default, a test double) gets them as objects.
 */
function lineWriter(log: Logger): (line: string) => void {
  const stream = (log as unknown as Record<symbol, { write?: (line: string) => unknown } | undefined>)[
    pino.symbols.streamSym
  ];
  if (stream && typeof stream.write === "function") return (line) => void stream.write!(line);
  return (line) => {
    try {
      const { level, msg, ...fields } = JSON.parse(line) as { level?: string; msg?: string } & Record<string, unknown>;
      const method = typeof level === "string" && level in log ? (level as "info") : "info";
      log[method](fields, msg);
    } catch {
      log.info(line);
    }
  };
}
