/**
 * The SCIM read pool: worker threads, each with a read-only connection to the same WAL database,
 * that run the store work of SCIM reads (./reads.ts) off the main thread. The main thread keeps
 * HTTP, authentication, rate limits, logging and every write; it sends the parsed read and gets the
 * response body back as text (docs/design.md, "Concurrency").
 *
 * better-sqlite3 cannot interrupt a running statement (no sqlite3_interrupt, no progress handler),
 * so a read that runs past its time budget is cancelled by terminating its thread, which is then
 * replaced; the request answers 503 with Retry-After. A thread that dies for any other reason is
 * replaced the same way and its request answers 503: never a hang.
 *
 * SQLite only: one writer and synchronous reads make the main thread the bottleneck there. On
 * PostgreSQL there is no pool: every read is one `store.read` of the main store (./routes.ts), the
 * server does the work, and instances scale reads out.
 */
import type { Worker } from "node:worker_threads";
import { startModuleWorker } from "../paths.js";
import type { Logger } from "pino";
import { BridgeError, type ErrorKind } from "../errors.js";
import type { ReadRequest, ReadResult } from "./reads.js";

export interface ReadWorkerData {
  databaseUrl: string;
  /** SQLite memory of the thread's connection (page cache, mapping), as the process's other connections. */
  sqlite?: { cacheMiB?: number; mmapMiB?: number };
  /** URL of a module whose `setup(connection)` the worker runs before serving (tests only). */
  setup?: string;
}

export type ToReadWorker = { id: number; request: ReadRequest };

export interface WireError {
  kind?: ErrorKind;
  message: string;
  retryAfter?: number;
  code?: string;
  stack?: string;
}

export type FromReadWorker = { ready: true } | { id: number; result: ReadResult } | { id: number; error: WireError };

export interface ReadPoolOptions {
  databaseUrl: string;
  /** Each thread's connection: page cache and mapping in MiB (SQLITE_CACHE_MIB, SQLITE_MMAP_MIB). */
  sqlite?: { cacheMiB?: number; mmapMiB?: number };
  /** Worker threads (at least 1). */
  size: number;
  /** A read running longer than this is cancelled (its thread terminated) and answers 503. */
  timeoutMs: number;
  log: Logger;
  /** Reads waiting for a thread beyond this answer 503 at once (default 1,000). */
  maxQueue?: number;
  /** Test seam: a module the workers import and whose `setup(connection)` they run before serving. */
  workerSetup?: string;
}

export interface ReadPoolHealth {
  /** "ok": every thread serves; "starting"; "degraded": some serve, others failed and are retried; "failed": none can start. */
  status: "ok" | "starting" | "degraded" | "failed" | "closed";
  running: number;
  size: number;
  /** The last failure, when status is degraded or failed. */
  problem?: string;
}

interface Job {
  id: number;
  request: ReadRequest;
  directoryId: string;
  heavy: boolean;
  resolve(result: ReadResult): void;
  reject(err: unknown): void;
  /** When it was queued (performance.now()): answers 503 if no thread takes it in time (see queueWaitMs). */
  queuedAt: number;
}

interface Slot {
  worker?: Worker;
  ready: boolean;
  job?: Job;
  /** When the thread was given its job (performance.now()), for the time budget. */
  startedAt: number;
  /** Failed starts or crashes since this slot last became ready (respawn back-off). */
  failures: number;
  respawn?: NodeJS.Timeout;
}

const here = import.meta.url;

/**
 * How long a read may wait for a thread. Threads busy with reads free up within the time budget, so
 * this only bounds the rare waits that are not: threads starting (a second or more on a loaded
 * machine) or one that never answers its start. Never a hang.
 */
const queueWaitMs = (timeoutMs: number): number => Math.max(30_000, 2 * timeoutMs);

const spawn = (data: ReadWorkerData): Worker => startModuleWorker(here, "read-worker", data);

function fromWire(error: WireError): Error {
  if (error.kind) return new BridgeError(error.kind, error.message, { retryAfter: error.retryAfter });
  // Not in the error vocabulary: keep the code (SQLITE_BUSY maps to 503 at the edge) and the stack for the log.
  const err = new Error(error.message) as Error & { code?: string };
  if (error.code) err.code = error.code;
  if (error.stack) err.stack = error.stack;
  return err;
}

