/**
 * The SCIM server as shipped, on PostgreSQL beside SQLite: the scenarios of bench/shipped.ts (same
 * requests, same seeded rows) against `scim-bridge serve` (compiled, every middleware, its sync
 * worker pushing to `scim-bridge auth0-emulator`) on SQLite with one instance, and on PostgreSQL with
 * one and with N instances on one database.
 *
 *   npm run bench -- shipped-postgres                        100,000 users, 8 s a scenario, sqlite:1, postgres:1, postgres:3
 *   npx tsx bench/shipped-postgres.ts --runs postgres:1 --duration 3 --only POST     one figure while developing
 *   npx tsx bench/shipped-postgres.ts --runs postgres:1 --only POST --cpu-prof /tmp/prof   then bench/profile-summary.ts
 *
 * PostgreSQL is bench/postgres.ts's: an embedded server with fsync and synchronous_commit on, or
 * BENCH_DATABASE_URL. It is seeded once (bench/seed.ts's rows), and each PostgreSQL run gets its own
 * copy of that database (CREATE DATABASE … TEMPLATE), so every run starts from the same rows.
 *
 * With N instances each scenario's connections are split across them (10 → 4, 3, 3; a scenario of
 * one connection runs on the first instance only), one autocannon per instance, all at once, from
 * this process: req/s are summed, p50 and p99 are the worst instance's, and CPU per request is the
 * sum over every `serve` process (and over the PostgreSQL server's processes) divided by all the
 * requests answered.
 *
 * Options: --users N (default 100,000), --organizations N (10,000), --duration s (8), --runs
 * dialect:instances,… (sqlite:1,postgres:1,postgres:3), --only REGEX, --cpu-prof DIR (every serve
 * writes a V8 CPU profile there), --pool N (DATABASE_POOL_SIZE of each instance; default the product's), --statements (the
 * embedded server loads pg_stat_statements; the statements that took its time are printed per run).
 */
