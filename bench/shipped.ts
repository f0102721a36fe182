/**
 * The SCIM server as users run it: `scim-bridge serve` (the compiled CLI) in a process of its own, with
 * everything `serve` mounts (metrics, SCIM request log, per-token rate limiter, pino at info into a
 * file) and its sync worker pushing to the Auth0 emulator (`scim-bridge auth0-emulator`, a third
 * process). autocannon drives it from this process, on 127.0.0.1 only, in bounded runs.
 *
 *   npm run bench -- shipped                       full run: 10k, 100k and 1M users, 10 s a scenario, 60 s mixed load
 *   npx tsx bench/shipped.ts --sizes 10000 --duration 3 --mixed 0     quick check while developing
 *   npx tsx bench/shipped.ts --sizes 1000000 --duration 5 --mixed 60  the million-user directory alone
 *
 * Each size seeds a fresh database (bench/seed.ts: about a minute and 1 GiB of disk for a million
 * users, under the system temp directory, TMPDIR to move it), deleted when the size is done.
 *
 * Options: --sizes a,b,c (users in the benched directory), --organizations N (default 10,000),
 * --duration s (per scenario), --mixed s (mixed load before the second RSS reading; 0 skips),
 * --bare (also serve the bare createApp() from bench/scim.ts and read from it: an extra column),
 * --cpu-prof DIR (serve writes a V8 CPU profile there; summarise with bench/profile-summary.ts),
 * --only REGEX (only the scenarios whose name matches), --cli PATH (another checkout's bin/scim-bridge.js,
 * built, for a before/after pair on the same machine minutes apart).
 */
import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { closeSync, existsSync, openSync, readFileSync, rmSync, statSync } from "node:fs";
import { createRequire } from "node:module";
import { loadavg } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { pathToFileURL } from "node:url";
import { openDatabase } from "../src/directory/database.js";
import { packageRoot } from "../src/paths.js";
import { seedDirectory, type SeededDirectory, type SeededIds } from "./seed.js";

export interface AutocannonResult {
  requests: { average: number; total: number };
  latency: { p50: number; p99: number };
  non2xx: number;
  errors: number;
  timeouts: number;
  statusCodeStats?: Record<string, { count: number }>;
}
export interface AutocannonRequest {
  method?: string;
  path?: string;
  headers?: Record<string, string>;
  body?: string;
  setupRequest?: (req: AutocannonRequest) => AutocannonRequest;
}
type Autocannon = (options: {
  url: string;
  connections: number;
  duration: number;
  requests: AutocannonRequest[];
}) => Promise<AutocannonResult>;
export const autocannon = createRequire(import.meta.url)("autocannon") as Autocannon;

export type ShippedSeed = SeededDirectory;

/** A seeded database (bench/seed.ts) under the system's temp directory; bench/ab.ts seeds through this too. */
export const seedShipped = (users: number, organizations = 10_000): ShippedSeed =>
  seedDirectory(users, organizations, undefined, (line) => console.error(line));