export class ReadPool {
  readonly size: number;
  readonly #options: ReadPoolOptions;
  readonly #slots: Slot[];
  readonly #queue: Job[] = [];
  /** Heavy reads of each directory in the threads now: one directory may hold all threads but one with them. */
  readonly #busy = new Map<string, number>();
  readonly #perDirectory: number;
  #nextId = 1;
  #started = false;
  #closed = false;
  #lastProblem?: string;
  #sweep?: NodeJS.Timeout;

  constructor(options: ReadPoolOptions) {
    this.#options = options;
    this.size = Math.max(1, Math.floor(options.size));
    this.#perDirectory = Math.max(1, this.size - 1);
    this.#slots = Array.from({ length: this.size }, () => ({ ready: false, failures: 0, startedAt: 0 }));
  }

  /** Starts the threads (the first read does it otherwise). */
  start(): void {
    if (this.#started || this.#closed) return;
    this.#started = true;
    for (const slot of this.#slots) this.#spawn(slot);
    // One timer checks every budget, rather than two timers per read: a read is cancelled between its
    // budget and a tenth of it later.
    const period = Math.min(250, Math.max(10, this.#options.timeoutMs / 10));
    this.#sweep = setInterval(() => this.#checkBudgets(), period);
    this.#sweep.unref();
  }

  run(request: ReadRequest, heavy = false): Promise<ReadResult> {
    if (this.#closed) return Promise.reject(unavailableFor("the server is shutting down", 1));
    this.start();
    if (this.#cannotStart())
      return Promise.reject(unavailableFor(`no SCIM read worker could start (${this.#lastProblem})`, 5));
    if (this.#queue.length >= (this.#options.maxQueue ?? 1000))
      return Promise.reject(unavailableFor("too many reads are waiting; retry shortly", 1));
    return new Promise<ReadResult>((resolve, reject) => {
      const job: Job = {
        id: this.#nextId++,
        request,
        directoryId: request.ctx.directoryId,
        heavy,
        resolve,
        reject,
        queuedAt: performance.now(),
      };
      this.#queue.push(job);
      this.#pump();
    });
  }

  /** Threads running a read now. */
  get busy(): number {
    return this.#slots.filter((s) => s.job !== undefined).length;
  }

  health(): ReadPoolHealth {
    const running = this.#slots.filter((s) => s.ready).length;
    const base = { running, size: this.size };
    if (this.#closed) return { status: "closed", ...base };
    if (this.#cannotStart()) return { status: "failed", ...base, problem: this.#lastProblem };
    if (running === this.size) return { status: "ok", ...base };
    if (this.#slots.some((s) => s.failures > 0)) return { status: "degraded", ...base, problem: this.#lastProblem };
    return { status: "starting", ...base };
  }

  /** Ends every thread; reads still waiting or running answer 503. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#sweep);
    for (const job of this.#queue.splice(0)) {
      job.reject(unavailableFor("the server is shutting down", 1));
    }
    const exits: Promise<unknown>[] = [];
    for (const slot of this.#slots) {
      clearTimeout(slot.respawn);
      const worker = slot.worker;
      this.#release(slot, unavailableFor("the server is shutting down", 1));
      slot.worker = undefined;
      slot.ready = false;
      if (worker) exits.push(worker.terminate());
    }
    await Promise.allSettled(exits);
  }

  /** Every thread has failed since it was last ready, and none serves: reads cannot be answered. */
  #cannotStart(): boolean {
    return this.#started && this.#slots.every((s) => !s.ready && s.failures > 0);
  }

  #spawn(slot: Slot): void {
    slot.respawn = undefined;
    if (this.#closed) return;
    let worker: Worker;
    try {
      worker = spawn({
        databaseUrl: this.#options.databaseUrl,
        ...(this.#options.sqlite ? { sqlite: this.#options.sqlite } : {}),
        ...(this.#options.workerSetup ? { setup: this.#options.workerSetup } : {}),
      });
    } catch (err) {
      this.#failed(slot, `could not start a thread: ${err instanceof Error ? err.message : String(err)}`);
      return;
    }
    // An idle pool must not keep a process alive (a test, a script); a thread with a read does (see #pump).
    worker.unref();
    slot.worker = worker;
    slot.ready = false;
    worker.on("message", (message: FromReadWorker) => {
      if (slot.worker !== worker) return;
      if ("ready" in message) {
        slot.ready = true;
        slot.failures = 0;
        this.#pump();
        return;
      }
      const job = slot.job;
      if (!job || job.id !== message.id) return;
      if ("result" in message) this.#release(slot, undefined, message.result);
      else this.#release(slot, fromWire(message.error));
      this.#pump();
    });
    worker.on("error", (err) => {
      if (slot.worker !== worker) return;
      this.#lastProblem = err.message;
    });
    worker.on("exit", (code) => {
      if (slot.worker !== worker) return;
      slot.worker = undefined;
      const wasReady = slot.ready;
      slot.ready = false;
      const problem = wasReady
        ? `a SCIM read worker stopped (exit code ${code})`
        : `a SCIM read worker failed to start: ${this.#lastProblem ?? `exit code ${code}`}`;
      if (slot.job) this.#options.log.error({ requestId: slot.job.request.ctx.requestId }, problem);
      else if (!this.#closed) this.#options.log.error(problem);
      this.#release(slot, unavailableFor("the SCIM read worker serving this request stopped; retry", 1));
      this.#failed(slot, problem);
    });
  }

  /** Replaces a thread after a failure, backing off while it keeps failing (100 ms doubling to 5 s). */
  #failed(slot: Slot, problem: string): void {
    this.#lastProblem = problem;
    slot.failures++;
    if (this.#closed) return;
    if (this.#cannotStart()) {
      // No thread serves and none could start: waiting reads would only time out.
      for (const job of this.#queue.splice(0)) {
        job.reject(unavailableFor(`no SCIM read worker could start (${problem})`, 5));
      }
    }
    const delay = Math.min(5_000, 100 * 2 ** Math.min(slot.failures - 1, 6));
    slot.respawn = setTimeout(() => this.#spawn(slot), delay);
    slot.respawn.unref();
  }

  /** Finishes the slot's job, if any, with its result or error. */
  #release(slot: Slot, error?: unknown, result?: ReadResult): void {
    const job = slot.job;
    if (!job) return;
    slot.job = undefined;
    slot.worker?.unref();
    if (job.heavy) {
      const left = (this.#busy.get(job.directoryId) ?? 1) - 1;
      if (left > 0) this.#busy.set(job.directoryId, left);
      else this.#busy.delete(job.directoryId);
    }
    if (error !== undefined) job.reject(error);
    else job.resolve(result!);
  }

  /** Hands waiting reads to idle threads, oldest first, skipping heavy reads of a directory that holds its share. */
  #pump(): void {
    for (const slot of this.#slots) {
      if (this.#queue.length === 0) return;
      if (!slot.ready || slot.job || !slot.worker) continue;
      const at = this.#queue.findIndex((j) => !j.heavy || (this.#busy.get(j.directoryId) ?? 0) < this.#perDirectory);
      if (at < 0) return;
      const [job] = this.#queue.splice(at, 1) as [Job];
      slot.job = job;
      slot.startedAt = performance.now();
      if (job.heavy) this.#busy.set(job.directoryId, (this.#busy.get(job.directoryId) ?? 0) + 1);
      slot.worker.ref();
      slot.worker.postMessage({ id: job.id, request: job.request } satisfies ToReadWorker);
    }
  }

  /** Cancels reads past their budget and answers reads that waited too long for a thread. */
  #checkBudgets(): void {
    const now = performance.now();
    for (const slot of this.#slots)
      if (slot.job && now - slot.startedAt > this.#options.timeoutMs) this.#timedOut(slot, slot.job);
    const limit = queueWaitMs(this.#options.timeoutMs);
    while (this.#queue.length > 0 && now - this.#queue[0]!.queuedAt > limit)
      this.#queue.shift()!.reject(unavailableFor("no SCIM read worker became free in time; retry shortly", 1));
  }

  /** The read ran past its budget: the only way to stop a running statement is to end its thread. */
  #timedOut(slot: Slot, job: Job): void {
    if (slot.job !== job) return;
    const worker = slot.worker;
    const seconds = this.#options.timeoutMs / 1000;
    this.#options.log.warn(
      { requestId: job.request.ctx.requestId, directoryId: job.directoryId, op: job.request.op },
      `SCIM read cancelled after ${seconds} s (its worker thread is replaced)`,
    );
    this.#release(
      slot,
      unavailableFor(
        `the read took longer than ${seconds} s and was cancelled; filter on an indexed attribute (eq or sw on userName, externalId, emails.value, displayName) or ask for fewer results`,
        Math.max(1, Math.ceil(seconds)),
      ),
    );
    slot.worker = undefined;
    slot.ready = false;
    void worker?.terminate();
    this.#spawn(slot);
  }
}

/** 503 with Retry-After (RFC 7231 §6.6.4): the service cannot answer this read now, but may soon. */
function unavailableFor(detail: string, retryAfter: number): BridgeError {
  return new BridgeError("unavailable", detail, { retryAfter });
}
