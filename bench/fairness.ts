/**
 * Fairness benchmark: while one tenant ("noisy") sends the most expensive requests the limits allow,
 * at its rate limit, how long do another tenant's GET /Users/{id} and the post-login hook take?
 * Target: p99 ≤ 50 ms for both (fairnessTargets). The server runs in a child process on 127.0.0.1 with the production
 * pipeline (per-directory SCIM rate limit, query budgets, post-login hook); the load comes from this
 * process, open-loop (requests are sent on a timer, not after the previous answer).
 *
 * The noisy tenant's mix, each at its share of 50 req/s:
 * - filters as costly as the per-request maximum allows on its directory (userName co, a sort on an
 *   unindexed attribute), and ones over it (refused 400);
 * - PATCH churn: operations alternately adding and removing 50 emails, as many values as a PATCH
 *   may carry; and a PATCH of 1,000 operations (the maximum);
 * - POST of a user with the maximum number of multi-valued values.
 *
 * Run alone: npx tsx bench/fairness.ts [seconds]   (bench/run.ts runs it and writes BENCHMARKS.md)
 * CPU per request only: npx tsx bench/fairness.ts cpu
 */
import { fork } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:http";
import { monitorEventLoopDelay } from "node:perf_hooks";
import type { AddressInfo } from "node:net";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import type Database from "better-sqlite3";
import { loadConfig } from "../src/config.js";
import { sqliteStore } from "../src/directory/sql.js";
import { openDatabase, startBackgroundCheckpoints } from "../src/directory/database.js";
import { onboardOrganizationOp } from "../src/admin/onboarding.js";
import { changeBy } from "../src/directory/write-context.js";
import { createApp } from "../src/http/app.js";
import { healthRouter } from "../src/http/health.js";
import { postLoginHookRouter, signPostLoginBody } from "../src/http/post-login-hook.js";
import {
  scimConcurrencyDefault,
  scimLoopBudgetDefaults,
  scimRateLimitDefaults,
  scimRequestBudgetDefaultMs,
} from "../src/http/rate-limit.js";
import { scimLimits } from "../src/scim/limits.js";
import { ReadPool } from "../src/scim/read-pool.js";
import { pino } from "pino";
import { writeSync } from "../src/directory/store-op.js";

/**
 * SCIM reads in a read pool as `serve` runs them: one thread per core unless BENCH_READ_WORKERS=n
 * (0: on the main thread, to compare).
 */
const readWorkersShown = (): number => Number(process.env.BENCH_READ_WORKERS ?? loadConfig({}).scimReadWorkers);

const self = fileURLToPath(import.meta.url);
const hookSecret = "bench-fairness-hook";
const noisyUsers = 20_000;
const quietUsers = 1_000;
/** Requests per second of each probe (quiet tenant, hook, health). */
const probeRate = 10;

interface Tenant {
  directoryId: string;
  token: string;
  slug: string;
}
interface Seeded {
  dbPath: string;
  noisy: Tenant;
  quiet: Tenant;
}

function seedTenant(sqlite: Database.Database, directoryId: string, count: number, prefix: string): void {
  const insertUser = sqlite.prepare(
    "INSERT INTO users (id, directory_id, user_name, user_name_lower, external_id, display_name, active, resource, version, created_at, modified_at) VALUES (?, ?, ?, ?, ?, ?, 1, ?, 1, ?, ?)",
  );
  const insertEmail = sqlite.prepare(
    "INSERT INTO user_emails (user_id, directory_id, position, value_lower, type, \"primary\") VALUES (?, ?, 0, ?, 'work', 1)",
  );
  const now = Date.now();
  for (let i = 0; i < count; i++) {
    const userName = `${prefix}${i}@bench.example.com`;
    const resource = {
      userName,
      externalId: `ext-${i}`,
      displayName: `User ${i}`,
      title: `Title ${i % 50}`,
      active: true,
      emails: [{ value: userName, type: "work", primary: true }],
    };
    insertUser.run(
      `${prefix}-${i}`,
      directoryId,
      userName,
      userName,
      `ext-${i}`,
      `User ${i}`,
      JSON.stringify(resource),
      now + i,
      now + i,
    );
    insertEmail.run(`${prefix}-${i}`, directoryId, userName);
  }
  sqlite.prepare("UPDATE directories SET user_count = ? WHERE id = ?").run(count, directoryId);
}