import type { ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { pathToFileURL } from "node:url";
import pg from "pg";
import { packageRoot } from "../src/paths.js";
import {
  createDatabase,
  dropDatabase,
  fdatasyncMs,
  postmasterPid,
  seedPostgres,
  serverCpuMs,
  startBenchPostgres,
  type BenchPostgres,
  type SeededPostgres,
} from "./postgres.js";
import type { SeededIds } from "./seed.js";
import {
  autocannon,
  buildShipped,
  cpuMs,
  readScenarios,
  seedShipped,
  serveEnv,
  startLogged,
  stop,
  writeScenarios,
  type Scenario,
  type ShippedSeed,
} from "./shipped.js";

export interface RunSpec {
  dialect: "sqlite" | "postgres";
  instances: number;
}

export interface ShippedPostgresOptions {
  users: number;
  organizations: number;
  duration: number;
  runs: RunSpec[];
  only?: RegExp;
  cpuProfDir?: string;
  poolSize?: number;
  /** Loads pg_stat_statements into the embedded server and prints the statements that took its time. */
  statements?: boolean;
  cli: string;
}

export interface SpreadRow {
  scenario: string;
  rps: number;
  p50: number;
  p99: number;
  /** CPU ms per request of every `serve` process together. */
  serveCpu: number;
  /** CPU ms per request of the PostgreSQL server (NaN on SQLite, or when it is not on this machine). */
  dbCpu: number;
  failures: number;
}

export interface RunResult {
  spec: RunSpec;
  rows: SpreadRow[];
  seedSeconds: number;
  loadBefore: number;
  loadAfter: number;
  jobs: string;
}

const label = (spec: RunSpec) =>
  `${spec.dialect === "sqlite" ? "SQLite" : "PostgreSQL"}, ${spec.instances} instance${spec.instances > 1 ? "s" : ""}`;

/** Connections of a scenario split across instances as evenly as they go: 10 over 3 is 4, 3, 3. */
export const splitConnections = (connections: number, instances: number): number[] =>
  Array.from(
    { length: instances },
    (_, i) => Math.floor(connections / instances) + (i < connections % instances ? 1 : 0),
  );

async function measureSpread(
  origins: string[],
  pids: (number | undefined)[],
  postmaster: number | undefined,
  s: SeededIds,
  scenario: Scenario,
  duration: number,
  tag: string,
): Promise<SpreadRow> {
  const serveCpu = () => pids.reduce<number>((sum, pid) => sum + cpuMs(pid), 0);
  const cpuBefore = serveCpu();
  const dbBefore = serverCpuMs(postmaster);
  const results = await Promise.all(
    splitConnections(scenario.connections, origins.length)
      .map((connections, i) => ({ connections, origin: origins[i]! }))
      .filter((x) => x.connections > 0)
      .map((x) =>
        autocannon({
          url: x.origin,
          connections: x.connections,
          duration,
          requests: (scenario.sequence ?? [scenario.request]).map((request) => ({
            method: "GET",
            ...request,
            headers: { authorization: `Bearer ${s.token}`, "content-type": "application/scim+json" },
          })),
        }),
      ),
  );
  const requests = Math.max(
    1,
    results.reduce((sum, r) => sum + r.requests.total, 0),
  );
  const perRequest = (ms: number) => Math.round((ms / requests) * 100) / 100;
  const row: SpreadRow = {
    scenario: scenario.name,
    rps: Math.round(results.reduce((sum, r) => sum + r.requests.average, 0)),
    p50: Math.max(...results.map((r) => r.latency.p50)),
    p99: Math.max(...results.map((r) => r.latency.p99)),
    serveCpu: perRequest(serveCpu() - cpuBefore),
    dbCpu: perRequest(serverCpuMs(postmaster) - dbBefore),
    failures: results.reduce((sum, r) => sum + r.non2xx + r.errors + r.timeouts, 0),
  };
  console.error(
    `  ${tag} ${scenario.name}: ${row.rps} req/s, p50 ${row.p50} ms, p99 ${row.p99} ms, failures ${row.failures}, CPU ms/request serve ${row.serveCpu}, PostgreSQL ${row.dbCpu}`,
  );
  return row;
}

/** Waits until the processes are idle (start-up work, the worker's first poll), so that it is not billed to a scenario. */
async function settle(pids: (number | undefined)[]): Promise<void> {
  const total = () => pids.reduce<number>((sum, pid) => sum + cpuMs(pid), 0);
  for (let waited = 0; waited < 30_000; waited += 500) {
    const before = total();
    await new Promise((r) => setTimeout(r, 500));
    if (total() - before < 50 * pids.length) return;
  }
}

/** pg_stat_statements (loaded by --statements): counting starts after start-up. */
async function resetStatements(databaseUrl: string): Promise<void> {
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    await client.query("CREATE EXTENSION IF NOT EXISTS pg_stat_statements");
    await client.query("SELECT pg_stat_statements_reset()");
  } finally {
    await client.end();
  }
}

/** The statements that took the server's time during the run, for finding a write's round trips and slow plans. */
async function printStatements(databaseUrl: string): Promise<void> {
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    const { rows } = await client.query<{ calls: string; total: number; mean: number; query: string }>(
      "SELECT calls, total_exec_time AS total, mean_exec_time AS mean, query FROM pg_stat_statements ORDER BY total_exec_time DESC LIMIT 25",
    );
    for (const r of rows)
      console.error(
        `    ${r.calls.padStart(7)} calls ${r.total.toFixed(0).padStart(7)} ms total ${r.mean.toFixed(3).padStart(8)} ms mean  ${r.query.replace(/\s+/g, " ").slice(0, 160)}`,
      );
  } finally {
    await client.end();
  }
}

async function jobCounts(databaseUrl: string): Promise<string> {
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    const { rows } = await client.query<{ done: string | null; open: string | null }>(
      "SELECT sum((state = 'done')::int) AS done, sum((state IN ('pending', 'running'))::int) AS open FROM jobs",
    );
    return `${Number(rows[0]?.done ?? 0).toLocaleString("en")} done, ${Number(rows[0]?.open ?? 0).toLocaleString("en")} open`;
  } finally {
    await client.end();
  }
}

