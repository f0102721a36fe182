/**
 * PostgreSQL for the benches: a server, fresh databases on it, and the shipped bench's seed.
 *
 * - The server is BENCH_DATABASE_URL when set (a URL whose user may CREATE DATABASE; on this
 *   machine for the server CPU figures), else an embedded PostgreSQL started as the tests start it
 *   (test/support/postgres-global-setup.ts) but durable: fsync, full-page writes and
 *   synchronous_commit on, as a production server runs, so that a write's figure includes its WAL
 *   flush.
 * - seedPostgres writes the rows bench/seed.ts writes into SQLite (the same seedBatches), into a
 *   migrated database, with one `INSERT … SELECT * FROM unnest(…)` a table and batch (every column
 *   bound as one array: one round trip for 10,000 rows).
 *
 *   npx tsx bench/postgres.ts 100000    seeds a database on a fresh embedded server, prints the timing
 */
import { closeSync, fdatasyncSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync, writeSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import pg from "pg";
import { migratePostgres } from "../src/directory/postgres.js";
import { postgresStore } from "../src/directory/sql.js";
import { startEmbedded } from "../test/support/postgres-global-setup.js";
import { benchOnboarding, seedBase, seedBatches, seedEpilogue, type SeededIds, type SeedRows } from "./seed.js";
import { toPositional } from "../src/directory/store-op.js";

export interface BenchPostgres {
  /** A URL on the server whose user may create databases. */
  adminUrl: string;
  /** "embedded" or "BENCH_DATABASE_URL". */
  source: string;
  /** The server's synchronous_commit and fsync, read from it (the table states them). */
  settings: string;
  stop: () => Promise<void>;
}

/** `flags`: settings for the embedded server (ignored with BENCH_DATABASE_URL), e.g. for an investigation. */
export async function startBenchPostgres(flags: string[] = []): Promise<BenchPostgres> {
  const given = process.env.BENCH_DATABASE_URL;
  const server = given
    ? { url: given, stop: async () => undefined, source: "BENCH_DATABASE_URL" }
    : {
        ...(await startEmbedded({ durable: true, flags })),
        source: "embedded",
      };
  const client = new pg.Client({ connectionString: server.url });
  await client.connect();
  try {
    const { rows } = await client.query<{ sc: string; fsync: string; version: string }>(
      "SELECT current_setting('synchronous_commit') AS sc, current_setting('fsync') AS fsync, current_setting('server_version') AS version",
    );
    const r = rows[0]!;
    return {
      adminUrl: server.url,
      source: server.source,
      settings: `PostgreSQL ${r.version}, synchronous_commit=${r.sc}, fsync=${r.fsync}`,
      stop: server.stop,
    };
  } finally {
    await client.end();
  }
}

const databaseUrl = (adminUrl: string, name: string): string => {
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  return url.toString();
};

/** Creates database `name` (dropping any of that name), empty or as a copy of `template`; returns its URL. */
export async function createDatabase(adminUrl: string, name: string, template?: string): Promise<string> {
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  try {
    await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    // FILE_COPY: the copy is files and two checkpoints, not the whole database written through the
    // WAL (the default, WAL_LOG), whose flush would otherwise land under the first scenarios.
    await admin.query(`CREATE DATABASE ${name}${template ? ` TEMPLATE ${template} STRATEGY FILE_COPY` : ""}`);
  } finally {
    await admin.end();
  }
  return databaseUrl(adminUrl, name);
}

export async function dropDatabase(adminUrl: string, name: string): Promise<void> {
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  try {
    await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
  } finally {
    await admin.end();
  }
}

/** One statement per table and batch: every column bound as an array of its type. */
const unnestInsert = (r: SeedRows): { text: string; values: unknown[] } => ({
  text:
    `INSERT INTO ${r.table} (${r.columns.map(([name]) => `"${name}"`).join(", ")}) ` +
    `SELECT * FROM unnest(${r.columns.map(([, type], i) => `$${i + 1}::${type}[]`).join(", ")})`,
  values: r.columns.map((_, i) => r.rows.map((row) => row[i])),
});

export interface SeededPostgres extends SeededIds {
  databaseUrl: string;
}

/**
 * Migrates the database at `url` and seeds it as bench/seed.ts seeds SQLite: the benched
 * organization onboarded through the product's op and store, then the bulk rows, then VACUUM ANALYZE
 * (the planner's statistics, as autovacuum would have them on a directory this size) and a
 * checkpoint, so that neither runs under the first scenario.
 */
export async function seedPostgres(
  url: string,
  users: number,
  organizations = 10_000,
  progress: (line: string) => void = () => undefined,
): Promise<SeededPostgres> {
  const started = performance.now();
  await migratePostgres(url);
  const store = postgresStore(url, { poolSize: 1 });
  const made = await store.write(benchOnboarding());
  await store.close();
  const base = seedBase(made, users, organizations);
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    // A seed is re-run, not recovered: its commits need not wait for their flush.
    await client.query("SET synchronous_commit = off");
    let seeded = 0;
    for (const tables of seedBatches(base, 10_000)) {
      await client.query("BEGIN");
      for (const t of tables) await client.query(unnestInsert(t));
      await client.query("COMMIT");
      const n = tables.find((t) => t.table === "users")?.rows.length ?? 0;
      if (n > 0 && ((seeded += n) % 100_000 === 0 || seeded === users))
        progress(`  seeded ${seeded.toLocaleString("en")} users`);
    }
    await client.query("BEGIN");
    for (const [text, params] of seedEpilogue(base)) await client.query(toPositional(text), params);
    await client.query("COMMIT");
    await client.query("VACUUM ANALYZE");
    // A superuser's (the embedded server's); another user's server checkpoints on its own schedule.
    await client.query("CHECKPOINT").catch(() => undefined);
  } finally {
    await client.end();
  }
  return {
    databaseUrl: url,
    directoryId: base.directoryId,
    token: made.token.token,
    groupId: base.groupId,
    users,
    organizations,
    seedSeconds: (performance.now() - started) / 1000,
  };
}