function seed(): Seeded {
  const dir = mkdtempSync(join(tmpdir(), "bench-fairness-"));
  const dbPath = join(dir, "bridge.db");
  const { db, sqlite, close } = openDatabase(`sqlite:${dbPath}`);
  const operator = { type: "operator" as const, id: "bench" };
  const a = writeSync(db, onboardOrganizationOp({ slug: "noisy" }, changeBy(operator)));
  const b = writeSync(db, onboardOrganizationOp({ slug: "quiet" }, changeBy(operator)));
  sqlite.transaction(() => {
    seedTenant(sqlite, a.directory.id, noisyUsers, "n");
    seedTenant(sqlite, b.directory.id, quietUsers, "q");
  })();
  sqlite.pragma("wal_checkpoint(TRUNCATE)");
  close();
  return {
    dbPath,
    noisy: { directoryId: a.directory.id, token: a.token.token, slug: "noisy" },
    quiet: { directoryId: b.directory.id, token: b.token.token, slug: "quiet" },
  };
}

/** Child process: the production pipeline on the seeded database. */
async function serve(dbPath: string): Promise<void> {
  // As `serve` runs it: checkpoints in their own thread, never inside a SCIM write's commit.
  const { sqlite } = openDatabase(`sqlite:${dbPath}`, { autoCheckpoint: false });
  startBackgroundCheckpoints(`sqlite:${dbPath}`, (message) => console.error(`checkpoint failed: ${message}`));
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const readWorkers = readWorkersShown();
  const readPool =
    readWorkers > 0
      ? new ReadPool({
          databaseUrl: `sqlite:${dbPath}`,
          size: readWorkers,
          timeoutMs: scimRequestBudgetDefaultMs,
          log: pino({ level: "warn" }),
        })
      : undefined;
  readPool?.start();
  const app = createApp({
    store: sqliteStore(sqlite),
    publicUrl: origin,
    ...(readPool ? { readPool } : {}),
    // BENCH_CONCURRENCY=n: another per-directory concurrency limit than the default (to compare).
    // BENCH_NO_SHEDDING=1: without holding directories to one request at a time while the event loop is behind.
    // BENCH_LOOP_MS=n: another event-loop share per directory (ms per second; 0: none).
    scimRateLimit: {
      ...scimRateLimitDefaults,
      ...(process.env.BENCH_LOOP_MS === "0"
        ? {}
        : {
            loop: process.env.BENCH_LOOP_MS
              ? { msPerSecond: Number(process.env.BENCH_LOOP_MS), burstMs: 4 * Number(process.env.BENCH_LOOP_MS) }
              : scimLoopBudgetDefaults,
          }),
      ...(process.env.BENCH_CONCURRENCY ? { concurrency: Number(process.env.BENCH_CONCURRENCY) } : {}),
      ...(process.env.BENCH_NO_SHEDDING ? { shedWhenBehind: false } : {}),
    },
    extraRouters: [
      { path: "/hooks/auth0/post-login", router: postLoginHookRouter(sqliteStore(sqlite), hookSecret) },
      { path: "/", router: healthRouter({ store: sqliteStore(sqlite), shuttingDown: () => false }) },
    ],
  });
  server.on("request", app);
  // How long the event loop was held (what every request waits for, whoever sent it), from when the
  // parent says the measured run starts.
  const delay = monitorEventLoopDelay({ resolution: 5 });
  process.on("message", (m) => {
    if (m === "start") {
      delay.reset();
      delay.enable();
    } else if (m === "cpu") {
      const { user, system } = process.cpuUsage();
      process.send?.({ cpu: (user + system) / 1000 });
    } else if (m === "report") {
      delay.disable();
      const ms = (ns: number) => Math.round(ns / 1e5) / 10;
      process.send?.({
        loopDelay: { p50: ms(delay.percentile(50)), p99: ms(delay.percentile(99)), max: ms(delay.max) },
      });
    }
  });
  process.once("SIGINT", () => process.exit(0));
  process.send?.({ origin });
}