async function runOne(
  spec: RunSpec,
  o: ShippedPostgresOptions,
  seeds: { sqlite?: ShippedSeed; postgres?: SeededPostgres; server?: BenchPostgres },
  n: number,
): Promise<RunResult> {
  const tag = label(spec);
  console.error(`bench shipped-postgres: ${tag}…`);
  const loadBefore = loadavg()[0]!;
  const dir = mkdtempSync(join(tmpdir(), "bench-shipped-pg-"));
  let databaseUrl: string;
  let seed: SeededIds;
  let dbName: string | undefined;
  if (spec.dialect === "sqlite") {
    // A fresh SQLite seed per run: the writes of an earlier run would change it.
    seeds.sqlite = seedShipped(o.users, o.organizations);
    seed = seeds.sqlite;
    databaseUrl = `sqlite:${seeds.sqlite.dbPath}`;
  } else {
    dbName = `scim_bench_run_${n}`;
    databaseUrl = await createDatabase(seeds.server!.adminUrl, dbName, "scim_bench_seed");
    seed = seeds.postgres!;
  }
  const children: ChildProcess[] = [];
  let emulator: ChildProcess | undefined;
  try {
    const emu = await startLogged(
      [o.cli, "auth0-emulator", "--port", "0", "--plan", "enterprise"],
      process.env,
      join(dir, "emulator.log"),
      /AUTH0_MANAGEMENT_URL=(\S+)/,
    );
    emulator = emu.child;
    const origins: string[] = [];
    for (let i = 0; i < spec.instances; i++) {
      const served = await startLogged(
        [o.cli, "serve"],
        {
          ...serveEnv("", emu.match[1]!),
          DATABASE_URL: databaseUrl,
          ...(o.poolSize ? { DATABASE_POOL_SIZE: String(o.poolSize) } : {}),
        },
        join(dir, `serve-${i}.log`),
        /"port":(\d+)/,
        o.cpuProfDir ? ["--cpu-prof", "--cpu-prof-dir", o.cpuProfDir] : [],
      );
      children.push(served.child);
      origins.push(`http://127.0.0.1:${served.match[1]}`);
    }
    const pids = children.map((c) => c.pid);
    await settle(pids);
    const postmaster = spec.dialect === "postgres" ? await postmasterPid(databaseUrl) : undefined;
    if (o.statements && postmaster !== undefined) await resetStatements(databaseUrl);
    const rows: SpreadRow[] = [];
    const plan = [...readScenarios(seed), ...writeScenarios(seed, `r${n}`)].filter(
      (sc) => !o.only || o.only.test(sc.name),
    );
    for (const sc of plan) rows.push(await measureSpread(origins, pids, postmaster, seed, sc, o.duration, tag));
    if (o.statements && spec.dialect === "postgres") await printStatements(databaseUrl);
    // The worker's backlog at the end of the writes: what it had not pushed to the emulator yet.
    const jobs = spec.dialect === "postgres" ? await jobCounts(databaseUrl) : "";
    return {
      spec,
      rows,
      seedSeconds: spec.dialect === "sqlite" ? seed.seedSeconds : seeds.postgres!.seedSeconds,
      loadBefore,
      loadAfter: loadavg()[0]!,
      jobs,
    };
  } finally {
    for (const c of children) await stop(c);
    await stop(emulator);
    if (dbName) await dropDatabase(seeds.server!.adminUrl, dbName);
    if (spec.dialect === "sqlite" && seeds.sqlite)
      rmSync(join(seeds.sqlite.dbPath, ".."), { recursive: true, force: true });
    // BENCH_KEEP_LOGS=1 keeps the serve and emulator logs, for a failure's cause.
    if (process.env.BENCH_KEEP_LOGS) console.error(`  logs kept in ${dir}`);
    else rmSync(dir, { recursive: true, force: true });
  }
}

export interface ShippedPostgresResult {
  runs: RunResult[];
  /** fdatasync's median on this disk before and after the runs, in ms. */
  flushMs: [number, number];
  settings: string;
  source: string;
}

