import { close, fdatasync, open } from "node:fs";
import { resolve } from "node:path";
import { isMainThread } from "node:worker_threads";
import type Database from "better-sqlite3";
import { BridgeError } from "../errors.js";

/**
 * Durable commits without blocking the event loop, for SQLite in WAL mode.
 *
 * With synchronous=FULL, SQLite calls fsync on the WAL inside COMMIT: on the event loop, so nothing
 * else of the process runs while the disk flushes (in a CPU profile of serial POST /Users this was
 * a third of the main thread's time). With synchronous=NORMAL, COMMIT writes the transaction's
 * frames to the WAL without syncing (SQLite documentation, "Write-Ahead Logging": NORMAL is safe from
 * corruption in WAL mode; only durability is given up). This module gives durability back: after
 * such a commit, the WAL file is flushed with fdatasync on libuv's thread pool, and the write is
 * acknowledged only when a flush that began after its commit has finished. On Linux, fsync and
 * fdatasync flush every dirty page of the file, whichever descriptor wrote it (PostgreSQL's
 * checkpointer relies on the same); the file is opened anew for each flush so that a WAL file
 * SQLite has replaced is never the one flushed.
 *
 * One flush runs at a time and covers every commit made before it began, so concurrent writers
 * share flushes (group commit) while the event loop goes on serving.
 *
 * Readers on other connections can see a commit before its flush. `durable()` waits until every
 * commit made so far is flushed: code that shows what it read to the outside (a SCIM answer, an
 * Auth0 call) awaits it first, so nothing leaves the process that a power loss could take back.
 */
export interface WalSync {
  /** Call right after a COMMIT made with synchronous=NORMAL; resolves once it is on disk. */
  committed(): Promise<void>;
  /** Resolves once every commit made so far is on disk (at once when none is waiting). */
  durable(): Promise<void>;
  /** Why commits are no longer acknowledged (a flush failed), for /readyz; undefined while healthy. */
  problem(): string | undefined;
}

interface Waiter {
  upTo: number;
  resolve: () => void;
  reject: (error: unknown) => void;
}

const syncs = new Map<string, WalSync>();

/**
 * The WalSync of a file-backed connection's database (one per file and thread), undefined for an
 * in-memory one.
 */
export function walSyncOf(sqlite: Database.Database): WalSync | undefined {
  if (sqlite.memory || sqlite.name === "" || sqlite.name === ":memory:") return undefined;
  const path = `${resolve(sqlite.name)}-wal`;
  let sync = syncs.get(path);
  if (!sync) syncs.set(path, (sync = walSync(path)));
  return sync;
}

/**
 * Resolves once every commit to `sqlite`'s database file is on disk, before a caller acts on what it
 * read (the sync worker before calling Auth0 for jobs it claimed). The group commit runs on the main
 * thread, whose WalSync knows which of its commits wait for a flush; any other thread cannot know,
 * so it flushes the WAL itself.
 */
export function everyCommitOnDisk(sqlite: Database.Database): Promise<void> {
  const sync = walSyncOf(sqlite);
  if (!sync) return Promise.resolve();
  return isMainThread ? sync.durable() : sync.committed();
}

function flushFile(path: string): Promise<void> {
  return new Promise((resolve, reject) => {
    open(path, "r+", (openError, fd) => {
      // No WAL file: SQLite removed it after checkpointing every frame into the database file,
      // which a checkpoint syncs before the WAL is reset (SQLite documentation, "Checkpointing").
      if (openError) return openError.code === "ENOENT" ? resolve() : reject(openError);
      fdatasync(fd, (syncError) => close(fd, () => (syncError ? reject(syncError) : resolve())));
    });
  });
}

/** `flush` flushes the WAL file; tests pass their own to control when it ends. */
export function walSync(walPath: string, flush: (path: string) => Promise<void> = flushFile): WalSync {
  let commits = 0;
  let flushed = 0;
  let flushing = false;
  let waiters: Waiter[] = [];
  // After a failed flush the kernel may have dropped the pages it could not write, and a later flush
  // can succeed without them ("PostgreSQL's fsync() surprise", LWN 2018): no later commit is
  // acknowledged either, until the process restarts and SQLite recovers from what is on disk.
  let failure: unknown;

  const start = (): void => {
    flushing = true;
    const target = commits;
    flush(walPath).then(
      () => settle(target),
      (error: unknown) => {
        const code = (error as { code?: string }).code ?? String(error);
        // 503: the client retries later, against a restarted process.
        failure ??= new BridgeError(
          "unavailable",
          `the database's write-ahead log could not be flushed to disk (${code}); no write is acknowledged until scim-bridge restarts: check the disk, then restart it`,
          { cause: error, retryAfter: 60 },
        );
        settle(target);
      },
    );
  };
  const settle = (target: number): void => {
    if (failure === undefined) flushed = Math.max(flushed, target);
    const done = failure === undefined ? waiters.filter((w) => w.upTo <= target) : waiters;
    waiters = failure === undefined ? waiters.filter((w) => w.upTo > target) : [];
    flushing = false;
    if (waiters.length > 0) start();
    for (const w of done) {
      if (failure === undefined) w.resolve();
      else w.reject(failure);
    }
  };
  const waitFor = (upTo: number): Promise<void> => {
    if (failure !== undefined) return Promise.reject(failure);
    if (flushed >= upTo) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      waiters.push({ upTo, resolve, reject });
      if (!flushing) start();
    });
  };
  return {
    committed: () => waitFor(++commits),
    durable: () => waitFor(commits),
    problem: () => (failure === undefined ? undefined : (failure as Error).message),
  };
}