interface LoopDelay {
  p50: number;
  p99: number;
  max: number;
}

function startServer(dbPath: string): Promise<{
  origin: string;
  stop: () => void;
  start: () => void;
  report: () => Promise<LoopDelay>;
  cpu: () => Promise<number>;
}> {
  // BENCH_CPU_PROF=<dir> writes a V8 CPU profile of the server child there (summarise with bench/profile-summary.ts).
  const prof = process.env.BENCH_CPU_PROF ? ["--cpu-prof", "--cpu-prof-dir", process.env.BENCH_CPU_PROF] : [];
  const child = fork(self, ["serve", dbPath], { execArgv: ["--import", "tsx", ...prof], stdio: "inherit" });
  return new Promise((resolve, reject) => {
    child.once("message", (m) =>
      resolve({
        origin: (m as { origin: string }).origin,
        stop: () => child.kill("SIGINT"),
        start: () => child.send("start"),
        report: () =>
          new Promise((done) => {
            child.once("message", (r) => done((r as { loopDelay: LoopDelay }).loopDelay));
            child.send("report");
          }),
        cpu: () =>
          new Promise((done) => {
            child.once("message", (r) => done((r as { cpu: number }).cpu));
            child.send("cpu");
          }),
      }),
    );
    child.once("exit", (code) => reject(new Error(`bench server exited with ${code}`)));
  });
}

const percentile = (sorted: number[], p: number): number =>
  sorted.length === 0 ? Number.NaN : sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;

interface Probe {
  name: string;
  latencies: number[];
  failures: number;
}

export interface FairnessResult {
  seconds: number;
  probes: { name: string; count: number; p50: number; p99: number; max: number; failures: number }[];
  noisy: Record<string, Record<string, number>>;
  /** Slowest answer of each of the noisy tenant's requests, ms. */
  noisyMax: Record<string, number>;
  /** 1-minute load average of the machine before and after the run (2 cores: above 2 is contention). */
  load: [number, number];
  /** The server's CPU time during the run per second of it (1 = one core busy throughout). */
  serverCpuShare: number;
  /** Server CPU ms per request of each kind, sent one at a time before the run. */
  cpuPerRequest: { name: string; statuses: Record<string, number>; ms: number }[];
  /** The server's event-loop delay during the run, ms (monitorEventLoopDelay): how long it was held at a time. */
  loopDelay: LoopDelay;
}

/** The targets: p99 of another tenant's GET by id and of the post-login hook while one tenant floods. */
export const fairnessTargets: Record<string, number> = {
  "quiet tenant GET /Users/{id}": 50,
  "POST /hooks/auth0/post-login": 50,
};