export async function runShippedPostgres(o: ShippedPostgresOptions): Promise<ShippedPostgresResult> {
  buildShipped("shipped-postgres");
  const seeds: { sqlite?: ShippedSeed; postgres?: SeededPostgres; server?: BenchPostgres } = {};
  const flushBefore = fdatasyncMs();
  const needsPostgres = o.runs.some((r) => r.dialect === "postgres");
  if (needsPostgres) {
    seeds.server = await startBenchPostgres(o.statements ? ["-c", "shared_preload_libraries=pg_stat_statements"] : []);
    console.error(`bench shipped-postgres: ${seeds.server.settings}; seeding ${o.users.toLocaleString("en")} users…`);
  }
  try {
    if (seeds.server) {
      const url = await createDatabase(seeds.server.adminUrl, "scim_bench_seed");
      seeds.postgres = await seedPostgres(url, o.users, o.organizations, (line) => console.error(line));
      console.error(`  seeded in ${seeds.postgres.seedSeconds.toFixed(1)} s`);
    }
    const runs: RunResult[] = [];
    for (const [i, spec] of o.runs.entries()) runs.push(await runOne(spec, o, seeds, i));
    return {
      runs,
      flushMs: [flushBefore, fdatasyncMs()],
      settings: seeds.server?.settings ?? "",
      source: seeds.server?.source ?? "",
    };
  } finally {
    if (seeds.server) {
      await dropDatabase(seeds.server.adminUrl, "scim_bench_seed").catch(() => undefined);
      await seeds.server.stop();
    }
  }
}

const fmt = (n: number) => n.toLocaleString("en");
// A backend that exits during the scenario takes its CPU ticks with it: the difference can go negative.
const cpuCell = (r: SpreadRow) =>
  Number.isNaN(r.dbCpu) ? `${r.serveCpu}` : `${r.serveCpu} + ${r.dbCpu < 0 ? "n/a" : r.dbCpu}`;

export function shippedPostgresSection(result: ShippedPostgresResult, o: ShippedPostgresOptions): string {
  const { runs } = result;
  const names = [...new Set(runs.flatMap((r) => r.rows.map((x) => x.scenario)))];
  const head = runs.map((r) => `${label(r.spec)}: req/s | p99 ms | CPU ms/req`).join(" | ");
  const lines = names.map((name) => {
    const cells = runs.map((r) => {
      const row = r.rows.find((x) => x.scenario === name);
      if (!row) return "– | – | –";
      return `${fmt(row.rps)}${row.failures > 0 ? ` (${fmt(row.failures)} failed)` : ""} | ${row.p99} | ${cpuCell(row)}`;
    });
    return `| ${name} | ${cells.join(" | ")} |`;
  });
  const runLines = runs.map(
    (r) =>
      `| ${label(r.spec)} | ${r.seedSeconds.toFixed(1)} s | ${r.jobs || "–"} | ${r.loadBefore.toFixed(2)} / ${r.loadAfter.toFixed(2)} |`,
  );
  return [
    `The scenarios of "SCIM server as shipped" (bench/shipped-postgres.ts) at ${fmt(o.users)} users in a database of ${fmt(o.organizations)} organizations, ` +
      `${o.duration} s a scenario: \`scim-bridge serve\` (compiled, every middleware, its sync worker pushing to \`scim-bridge auth0-emulator\`) ` +
      "on SQLite with one instance, and on one PostgreSQL database with one and with three instances. " +
      (result.settings
        ? `PostgreSQL: ${result.source === "embedded" ? "an embedded server on this machine" : "BENCH_DATABASE_URL"}, ${result.settings}: ` +
          "every write is acknowledged after its commit is flushed to disk, with its audit entry and sync job in the same transaction, as on SQLite (WAL, synchronous=FULL). "
        : "") +
      "Both are seeded with the same rows (bench/seed.ts's; on PostgreSQL one bulk INSERT a table and batch, then VACUUM ANALYZE), " +
      "and each PostgreSQL run starts from its own copy of the seeded database. " +
      "With three instances the scenario's connections are split across them (10 as 4, 3, 3; one connection runs on the first instance only), " +
      "one autocannon per instance, all from one process: req/s are summed and p99 is the worst instance's. " +
      '"CPU ms/req" is the CPU time of every `serve` process (all threads: HTTP, the worker) during the scenario, then "+" that of the PostgreSQL server (every backend, the WAL writer), ' +
      "divided by the requests answered. The machine's cores bound the sum: with 2 cores, autocannon, three Node processes and PostgreSQL share them, " +
      "so three instances cannot answer more reads than one unless one instance leaves a core idle; the CPU per request shows what each request costs " +
      "and is the steadier figure on a shared machine. " +
      "SQLite's reads run in serve's read pool (worker threads) and its writes are group-committed on one connection; PostgreSQL's writes are one transaction each on the instance's pool " +
      "(DATABASE_POOL_SIZE, default 10) and the server groups their WAL flushes.",
    "",
    `| scenario | ${head} |`,
    `|---|${runs.map(() => "---:|---:|---:|").join("")}`,
    ...lines,
    "",
    "| run | seed time | sync jobs at the end of the run | load average before / after |",
    "|---|---:|---|---:|",
    ...runLines,
    "",
    '"(N failed)": answers other than 2xx, errors and timeouts. ' +
      "Earlier runs of this section showed a PostgreSQL instance answering every request 503 after its first scenario: autocannon hangs up on the requests in flight at a scenario's end, " +
      "and those still in the token check's store read then took a slot of the per-directory concurrency limit that was never handed back, " +
      'so after a few scenario ends every request of the directory waited out its 5 s budget (the pool\'s idle connections then closed: "n/a"). Fixed in src/http/rate-limit.ts.',
    "",
    "Targets: reads scale with instances (up to the cores: see CPU ms/req); durable writes ≥ 500/s on one PostgreSQL instance, " +
      "from one client in sequence and from 10 concurrent clients.",
    "",
    `What limits PostgreSQL here. (1) Round trips: node-postgres sends a statement and waits for its answer (no pipelining), and each round trip costs ` +
      "a socket write and read on both sides, which on a loaded host costs more CPU than the statement (in a CPU profile of serve under ten posting clients, " +
      "socket writes were a third of its busy time). A GET by id is 1 round trip (the user with the credential epoch its cached token is confirmed against, outside a transaction: " +
      "readCommitted) and a POST /Users 2 (BEGIN sent with the insert, made unless a migrated user could be the person and only at the epoch its cached token is confirmed against, whose unique index decides the userName; " +
      "and the emails, audit entry, job and directory counters sent together with the COMMIT: pgUnit in src/directory/sql.ts). " +
      `(2) A durable COMMIT waits for its WAL flush: fdatasync on this disk took ${result.flushMs[0].toFixed(1)} ms (median) before the runs and ${result.flushMs[1].toFixed(1)} ms after, ` +
      `so one client writing in sequence commits at most about ${Math.round(1000 / Math.min(...result.flushMs))} times a second here, whatever the code does. ` +
      "(3) Concurrent writes to one directory each update the directory's row (counters, generation) and hold that row lock until their commit is flushed; " +
      "the update is the last statement of a write, so writers queue for each other's commit only (SQLite's group commit shares one flush among a turn's writes).",
  ].join("\n");
}