/**
 * The disk's flush time: the median of 20 fdatasync calls after an 8 KiB write, in the temp directory
 * (where the embedded server keeps its data). A durable commit waits for one, so one client writing
 * in sequence commits at most 1000 / this many times a second.
 */
export function fdatasyncMs(): number {
  const dir = mkdtempSync(join(tmpdir(), "bench-fsync-"));
  const fd = openSync(join(dir, "probe"), "w");
  const times: number[] = [];
  try {
    for (let i = 0; i < 20; i++) {
      writeSync(fd, Buffer.alloc(8192, i));
      const started = performance.now();
      fdatasyncSync(fd);
      times.push(performance.now() - started);
    }
  } finally {
    closeSync(fd);
    rmSync(dir, { recursive: true, force: true });
  }
  return times.sort((a, b) => a - b)[10]!;
}

/** The postmaster's pid, when the server runs on this machine and its backends are visible in /proc. */
export async function postmasterPid(url: string): Promise<number | undefined> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    const { rows } = await client.query<{ pid: number }>("SELECT pg_backend_pid() AS pid");
    const stat = readFileSync(`/proc/${rows[0]!.pid}/stat`, "utf8");
    return Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
  } catch {
    return undefined;
  } finally {
    await client.end();
  }
}

/**
 * CPU time (user + system) of the PostgreSQL server, in ms: the postmaster and its children (the
 * backends, the WAL writer, the checkpointer), read from /proc (clock ticks of 10 ms). NaN when the
 * server is not on this machine. A backend that exits between two readings takes its ticks with it,
 * so the pools' connections must be open for the whole measurement (they are: pools keep them).
 */
export function serverCpuMs(postmaster: number | undefined): number {
  if (postmaster === undefined) return NaN;
  let ticks = 0;
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    let stat: string;
    try {
      stat = readFileSync(`/proc/${entry}/stat`, "utf8");
    } catch {
      continue;
    }
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    if (Number(entry) !== postmaster && Number(fields[1]) !== postmaster) continue;
    ticks += Number(fields[11]) + Number(fields[12]);
  }
  return ticks * 10;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  const users = Number(process.argv[2] ?? 100_000);
  const server = await startBenchPostgres();
  try {
    console.error(server.settings);
    const url = await createDatabase(server.adminUrl, "scim_bench_seed");
    const s = await seedPostgres(url, users, 10_000, (line) => console.error(line));
    console.log(JSON.stringify({ ...s, databaseUrl: undefined }));
  } finally {
    await server.stop();
  }
}