export async function runFairnessBench(
  seconds = 20,
  only?: readonly number[],
  measureCpu = true,
): Promise<FairnessResult> {
  const seeded = seed();
  const server = await startServer(seeded.dbPath);
  const { origin } = server;
  const scim = (t: Tenant, path: string, init: RequestInit = {}) =>
    fetch(`${origin}/scim/v2/${t.directoryId}${path}`, {
      ...init,
      headers: { Authorization: `Bearer ${t.token}`, "Content-Type": "application/scim+json", ...(init.headers ?? {}) },
    });
  const patchOp = (Operations: unknown[]) =>
    JSON.stringify({ schemas: ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], Operations });
  const churnEmails = Array.from({ length: 50 }, (_, i) => ({ value: `churn${i}@bench.example.com`, type: "other" }));
  const churn = patchOp(
    Array.from({ length: scimLimits.maxPatchValues / churnEmails.length }, (_, i) => ({
      op: i % 2 === 0 ? "add" : "remove",
      path: "emails",
      value: churnEmails,
    })),
  );
  const manyOps = patchOp(
    Array.from({ length: 1000 }, (_, i) => ({
      op: "replace",
      path: i % 2 === 0 ? "title" : "name.givenName",
      value: `v${i}`,
    })),
  );
  const fullUser = (i: number) =>
    JSON.stringify({
      userName: `full${i}@bench.example.com`,
      emails: Array.from({ length: scimLimits.maxValuesPerAttribute }, (_, j) => ({
        value: `f${i}-${j}@bench.example.com`,
      })),
    });
  let created = 0;
  const mix: { name: string; send: () => Promise<Response> }[] = [
    {
      name: "GET filter userName co (priced just under the maximum)",
      send: () => scim(seeded.noisy, `/Users?filter=${encodeURIComponent('userName co "zz9"')}&count=100`),
    },
    { name: "GET sortBy=title (unindexed sort)", send: () => scim(seeded.noisy, `/Users?sortBy=title&count=1000`) },
    {
      name: "GET 100-term ew filter (over the maximum)",
      send: () =>
        scim(
          seeded.noisy,
          `/Users?filter=${encodeURIComponent(Array.from({ length: 100 }, (_, i) => `userName ew "q${i}"`).join(" or "))}`,
        ),
    },
    {
      name: `PATCH adding and removing 50 emails, ${scimLimits.maxPatchValues} values in all`,
      send: () =>
        scim(seeded.noisy, `/Users/n-${Math.floor(Math.random() * noisyUsers)}`, { method: "PATCH", body: churn }),
    },
    {
      name: "PATCH 1,000 operations",
      send: () =>
        scim(seeded.noisy, `/Users/n-${Math.floor(Math.random() * noisyUsers)}`, { method: "PATCH", body: manyOps }),
    },
    {
      name: `POST user with ${scimLimits.maxValuesPerAttribute} emails`,
      send: () => scim(seeded.noisy, "/Users", { method: "POST", body: fullUser(created++) }),
    },
  ];
  // BENCH_MIX=0,2 runs only those entries of the mix (to see which request costs what).
  const selected = only ?? process.env.BENCH_MIX?.split(",").map(Number);
  if (selected) {
    const keep = new Set(selected);
    mix.splice(0, mix.length, ...mix.filter((_, i) => keep.has(i)));
  }
  const noisy: Record<string, Record<string, number>> = {};
  const noisyMax: Record<string, number> = {};
  const probes: Probe[] = [
    { name: "quiet tenant GET /Users/{id}", latencies: [], failures: 0 },
    { name: "POST /hooks/auth0/post-login", latencies: [], failures: 0 },
    { name: "GET /healthz", latencies: [], failures: 0 },
  ];
  const probeSend = [
    () => scim(seeded.quiet, `/Users/q-${Math.floor(Math.random() * quietUsers)}`),
    () => {
      const body = JSON.stringify({
        user: {
          user_id: `auth0|${Math.random()}`,
          email: `q${Math.floor(Math.random() * quietUsers)}@bench.example.com`,
        },
        organization: { name: "quiet" },
      });
      return fetch(`${origin}/hooks/auth0/post-login`, {
        method: "POST",
        body,
        headers: { "Content-Type": "application/json", "x-scim-bridge-signature": signPostLoginBody(hookSecret, body) },
      });
    },
    () => fetch(`${origin}/healthz`),
  ];
  // Warm-up, unmeasured: the child's first requests pay for lazy compilation and a cold page cache.
  for (let i = 0; i < 20; i++) await Promise.all(probeSend.map(async (send) => (await send()).arrayBuffer()));
  // Server CPU per request, each request alone (sequential): what one costs the process whatever the
  // machine's load, unlike latencies. The rate limit and query budget may answer some of them 429.
  const cpuPerRequest: FairnessResult["cpuPerRequest"] = [];
  const alone: [string, () => Promise<Response>][] = [
    [probes[0]!.name, probeSend[0]!],
    [probes[1]!.name, probeSend[1]!],
    ...mix.map((m) => [m.name, m.send] as [string, () => Promise<Response>]),
  ];
  for (const [name, send] of measureCpu ? alone : []) {
    for (let i = 0; i < 3; i++) await (await send()).arrayBuffer();
    const statuses: Record<string, number> = {};
    const n = Number(process.env.BENCH_CPU_N ?? 20);
    const before = await server.cpu();
    for (let i = 0; i < n; i++) {
      const res = await send();
      await res.arrayBuffer();
      statuses[res.status] = (statuses[res.status] ?? 0) + 1;
      // Spaced out so that the rate limit's bucket refills (200 req/s).
      await new Promise((r) => setTimeout(r, 10));
    }
    cpuPerRequest.push({ name, statuses, ms: Math.round((((await server.cpu()) - before) / n) * 100) / 100 });
  }
  // The buckets those requests drew from (rate limit, query budget, event-loop share) refill before the run.
  if (measureCpu && seconds > 0) await new Promise((r) => setTimeout(r, 5_000));
  const inFlight: Promise<unknown>[] = [];
  const loadBefore = loadavg()[0]!;
  const cpuBefore = await server.cpu();
  server.start();
  const started = Date.now();
  const endAt = started + seconds * 1000;
  let tick = 0;
  await new Promise<void>((resolve) => {
    // Noisy: its rate limit (50 req/s), round-robin over the mix. Probes: probeRate req/s each.
    const noisyTimer = setInterval(() => {
      const m = mix[tick++ % Math.max(1, mix.length)];
      if (!m) return;
      const t0 = performance.now();
      inFlight.push(
        m.send().then(
          async (res) => {
            await res.arrayBuffer();
            (noisy[m.name] ??= {})[res.status] = ((noisy[m.name] ??= {})[res.status] ?? 0) + 1;
            noisyMax[m.name] = Math.max(noisyMax[m.name] ?? 0, performance.now() - t0);
          },
          () => ((noisy[m.name] ??= {}).error = (noisy[m.name]!.error ?? 0) + 1),
        ),
      );
    }, 1000 / scimRateLimitDefaults.ratePerSecond);
    const probeTimer = setInterval(() => {
      probes.forEach((p, i) => {
        const t0 = performance.now();
        inFlight.push(
          probeSend[i]!().then(
            async (res) => {
              await res.arrayBuffer();
              if (res.status >= 300) p.failures++;
              else p.latencies.push(performance.now() - t0);
            },
            () => p.failures++,
          ),
        );
      });
    }, 1000 / probeRate);
    setTimeout(() => {
      clearInterval(noisyTimer);
      clearInterval(probeTimer);
      resolve();
    }, endAt - Date.now());
  });
  await Promise.allSettled(inFlight);
  const loadAfter = loadavg()[0]!;
  const cpuDuring = (await server.cpu()) - cpuBefore;
  const runMs = Date.now() - started;
  const loopDelay = await server.report();
  server.stop();
  rmSync(join(seeded.dbPath, ".."), { recursive: true, force: true });
  return {
    seconds,
    probes: probes.map((p) => {
      const sorted = [...p.latencies].sort((a, b) => a - b);
      const r = (n: number) => Math.round(n * 10) / 10;
      return {
        name: p.name,
        count: sorted.length,
        p50: r(percentile(sorted, 50)),
        p99: r(percentile(sorted, 99)),
        max: r(sorted[sorted.length - 1] ?? Number.NaN),
        failures: p.failures,
      };
    }),
    noisy,
    noisyMax: Object.fromEntries(Object.entries(noisyMax).map(([k, v]) => [k, Math.round(v)])),
    load: [Math.round(loadBefore * 10) / 10, Math.round(loadAfter * 10) / 10],
    loopDelay,
    cpuPerRequest,
    serverCpuShare: Math.round((cpuDuring / runMs) * 100) / 100,
  };
}