export function parseShippedPostgresArgs(argv: string[]): ShippedPostgresOptions {
  const { values } = parseArgs({
    args: argv,
    options: {
      users: { type: "string", default: "100000" },
      organizations: { type: "string", default: "10000" },
      duration: { type: "string", default: "8" },
      runs: { type: "string", default: "sqlite:1,postgres:1,postgres:3" },
      only: { type: "string" },
      "cpu-prof": { type: "string" },
      pool: { type: "string" },
      statements: { type: "boolean", default: false },
      cli: { type: "string", default: join(packageRoot, "bin", "scim-bridge.js") },
    },
    allowPositionals: true,
  });
  const runs = values.runs.split(",").map((run): RunSpec => {
    const [dialect, instances] = run.split(":");
    if (dialect !== "sqlite" && dialect !== "postgres") throw new Error(`--runs: unknown dialect "${dialect}"`);
    const n = Number(instances ?? 1);
    if (!Number.isInteger(n) || n < 1) throw new Error(`--runs: "${run}" needs a number of instances`);
    if (dialect === "sqlite" && n > 1)
      throw new Error("--runs: several instances are PostgreSQL's (one SQLite file has one serving process)");
    return { dialect, instances: n };
  });
  return {
    users: Number(values.users),
    organizations: Number(values.organizations),
    duration: Number(values.duration),
    runs,
    cli: values.cli,
    ...(values.only ? { only: new RegExp(values.only, "i") } : {}),
    ...(values["cpu-prof"] ? { cpuProfDir: values["cpu-prof"] } : {}),
    ...(values.pool ? { poolSize: Number(values.pool) } : {}),
    statements: values.statements,
  };
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  const o = parseShippedPostgresArgs(process.argv.slice(2));
  console.log(shippedPostgresSection(await runShippedPostgres(o), o));
}