/** Starts a child and waits until `pattern` appears in the file its stdout goes to. */
export async function startLogged(
  args: string[],
  env: NodeJS.ProcessEnv,
  logFile: string,
  pattern: RegExp,
  execArgv: string[] = [],
): Promise<{ child: ChildProcess; match: RegExpExecArray }> {
  const fd = openSync(logFile, "w");
  const child = spawn(process.execPath, [...execArgv, ...args], { env, stdio: ["ignore", fd, "inherit"] });
  closeSync(fd);
  for (const deadline = Date.now() + 60_000; ;) {
    const m = pattern.exec(existsSync(logFile) ? readFileSync(logFile, "utf8") : "");
    if (m) return { child, match: m };
    if (child.exitCode !== null || Date.now() > deadline)
      throw new Error(`${args.join(" ")} did not start:\n${readFileSync(logFile, "utf8").slice(-2000)}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

export async function stop(child: ChildProcess | undefined): Promise<void> {
  if (!child || child.exitCode !== null) return;
  const exited = new Promise((r) => child.once("exit", r));
  child.kill("SIGTERM");
  await Promise.race([exited, new Promise((r) => setTimeout(r, 20_000))]);
  if (child.exitCode === null) child.kill("SIGKILL");
}

/**
 * CPU time (user + system) a process has used, in ms (Linux /proc; clock ticks of 10 ms). Divided by
 * the requests of a scenario it gives the server's CPU per request, a figure that other load on a
 * shared machine disturbs far less than requests per second.
 */
export function cpuMs(pid: number | undefined): number {
  if (pid === undefined) return NaN;
  const fields = readFileSync(`/proc/${pid}/stat`, "utf8")
    .replace(/^.*\) /, "")
    .split(" ");
  return (Number(fields[11]) + Number(fields[12])) * 10;
}

/** Resident set size of a process, in MiB (Linux /proc). */
function rssMiB(pid: number | undefined): number {
  if (pid === undefined) return NaN;
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  return m ? Math.round(Number(m[1]) / 1024) : NaN;
}

export interface Row {
  scenario: string;
  rps: number;
  /** Server CPU ms per request (all of its threads: HTTP, SQLite, worker, checkpoints). */
  cpuPerRequest: number;
  p50: number;
  p99: number;
  failures: number;
}

export interface Scenario {
  name: string;
  connections: number;
  request: AutocannonRequest;
  /** Several request templates, sent in turn by each connection (instead of `request`). */
  sequence?: AutocannonRequest[];
}

const patchOp = (Operations: unknown[]) =>
  JSON.stringify({ schemas: ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], Operations });
const pick = (n: number) => Math.floor(Math.random() * n);

export function readScenarios(s: SeededIds): Scenario[] {
  const base = `/scim/v2/${s.directoryId}`;
  let page = 0;
  return [
    {
      name: "GET /Users/{id}",
      connections: 10,
      request: { setupRequest: (r) => ({ ...r, path: `${base}/Users/u-${pick(s.users)}` }) },
    },
    {
      name: 'GET /Users?filter=userName eq "…"',
      connections: 10,
      request: {
        setupRequest: (r) => ({
          ...r,
          path: `${base}/Users?filter=${encodeURIComponent(`userName eq "USER${pick(s.users)}@bench.example.com"`)}`,
        }),
      },
    },
    {
      // Entra matches on externalId when configured to; an index probe at any size, like userName.
      name: 'GET /Users?filter=externalId eq "…"',
      connections: 10,
      request: {
        setupRequest: (r) => ({
          ...r,
          path: `${base}/Users?filter=${encodeURIComponent(`externalId eq "ext-${pick(s.users)}"`)}`,
        }),
      },
    },
    {
      name: "GET /Users pages of 100 in sequence, as Okta imports (1 connection)",
      connections: 1,
      request: {
        setupRequest: (r) => ({
          ...r,
          path: `${base}/Users?startIndex=${(page++ % Math.floor(s.users / 100)) * 100 + 1}&count=100`,
        }),
      },
    },
  ];
}

export function writeScenarios(s: SeededIds, run: string): Scenario[] {
  const base = `/scim/v2/${s.directoryId}`;
  let created = 0;
  let joined = 0;
  const post = (): AutocannonRequest => ({
    method: "POST",
    setupRequest: (r) => {
      const userName = `new-${run}-${++created}@bench.example.com`;
      return {
        ...r,
        path: `${base}/Users`,
        body: JSON.stringify({ userName, active: true, emails: [{ value: userName, type: "work" }] }),
      };
    },
  });
  return [
    {
      // Users outside the group join one per request; every request is a real one-member change.
      name: "PATCH /Groups/{id} adding 1 member to the big group",
      connections: 10,
      request: {
        method: "PATCH",
        setupRequest: (r) => {
          const i = joined++;
          const pool = Math.floor(s.users / 2);
          const member = `u-${pool + (i % pool)}`;
          const op =
            Math.floor(i / pool) % 2 === 0
              ? { op: "add", path: "members", value: [{ value: member }] }
              : { op: "remove", path: `members[value eq "${member}"]` };
          return { ...r, path: `${base}/Groups/${s.groupId}`, body: patchOp([op]) };
        },
      },
    },
    { name: "POST /Users, one client in sequence (as Entra pushes)", connections: 1, request: post() },
    { name: "POST /Users, 10 concurrent clients", connections: 10, request: post() },
  ];
}

export async function measure(
  origin: string,
  s: SeededIds,
  scenario: Scenario,
  duration: number,
  label: string,
  pid?: number,
): Promise<Row> {
  const cpuBefore = cpuMs(pid);
  const r = await autocannon({
    url: origin,
    connections: scenario.connections,
    duration,
    requests: (scenario.sequence ?? [scenario.request]).map((request) => ({
      method: "GET",
      ...request,
      headers: { authorization: `Bearer ${s.token}`, "content-type": "application/scim+json" },
    })),
  });
  const failures = r.non2xx + r.errors + r.timeouts;
  const rps = Math.round(r.requests.average);
  const cpuPerRequest = Math.round(((cpuMs(pid) - cpuBefore) / Math.max(1, r.requests.average * duration)) * 100) / 100;
  console.error(
    `  ${label} ${s.users} users  ${scenario.name}: ${rps} req/s, p50 ${r.latency.p50} ms, p99 ${r.latency.p99} ms, failures ${failures}, server CPU ${cpuPerRequest} ms/request`,
  );
  return { scenario: scenario.name, rps, cpuPerRequest, p50: r.latency.p50, p99: r.latency.p99, failures };
}

/**
 * Mixed load (what an IdP sync plus a console looks like): each connection sends, in turn, 4 reads by
 * id, 3 userName filters, 2 user PATCHes and 1 member add. A fixed sequence of request templates:
 * autocannon keeps one template's method and body, so one template must not switch between them.
 */
async function mixed(origin: string, s: ShippedSeed, seconds: number, pid?: number): Promise<Row> {
  const base = `/scim/v2/${s.directoryId}`;
  let n = 0;
  const byId: AutocannonRequest = {
    method: "GET",
    setupRequest: (r) => ({ ...r, path: `${base}/Users/u-${pick(s.users)}` }),
  };
  const byFilter: AutocannonRequest = {
    method: "GET",
    setupRequest: (r) => ({
      ...r,
      path: `${base}/Users?filter=${encodeURIComponent(`userName eq "user${pick(s.users)}@bench.example.com"`)}`,
    }),
  };
  const patchUser: AutocannonRequest = {
    method: "PATCH",
    setupRequest: (r) => {
      const i = pick(s.users);
      return {
        ...r,
        path: `${base}/Users/u-${i}`,
        body: patchOp([{ op: "replace", path: "displayName", value: `User ${i} ${++n}` }]),
      };
    },
  };
  const addMember: AutocannonRequest = {
    method: "PATCH",
    setupRequest: (r) => ({
      ...r,
      path: `${base}/Groups/${s.groupId}`,
      body: patchOp([{ op: "add", path: "members", value: [{ value: `u-${pick(s.users)}` }] }]),
    }),
  };
  return measure(
    origin,
    s,
    {
      name: `mixed: 40% GET by id, 30% userName filter, 20% PATCH user, 10% member add (${seconds} s)`,
      connections: 10,
      request: byId,
      sequence: [byId, byId, byId, byId, byFilter, byFilter, byFilter, patchUser, patchUser, addMember],
    },
    seconds,
    "shipped",
    pid,
  );
}

/** `serve`'s environment: info logs, the emulator as Auth0, the rate limiter on but out of the way. */
export function serveEnv(dbPath: string, managementUrl: string): NodeJS.ProcessEnv {
  return {
    ...process.env,
    DATABASE_URL: `sqlite:${dbPath}`,
    PORT: "0",
    LOG_LEVEL: "info",
    AUTH0_DOMAIN: "bench.example.auth0.com",
    AUTH0_CLIENT_ID: "bench",
    AUTH0_CLIENT_SECRET: "bench",
    AUTH0_MANAGEMENT_URL: managementUrl,
    AUTH0_PLAN: "enterprise",
    // The limiter stays in the pipeline (its cost is measured) but at 100,000 req/s per token: at the
    // default 50/s every scenario would measure 429s, not the server.
    SCIM_RATE_LIMIT_PER_SECOND: "100000",
  };
}

export interface SizeResult {
  seed: ShippedSeed;
  shipped: Row[];
  bare: Row[];
  /** Seconds from spawning `serve` to its listening line (migrations and startup work included). */
  startSeconds: number;
  /** Size of the database file after seeding, in MiB. */
  dbMiB: number;
  rssAfterStart: number;
  /** After the read scenarios (every page of the walk read once through the page cache). */
  rssAfterReads: number;
  rssAfterMixed?: number;
  jobsDone: number;
  jobsOpen: number;
  /** 1-minute load average before seeding and after the last scenario: other work on the machine. */
  loadBefore: number;
  loadAfter: number;
}

export interface ShippedOptions {
  sizes: number[];
  organizations: number;
  duration: number;
  mixedSeconds: number;
  bare: boolean;
  cpuProfDir?: string;
  /** The CLI to run (default this tree's bin/scim-bridge.js): another checkout's, for a before/after pair. */
  cli: string;
  /** Runs only the scenarios whose name matches (for investigating one figure). */
  only?: RegExp;
}

async function runSize(users: number, o: ShippedOptions): Promise<SizeResult> {
  console.error(
    `bench shipped: seeding ${users.toLocaleString("en")} users and ${o.organizations.toLocaleString("en")} organizations…`,
  );
  const loadBefore = loadavg()[0]!;
  const s = seedShipped(users, o.organizations);
  const dbMiB = Math.round(statSync(s.dbPath).size / 2 ** 20);
  console.error(`  seeded in ${s.seedSeconds.toFixed(1)} s (${dbMiB} MiB), load average ${loadavg()[0]!.toFixed(2)}`);
  const dir = join(s.dbPath, "..");
  let emulator: ChildProcess | undefined;
  let bridge: ChildProcess | undefined;
  let bare: ChildProcess | undefined;
  try {
    const emu = await startLogged(
      [o.cli, "auth0-emulator", "--port", "0", "--plan", "enterprise"],
      process.env,
      join(dir, "emulator.log"),
      /AUTH0_MANAGEMENT_URL=(\S+)/,
    );
    emulator = emu.child;
    const spawned = performance.now();
    const served = await startLogged(
      [o.cli, "serve"],
      serveEnv(s.dbPath, emu.match[1]!),
      join(dir, "serve.log"),
      /"port":(\d+)/,
      o.cpuProfDir ? ["--cpu-prof", "--cpu-prof-dir", o.cpuProfDir] : [],
    );
    bridge = served.child;
    const origin = `http://127.0.0.1:${served.match[1]}`;
    const startSeconds = (performance.now() - spawned) / 1000;
    // The start's background work (the first tenant check, the worker's first poll) ends before the
    // first scenario, so that it is not billed to it.
    for (let waited = 0; waited < 30_000; waited += 500) {
      const before = cpuMs(bridge.pid);
      await new Promise((r) => setTimeout(r, 500));
      if (cpuMs(bridge.pid) - before < 50) break;
    }
    const rssAfterStart = rssMiB(bridge.pid);
    console.error(`  serve started in ${startSeconds.toFixed(1)} s, RSS ${rssAfterStart} MiB`);
    let bareOrigin: string | undefined;
    if (o.bare) {
      const b = await startLogged(
        ["--import", "tsx", join(packageRoot, "bench", "scim.ts"), "serve", s.dbPath, "--print"],
        process.env,
        join(dir, "bare.log"),
        /origin (\S+)/,
      );
      bare = b.child;
      bareOrigin = b.match[1];
    }
    const shippedRows: Row[] = [];
    const bareRows: Row[] = [];
    // Reads first, with an empty outbox; then the writes, which the worker syncs meanwhile.
    const chosen = (list: Scenario[]) => list.filter((sc) => !o.only || o.only.test(sc.name));
    for (const sc of chosen(readScenarios(s))) {
      shippedRows.push(await measure(origin, s, sc, o.duration, "shipped", bridge.pid));
      if (bareOrigin) bareRows.push(await measure(bareOrigin, s, sc, o.duration, "bare", bare?.pid));
    }
    const rssAfterReads = rssMiB(bridge.pid);
    console.error(`  RSS after the reads ${rssAfterReads} MiB`);
    for (const sc of chosen(writeScenarios(s, "shipped")))
      shippedRows.push(await measure(origin, s, sc, o.duration, "shipped", bridge.pid));
    let rssAfterMixed: number | undefined;
    if (o.mixedSeconds > 0) {
      shippedRows.push(await mixed(origin, s, o.mixedSeconds, bridge.pid));
      rssAfterMixed = rssMiB(bridge.pid);
      console.error(`  RSS after mixed load ${rssAfterMixed} MiB`);
    }
    await stop(bridge);
    bridge = undefined;
    const { sqlite, close } = openDatabase(`sqlite:${s.dbPath}`);
    const counts = sqlite
      .prepare("SELECT sum(state = 'done') AS done, sum(state IN ('pending', 'running')) AS open FROM jobs")
      .get() as { done: number | null; open: number | null };
    close();
    return {
      seed: s,
      shipped: shippedRows,
      bare: bareRows,
      startSeconds,
      dbMiB,
      rssAfterStart,
      rssAfterReads,
      rssAfterMixed,
      jobsDone: counts.done ?? 0,
      jobsOpen: counts.open ?? 0,
      loadBefore,
      loadAfter: loadavg()[0]!,
    };
  } finally {
    await stop(bridge);
    await stop(bare);
    await stop(emulator);
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * Compiles the tree (tsc, as `npm ci` does through the prepare script), so that a bench runs the
 * product as shipped: bin/scim-bridge.js on dist/. BENCH_NO_BUILD=1 skips it (dist is current).
 */
export function buildShipped(bench: string): void {
  if (process.env.BENCH_NO_BUILD) return;
  console.error(`bench ${bench}: building (tsc)…`);
  execFileSync(
    process.execPath,
    [join(packageRoot, "node_modules", "typescript", "bin", "tsc"), "-p", join(packageRoot, "tsconfig.build.json")],
    { stdio: "inherit" },
  );
}

export async function runShipped(o: ShippedOptions): Promise<SizeResult[]> {
  buildShipped("shipped");
  const results: SizeResult[] = [];
  for (const size of o.sizes) results.push(await runSize(size, o));
  return results;
}

const fmt = (n: number) => n.toLocaleString("en");

export function shippedSection(results: SizeResult[], o: ShippedOptions): string {
  const names = results[0]!.shipped.map((r) => r.scenario);
  const head = results.map((r) => `${fmt(r.seed.users)}: req/s | CPU ms/req | p50 | p99 | failed`).join(" | ");
  const lines = names.map((name) => {
    const cells = results.map((r) => {
      const row = r.shipped.find((x) => x.scenario === name);
      const bare = r.bare.find((x) => x.scenario === name);
      return row
        ? `${fmt(row.rps)}${bare ? ` (bare ${fmt(bare.rps)})` : ""} | ${row.cpuPerRequest}${bare ? ` (bare ${bare.cpuPerRequest})` : ""} | ${row.p50} | ${row.p99} | ${row.failures}`
        : "– | – | – | – | –";
    });
    return `| ${name} | ${cells.join(" | ")} |`;
  });
  const rss = results.map(
    (r) =>
      `| ${fmt(r.seed.users)} | ${r.seed.seedSeconds.toFixed(1)} s | ${fmt(r.dbMiB)} MiB | ${r.startSeconds.toFixed(1)} s | ${r.rssAfterStart} MiB | ${r.rssAfterReads} MiB | ${r.rssAfterMixed ?? "–"}${r.rssAfterMixed ? " MiB" : ""} | ${fmt(r.jobsDone)} done, ${fmt(r.jobsOpen)} open | ${r.loadBefore.toFixed(2)} / ${r.loadAfter.toFixed(2)} |`,
  );
  return [
    `\`scim-bridge serve\` (compiled) in its own process, as deployed: metrics, SCIM request log, per-token rate limiter, pino at info into a file, ` +
      "and the sync worker pushing to `scim-bridge auth0-emulator` (enterprise plan limits) in a third process. autocannon drives it from a fourth, " +
      `on 127.0.0.1, ${o.duration} s a scenario. Each size is a fresh database holding ${fmt(o.organizations)} organizations (each with a directory and a token); ` +
      "the benched directory holds the users shown and one group with half of them. bench/seed.ts writes it straight into SQLite (prepared statements, " +
      "100,000 users a transaction, no journal or fsync while seeding): the rows `POST /Users` and a member add would write, with the directory's counters, " +
      "then `serve` starts on it. Its page cache is the default, 32 MiB per connection (SQLITE_CACHE_MIB), no file mapping. " +
      "GET by id and the userName filter pick users at random over the whole directory; the page walk goes from the first page on, as Okta's import does. " +
      "Reads run first, with an empty outbox; the writes then enqueue " +
      "sync jobs that the worker pushes to the emulator meanwhile. Every write is durable before its answer (WAL, synchronous=FULL, group commit). " +
      "The rate limiter is on, at 100,000 req/s per token instead of the default: at the default every scenario would measure 429s. " +
      (results[0]!.bare.length > 0
        ? '"bare" is the same read served by a bare `createApp({ db, publicUrl })` (bench/scim.ts), for comparison only. '
        : "") +
      '"failed" counts non-2xx answers, errors and timeouts. "CPU ms/req" is the server process\'s CPU time (all its threads) during the scenario divided by the requests it answered: ' +
      "other load on a shared machine lowers req/s far more than it changes this figure.",
    "",
    `| scenario | ${head} |`,
    `|---|${results.map(() => "---:|---:|---:|---:|---:|").join("")}`,
    ...lines,
    "",
    "| users | seed time | database | serve start | RSS after start | RSS after the reads | RSS after mixed load | sync jobs at the end | load average before / after |",
    "|---:|---:|---:|---:|---:|---:|---:|---|---:|",
    ...rss,
    "",
    "Targets (this machine, as shipped): GET by id ≥ 5,000 req/s and userName filter ≥ 4,000 req/s at 10k and at 1M users, p99 ≤ 10 ms; " +
      "POST /Users from one client in sequence ≥ 1,000/s; ≥ 3,000 durable writes/s with 10 concurrent clients; RSS flat with directory size.",
  ].join("\n");
}

export function parseShippedArgs(argv: string[]): ShippedOptions {
  const { values } = parseArgs({
    args: argv,
    options: {
      sizes: { type: "string", default: "10000,100000,1000000" },
      organizations: { type: "string", default: "10000" },
      duration: { type: "string", default: "10" },
      mixed: { type: "string", default: "60" },
      bare: { type: "boolean", default: false },
      "cpu-prof": { type: "string" },
      only: { type: "string" },
      cli: { type: "string", default: join(packageRoot, "bin", "scim-bridge.js") },
    },
    allowPositionals: true,
  });
  return {
    sizes: values.sizes.split(",").map(Number),
    organizations: Number(values.organizations),
    duration: Number(values.duration),
    mixedSeconds: Number(values.mixed),
    bare: values.bare,
    cli: values.cli,
    ...(values["cpu-prof"] ? { cpuProfDir: values["cpu-prof"] } : {}),
    ...(values.only ? { only: new RegExp(values.only, "i") } : {}),
  };
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  const o = parseShippedArgs(process.argv.slice(2));
  console.log(shippedSection(await runShipped(o), o));
}