export async function fairnessBenchSection(seconds = 15): Promise<string> {
  const reads = await runFairnessBench(seconds, [0, 1, 2], false);
  const all = await runFairnessBench(seconds);
  const statusText = (s: Record<string, number>) =>
    Object.entries(s)
      .map(([k, v]) => `${v} × ${k}`)
      .join(", ");
  const target = (name: string, p99: number) =>
    fairnessTargets[name] === undefined
      ? ""
      : `≤ ${fairnessTargets[name]}: ${p99 <= fairnessTargets[name]! ? "met" : "**not met**"}`;
  const table = (title: string, r: FairnessResult) => [
    `**${title}** (load average ${r.load[0]} before, ${r.load[1]} after; server event-loop delay p50 ${r.loopDelay.p50} ms, p99 ${r.loopDelay.p99} ms, max ${r.loopDelay.max} ms; server CPU ${r.serverCpuShare} s per second)`,
    "",
    "| probe | answered | p50 ms | p99 ms | max ms | failed | p99 target ms |",
    "|---|---:|---:|---:|---:|---:|---|",
    ...r.probes.map(
      (p) => `| ${p.name} | ${p.count} | ${p.p50} | ${p.p99} | ${p.max} | ${p.failures} | ${target(p.name, p.p99)} |`,
    ),
    "",
    "| noisy tenant's request | answers | slowest ms |",
    "|---|---|---:|",
    ...Object.entries(r.noisy).map(([name, s]) => `| ${name} | ${statusText(s)} | ${r.noisyMax[name] ?? ""} |`),
    "",
  ];
  const cpuTable = (r: FairnessResult) => [
    "**Server CPU per request**, each kind sent alone, 20 in a row before the run (load-independent, unlike the latencies):",
    "",
    "| request | answers | CPU ms per request |",
    "|---|---|---:|",
    ...r.cpuPerRequest.map((c) => `| ${c.name} | ${statusText(c.statuses)} | ${c.ms} |`),
    "",
  ];
  return [
    `Two tenants in one process: "noisy" (${noisyUsers.toLocaleString("en")} users) sends the most expensive requests the limits allow at its rate limit ` +
      `(${scimRateLimitDefaults.ratePerSecond} req/s, round-robin over the mix) for ${seconds} s; meanwhile "quiet" (${quietUsers.toLocaleString("en")} users) reads users by id, ` +
      "the post-login hook is called and /healthz polled, " +
      `${probeRate} req/s each.` +
      " Open loop, keep-alive, server in a child process on 127.0.0.1. " +
      (readWorkersShown() > 0
        ? `SCIM reads run in a read pool of ${readWorkersShown()} threads, as \`serve\` runs them. `
        : "SCIM reads run on the main thread (BENCH_READ_WORKERS=0). ") +
      "Run twice: the expensive reads alone, then reads and writes.",
    "",
    "Target: p99 ≤ 50 ms for the quiet tenant's GET by id and for the hook.",
    "",
    ...table("Expensive reads only", reads),
    ...table("Expensive reads and writes", all),
    ...cpuTable(all),
    `429s are the per-directory rate limit, the query budget and the event-loop share (${scimLoopBudgetDefaults.msPerSecond} ms of CPU per second while another directory is served) at work; 503s are requests past their ${scimRequestBudgetDefaultMs / 1000} s time budget, not applied; at most ` +
      String(scimConcurrencyDefault) +
      " of a directory's requests are in the process at once (one while the event loop runs late), the rest wait their turn; 400s are requests over a per-request maximum (src/scim/cost.ts, src/scim/limits.ts). " +
      "Every write is durable before its answer: the commit's fsync (synchronous=FULL) runs on the event loop. The load generator shares the machine " +
      "with the server: with a load average above 2 (2 cores), both wait for a core and the tail measures the machine as much as the process.",
  ].join("\n");
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  if (process.argv[2] === "serve") await serve(process.argv[3]!);
  else if (process.argv[2] === "cpu") {
    // Only the CPU per request (a quick before/after while developing).
    const r = await runFairnessBench(0);
    for (const c of r.cpuPerRequest)
      console.log(`${String(c.ms).padStart(8)} ms  ${c.name}  ${JSON.stringify(c.statuses)}`);
  } else console.log(await fairnessBenchSection(Number(process.argv[2] ?? 15)));
}
