/**
 * Sync engine benchmark: a 10,000-user initial push against the emulator with Auth0's rate
 * limits on and 50 ms of latency per call. It reports the wall time against the physical limit (the
 * bottleneck bucket's refill rate × the calls it must carry), calls per user, 429s, and deprovision
 * latency (SCIM 2xx → emulator shows the user blocked and its access revoked), idle and during a
 * backlog.
 *
 * The bridge runs as `scim-bridge serve` (compiled, as shipped: the bench builds it first) in
 * processes of its own, as deployed; the emulator runs here. On SQLite one instance; on PostgreSQL (--database postgres) N instances on one database
 * (--instances N), the SCIM traffic spread round robin over them as a load balancer would, one
 * emulator and so one Auth0 tenant. With --kill (the default for several instances) one instance is
 * SIGKILLed during the backlog while it runs a deactivation it has just acknowledged, and restarted
 * two seconds later: the deprovision latency then includes the takeover of its jobs.
 *
 *   npx tsx bench/sync.ts [--database sqlite|postgres] [--instances N] [--users 10000]
 *                         [--plan enterprise] [--scale 10] [--samples 40] [--cadence 200] [--no-kill]
 *   npx tsx bench/sync.ts --configs sqlite:1,postgres:1,postgres:3   (the default: every row)
 *   npx tsx bench/sync.ts --sqlite-section [--users N]                (the `sync` section)
 *
 * PostgreSQL is BENCH_DATABASE_URL (a role with CREATEDB; a database is created per run) if set,
 * else an embedded server started with fsync and synchronous_commit on, as in production.
 *
 * Time compression: both the emulator and the bridge's limiter run the plan's buckets `scale` times
 * faster (--rate-scale / AUTH0_RATE_SCALE), so an hour of Auth0 pacing fits in a minute. Ratios to
 * the physical limit are unaffected; latencies are real (the 50 ms per call is not scaled).
 */
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import pg from "pg";
import type { Auth0Plan } from "../src/auth0/rate-limiter.js";
import { openStore } from "../src/cli/database.js";
import { scimBaseUrl } from "../src/directory/directories.js";
import { onboardOrganizationOp } from "../src/admin/onboarding.js";
import { changeBy } from "../src/directory/write-context.js";
import { createUser } from "../src/directory/users.js";
import { PLAN_LIMITS, startEmulator, type CallLogEntry } from "../src/emulator/index.js";
import { packageRoot } from "../src/paths.js";
import { enqueueJob, JOBS_CHANNEL, Lane } from "../src/directory/outbox.js";
import { dialect, exec, one, type StoreOp } from "../src/directory/store-op.js";
import { postgresStore } from "../src/directory/sql.js";
import { migratePostgres } from "../src/directory/postgres.js";
import { startEmbedded } from "../test/support/postgres-global-setup.js";
import { buildShipped } from "./shipped.js";

export interface SyncRun {
  plan: Auth0Plan;
  users: number;
  scale: number;
  database: "sqlite" | "postgres";
  /** `serve` processes on the one database (PostgreSQL only for more than one). */
  instances: number;
  /** A PostgreSQL server URL whose role may CREATE DATABASE (database "postgres"). */
  postgresUrl?: string;
  /** SIGKILL one instance during the backlog's deactivations, then restart it (needs instances > 1). */
  kill?: boolean;
  /** Deactivations sampled during the backlog. */
  backlogSamples?: number;
  /**
   * Ms between deactivations sent during the backlog, each not waiting for the previous one to
   * reach Auth0 (an IdP does not wait); undefined: one after another, 100 ms apart.
   */
  cadenceMs?: number;
}

interface SyncFigures extends SyncRun {
  wallSeconds: number;
  limitSeconds: number;
  bottleneck: string;
  calls: number;
  rateLimited: number;
  /** Calls and 429s from the start of the backlog to the last deactivation sample. */
  backlogCalls: number;
  backlogRateLimited: number;
  /** CPU time of the bridge processes from their start-up to the drained queue (the push, a drift scan). */
  bridgeCpuMs: number;
  idle: number[];
  backlog: number[];
  /** The latency of the deactivation the killed instance had acknowledged (and was running). */
  killedSample?: number;
  load: number;
}

const percentile = (xs: number[], p: number): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))] ?? NaN;
};

/** Calls each bucket carried, counted as the emulator answers them (global included on plans that have one). */
class BucketLoad {
  readonly carried = new Map<string, number>();
  /** Calls per method and path shape (ids replaced by ":id"), to attribute calls per user. */
  readonly endpoints = new Map<string, number>();
  calls = 0;
  rateLimited = 0;
  constructor(private readonly plan: Auth0Plan) {}
  record(entry: CallLogEntry): void {
    if (!entry.path.startsWith("/api/v2/")) return;
    this.calls++;
    const shape = `${entry.method} ${entry.path.replace(/(\/api\/v2\/\w+\/)[^/]+/, "$1:id").replace(/(\/members\/)[^/]+/, "$1:id")}`;
    this.endpoints.set(shape, (this.endpoints.get(shape) ?? 0) + 1);
    if (entry.status === 429) this.rateLimited++;
    const global = PLAN_LIMITS[this.plan].global?.name;
    for (const name of new Set([entry.bucket, global].filter((n): n is string => n !== undefined)))
      this.carried.set(name, (this.carried.get(name) ?? 0) + 1);
  }
  /** The physical limit: for each bucket, (calls it carried − its burst) ÷ its refill rate; the slowest bucket wins. */
  limit(scale: number): { seconds: number; bucket: string } {
    const limits = PLAN_LIMITS[this.plan];
    const specs = [limits.global, limits.other, ...Object.values(limits.endpoints)].filter(
      (s): s is NonNullable<typeof s> => s !== undefined,
    );
    let best = { seconds: 0, bucket: "none" };
    for (const spec of specs) {
      const n = this.carried.get(spec.name) ?? 0;
      const seconds = Math.max(0, n - spec.capacity) / (spec.perSecond * scale);
      if (seconds > best.seconds)
        best = { seconds, bucket: `${spec.name} (${n} calls at ${(spec.perSecond * scale).toFixed(1)}/s)` };
    }
    return best;
  }
}

interface Instance {
  child: ChildProcess;
  port: number;
}

/** The CLI as shipped (compiled: runSync builds it first), for `serve` and the operator's command. */
const shippedCli = join(packageRoot, "bin", "scim-bridge.js");

/** `scim-bridge serve` as its own process (as deployed), so that it does not share a CPU with the emulator. */
async function serveBridge(env: NodeJS.ProcessEnv): Promise<Instance> {
  // BENCH_CPU_PROF=DIR: a V8 CPU profile of the bridge process (summarise with bench/profile-summary.ts).
  const profile = process.env.BENCH_CPU_PROF ? ["--cpu-prof", `--cpu-prof-dir=${process.env.BENCH_CPU_PROF}`] : [];
  const child = spawn(process.execPath, [...profile, shippedCli, "serve"], {
    env,
    stdio: ["ignore", "pipe", "inherit"],
  });
  let out = "";
  let port = 0;
  // Keep draining its log so the pipe never fills and stalls the instance; keep only the start.
  child.stdout!.on("data", (d: Buffer) => {
    if (port === 0) out += d.toString();
  });
  for (const deadline = Date.now() + 60_000; ;) {
    const m = /"port":(\d+)/.exec(out);
    if (m) {
      port = Number(m[1]);
      out = "";
      return { child, port };
    }
    if (child.exitCode !== null || Date.now() > deadline) throw new Error(`scim-bridge serve did not start:\n${out}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const exited = (child: ChildProcess): Promise<void> =>
  new Promise((r) => (child.exitCode !== null || child.signalCode !== null ? r() : child.once("exit", () => r())));

/** CPU time (user + system) of a process's main thread (the event loop) so far, in ms, from /proc (Linux); NaN elsewhere. */
function processCpuMs(pid: number | undefined): number {
  try {
    const fields = readFileSync(`/proc/${pid}/task/${pid}/stat`, "utf8").split(") ")[1]!.split(" ");
    // utime and stime are fields 14 and 15 of stat(5), in clock ticks (100 per second on Linux).
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / 100;
  } catch {
    return NaN;
  }
}

const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A fresh database for one run: a SQLite file, or a database created on the PostgreSQL server. */
async function freshDatabase(
  run: SyncRun,
  dir: string,
  n: number,
): Promise<{ url: string; drop: () => Promise<void> }> {
  if (run.database === "sqlite") return { url: `sqlite:${join(dir, "bridge.db")}`, drop: async () => {} };
  if (!run.postgresUrl) throw new Error("a PostgreSQL run needs postgresUrl");
  const name = `scim_bench_sync_${process.pid}_${n}`;
  const admin = new pg.Client({ connectionString: run.postgresUrl });
  await admin.connect();
  await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
  await admin.query(`CREATE DATABASE ${name}`);
  await admin.end();
  const url = new URL(run.postgresUrl);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    drop: async () => {
      const c = new pg.Client({ connectionString: run.postgresUrl });
      await c.connect();
      await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await c.end();
    },
  };
}

let runs = 0;

let built = false;

export async function runSync(run: SyncRun): Promise<SyncFigures> {
  if (!built) buildShipped("sync");
  built = true;
  const { plan, users, scale } = run;
  if (run.instances > 1 && run.database !== "postgres") throw new Error("several instances need --database postgres");
  const dir = mkdtempSync(join(tmpdir(), "scim-bridge-bench-sync-"));
  const load = new BucketLoad(plan);
  const backlogLoad = new BucketLoad(plan);
  const revoked = new Set<string>();
  let counting = false;
  let countingBacklog = false;
  let firstCallAt = 0;
  let lastCallAt = 0;
  /** Auth0 calls of the push in each second since its first (dips show where the budget went unused). */
  const perSecond: number[] = [];
  const emulator = await startEmulator({
    plan,
    rateScale: scale,
    onCall: (entry) => {
      if (counting) {
        firstCallAt ||= Date.now();
        lastCallAt = Date.now();
        const second = Math.floor((lastCallAt - firstCallAt) / 1000);
        perSecond[second] = (perSecond[second] ?? 0) + 1;
        load.record(entry);
      }
      if (countingBacklog) backlogLoad.record(entry);
      if (entry.method === "POST" && entry.path.endsWith("/revoke-access") && entry.status < 300)
        revoked.add(decodeURIComponent(entry.path.split("/")[4] ?? ""));
    },
  });
  emulator.setFaults({ latency: { ms: 50 } });
  const database = await freshDatabase(run, dir, runs++);
  const store =
    run.database === "postgres"
      ? (await migratePostgres(database.url), postgresStore(database.url, { poolSize: 4 }))
      : await openStore(database.url);
  const instances: (Instance | undefined)[] = [];
  const retired: Instance[] = [];
  const began = performance.now();
  const phase = (what: string) =>
    console.error(
      `bench:   ${((performance.now() - began) / 1000).toFixed(1)} s ${what} (load ${loadavg()[0]!.toFixed(2)})`,
    );
  try {
    const onboarded = await store.write(
      onboardOrganizationOp({ slug: `bench-${plan}` }, changeBy({ type: "operator", id: "bench" })),
    );
    const contextOf = (o: typeof onboarded) => ({
      organizationId: o.organization.id,
      directoryId: o.directory.id,
      actor: { type: "directory" as const, id: o.directory.id },
      requestId: null,
      at: Date.now(),
    });
    // The backlog: another organization's push on the same Auth0 tenant (its budget and the queue
    // are the ones the deactivations need). Another organization, so that nothing of the first
    // one's push (its organization job reconciles every user of the organization) touches it.
    const other = await store.write(
      onboardOrganizationOp({ slug: `bench-${plan}-backlog` }, changeBy({ type: "operator", id: "bench" })),
    );
    // Users written straight into the directory (as the IdP's POSTs would), 500 per transaction,
    // four transactions at a time on PostgreSQL (SQLite runs them one after another anyway).
    const push = async (into: typeof onboarded, prefix: string, n: number): Promise<string[]> => {
      const ctx = contextOf(into);
      const chunk = (from: number) =>
        function* (): StoreOp<string[]> {
          const out: string[] = [];
          for (let i = from; i < Math.min(n, from + 500); i++) {
            const email = `${prefix}${i}@bench.example`;
            const user = yield* createUser(ctx, {
              schemas: ["urn:ietf:params:scim:schemas:core:2.0:User"],
              userName: email,
              emails: [{ value: email, primary: true }],
              active: true,
            });
            out.push(user.id);
          }
          return out;
        };
      const starts = Array.from({ length: Math.ceil(n / 500) }, (_, k) => k * 500);
      const out: string[][] = [];
      for (let k = 0; k < starts.length; k += 4)
        out.push(...(await Promise.all(starts.slice(k, k + 4).map((from) => store.write(chunk(from)())))));
      return out.flat();
    };
    // The backlog's users are written before the servers start, their jobs held back (due in a far
    // future) until the backlog phase makes them all due at once: writing 10,000 users during the
    // run would take the bench process longer than the workers take to drain them.
    const HELD = 8e15;
    const openJobs = async (of = onboarded) =>
      (await store.read(
        one<{ n: number }>(
          `SELECT count(*) AS n FROM jobs WHERE organization_id = ? AND state IN ('pending', 'running') AND run_after < ?`,
          [of.organization.id, HELD],
        ),
      ))!.n;
    /** Holds the organization's pending jobs (due in a far future). */
    const hold = (of: typeof onboarded) =>
      store.write(
        exec(`UPDATE jobs SET run_after = ? WHERE state = 'pending' AND organization_id = ?`, [
          HELD,
          of.organization.id,
        ]),
      );
    /** Makes the organization's held jobs due at once, and wakes the instances. */
    const release = (of: typeof onboarded) =>
      store.write(
        (function* () {
          yield* exec(
            `UPDATE jobs SET run_after = ? WHERE state = 'pending' AND run_after = ? AND organization_id = ?`,
            [Date.now() - 1000, HELD, of.organization.id],
          );
          // Enqueues wake the instances (NOTIFY); this UPDATE does not by itself.
          if ((yield* dialect()) === "postgres")
            yield* one("SELECT pg_notify(?, ?)", [JOBS_CHANNEL, String(Lane.provision)]);
        })(),
      );
    await push(other, "backlog", users);
    await hold(other);
    phase(`${users} backlog users written, their jobs held`);
    const ids = await push(onboarded, "u", users);
    // Held until every instance is up: an IdP pushes to instances that are already running, and a
    // process's start-up (with several on a busy host, one may be ready seconds after another) is
    // not sync time.
    await hold(onboarded);
    phase(`${users} users written, their jobs held`);
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      DATABASE_URL: database.url,
      PORT: "0",
      LOG_LEVEL: "info",
      AUTH0_DOMAIN: "bench.example.auth0.com",
      AUTH0_CLIENT_ID: "bench",
      AUTH0_CLIENT_SECRET: "bench",
      AUTH0_MANAGEMENT_URL: emulator.url,
      AUTH0_PLAN: plan,
      AUTH0_RATE_SCALE: String(scale),
      SCIM_RATE_LIMIT_PER_SECOND: "0",
      // Enough calls in flight for the compressed rate at 50 ms per call, across the instances.
      SYNC_CONCURRENCY: String(Math.max(16, Math.ceil(64 / run.instances))),
    };
    instances.push(...(await Promise.all(Array.from({ length: run.instances }, () => serveBridge(env)))));
    const cpuAtStart = instances.map((i) => processCpuMs(i!.child.pid));
    counting = true;
    await release(onboarded);
    phase(`${run.instances} instance(s) up, the push released`);
    // A drift scan during the push: the server's own background scan, and an operator's
    // `scim-bridge reconcile --dry-run` in a second process spending the same tenant budget.
    await store.write(
      enqueueJob({
        organizationId: onboarded.organization.id,
        kind: "drift",
        subjectId: onboarded.organization.id,
        lane: Lane.background,
      }),
    );
    const cli = spawn(process.execPath, [shippedCli, "reconcile", onboarded.organization.slug, "--dry-run", "--json"], {
      env: { ...env, LOG_LEVEL: "silent" },
      stdio: ["ignore", "ignore", "inherit"],
    });
    const cliExit = new Promise<number | null>((r) => cli.once("exit", (code) => r(code)));
    while ((await openJobs()) > 0) await pause(50);
    const cliCode = await cliExit;
    if (cliCode !== 0 && cliCode !== 2) console.error(`bench: warning: reconcile --dry-run exited ${cliCode}`);
    // From the push's first Auth0 call until the queue is empty.
    const wallSeconds = (Date.now() - firstCallAt) / 1000;
    const bridgeCpuMs = instances.reduce((sum, i, k) => sum + processCpuMs(i!.child.pid) - cpuAtStart[k]!, 0);
    counting = false;
    const limit = load.limit(scale);
    phase(`Auth0 calls per second of the push: ${Array.from(perSecond, (n) => n ?? 0).join(" ")}`);
    phase(
      `push drained in ${wallSeconds.toFixed(1)} s (its last Auth0 call at ${((lastCallAt - firstCallAt) / 1000).toFixed(1)} s)`,
    );
    phase(
      `calls per user by endpoint: ${[...load.endpoints]
        .sort((a, b) => b[1] - a[1])
        .map(([shape, n]) => `${shape} ${(n / users).toFixed(3)}`)
        .join(", ")}`,
    );

    const headers = { Authorization: `Bearer ${onboarded.token.token}`, "Content-Type": "application/scim+json" };
    let turn = 0;
    /**
     * The load balancer and the IdP's retries: round robin over the instances that are up (or the
     * one named); a connection refused or cut by an instance that was just killed goes to the next
     * one, and a 503 is sent again after its Retry-After, as Okta and Entra retry.
     */
    const scim = async (path: string, init: RequestInit, to?: Instance): Promise<Response> => {
      for (let attempt = 0; ; attempt++) {
        const up = instances.filter((i): i is Instance => i !== undefined);
        const target = to && attempt === 0 ? to : up[turn++ % up.length]!;
        const base = scimBaseUrl(`http://127.0.0.1:${target.port}`, onboarded.directory.id);
        let res: Response;
        try {
          res = await fetch(`${base}${path}`, { ...init, headers });
        } catch (err) {
          if (attempt >= 10) throw err;
          continue;
        }
        if (res.status !== 503 || attempt >= 10) return res;
        await pause(Number(res.headers.get("retry-after") ?? "1") * 1000);
      }
    };
    /** From the SCIM 204 of active=false until Auth0 shows the user blocked and (enterprise) its sessions revoked. */
    const deprovisionLatency = async (i: number, to?: Instance, acknowledged?: () => void): Promise<number> => {
      const email = `u${i}@bench.example`;
      const res = await scim(
        `/Users/${ids[i]!}`,
        {
          method: "PATCH",
          body: JSON.stringify({
            schemas: ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            Operations: [{ op: "replace", path: "active", value: false }],
          }),
        },
        to,
      );
      if (res.status !== 204) throw new Error(`PATCH answered ${res.status}`);
      const acked = performance.now();
      acknowledged?.();
      const auth0Id = emulator.state.usersByEmail(email)[0]!.user_id;
      for (;;) {
        const blocked = emulator.state.usersByEmail(email)[0]?.blocked === true;
        // Session revocation exists on the enterprise plan only (essentials answers 403; the bridge records it).
        if (blocked && (plan !== "enterprise" || revoked.has(auth0Id))) return performance.now() - acked;
        await pause(5);
      }
    };

    const idle: number[] = [];
    for (let i = 0; i < 20; i++) idle.push(await deprovisionLatency(i));
    countingBacklog = true;
    phase("idle deactivations measured");
    await release(other);
    phase("backlog released");
    await pause(1_000);
    const samples = run.backlogSamples ?? 20;
    const backlog: number[] = [];
    let killedSample: number | undefined;
    let restarted: Promise<void> = Promise.resolve();
    if (run.cadenceMs === undefined) {
      for (let i = 20; i < 20 + samples; i++) {
        backlog.push(await deprovisionLatency(i));
        await pause(100);
      }
    } else {
      const killAt = run.kill && run.instances > 1 ? Math.floor(samples / 4) : -1;
      const sent: Promise<void>[] = [];
      for (let k = 0; k < samples; k++) {
        const i = 20 + k;
        if (k === killAt) {
          // The instance that acknowledges this deactivation claims it at once (its own enqueue
          // wakes its worker): kill it 40 ms after the 204, while it runs the job, then start a
          // new instance in its place two seconds later.
          const index = 1;
          const victim = instances[index]!;
          sent.push(
            deprovisionLatency(i, victim, () => {
              setTimeout(() => {
                instances[index] = undefined;
                victim.child.kill("SIGKILL");
                retired.push(victim);
                restarted = (async () => {
                  await exited(victim.child);
                  await pause(2_000);
                  instances[index] = await serveBridge(env);
                })();
              }, 40);
            }).then((ms) => {
              killedSample = ms;
              backlog.push(ms);
            }),
          );
        } else sent.push(deprovisionLatency(i).then((ms) => void backlog.push(ms)));
        await pause(run.cadenceMs);
      }
      await Promise.all(sent);
      await restarted;
    }
    countingBacklog = false;
    phase("backlog deactivations measured");
    const open = await openJobs(other);
    if (open < users / 2)
      console.error(`bench: warning: the backlog was mostly drained (${open} open) before the last sample`);
    return {
      ...run,
      wallSeconds,
      limitSeconds: limit.seconds,
      bottleneck: limit.bucket,
      calls: load.calls,
      rateLimited: load.rateLimited,
      backlogCalls: backlogLoad.calls,
      backlogRateLimited: backlogLoad.rateLimited,
      bridgeCpuMs,
      idle,
      backlog,
      ...(killedSample === undefined ? {} : { killedSample }),
      load: loadavg()[0]!,
    };
  } finally {
    const running = instances.filter((i): i is Instance => i !== undefined);
    for (const i of running) if (i.child.exitCode === null) i.child.kill("SIGTERM");
    await Promise.all([...running, ...retired].map((i) => exited(i.child)));
    await store.close();
    await emulator.close();
    await database.drop().catch((err: unknown) => console.error(`bench: could not drop the database: ${String(err)}`));
    rmSync(dir, { recursive: true, force: true });
  }
}

const ms = (x: number | undefined) => (x === undefined || Number.isNaN(x) ? "—" : `${Math.round(x)} ms`);
const pct = (n: number, of: number) => `${((n / of) * 100).toFixed(2)}%`;

/** The original section: SQLite, one instance, the enterprise and essentials plans. */
export async function syncBenchSection(users = 10_000): Promise<string> {
  const scales = (process.env.BENCH_SCALES ?? "10,30").split(",").map(Number);
  const base = { users, database: "sqlite" as const, instances: 1 };
  const runs = [
    await runSync({ ...base, plan: "enterprise", scale: scales[0]! }),
    await runSync({ ...base, plan: "essentials", scale: scales[1]! }),
  ];
  const rows = runs.map(
    (r) =>
      `| ${r.plan} (×${r.scale}) | ${r.users} | ${r.wallSeconds.toFixed(1)} s | ${r.limitSeconds.toFixed(1)} s — ${r.bottleneck} | **${((r.limitSeconds / r.wallSeconds) * 100).toFixed(0)}%** | ${(r.calls / r.users).toFixed(2)} | ${r.rateLimited} (${pct(r.rateLimited, r.calls)}) | ${ms(percentile(r.idle, 50))} / ${ms(percentile(r.idle, 99))} | ${ms(percentile(r.backlog, 50))} / ${ms(percentile(r.backlog, 99))} |`,
  );
  return [
    "Initial push of users into an empty tenant; emulator with the plan's published rate-limit buckets and 50 ms added to every call; buckets time-compressed by the factor shown (both sides), so the ratio to the physical limit is what matters. The push's jobs are written first and made due once the server is up; wall time runs from the push's first Auth0 call until its queue is empty. During the push a drift scan runs in the server and an operator's `scim-bridge reconcile --dry-run` runs in a second process, both on the same tenant budget. Deprovision latency: from the SCIM 204 of `active=false` until the emulator shows the user blocked and (enterprise) revoke-access done; 20 samples each, idle and while another organization's push of as many users to the same tenant is queued (written before the run, its jobs made due at once).",
    "",
    "| plan | users | wall time | physical limit (bottleneck) | share of limit | calls/user | 429s | deprovision p50 / p99, idle | deprovision p50 / p99, backlog |",
    "|---|---|---|---|---|---|---|---|---|",
    ...rows,
    "",
    ...runs.map(
      (r) =>
        `Bridge CPU during the ${r.plan} push: ${Math.round(r.bridgeCpuMs)} ms (${((r.bridgeCpuMs * 1000) / r.users).toFixed(0)} µs per user).`,
    ),
    "",
    "Targets: ≥ 90% of the bottleneck's rate; ≤ 1% of calls answered 429; deprovision p99 ≤ 2 s idle and ≤ 5 s during the backlog.",
  ].join("\n");
}

export interface SyncPostgresOptions {
  users: number;
  plan: Auth0Plan;
  scale: number;
  /** Deactivations sampled during the backlog, and ms between them. */
  samples: number;
  cadenceMs: number;
  /** Which rows: "sqlite:1", "postgres:1", "postgres:3" (a PostgreSQL row with several instances kills one). */
  configs: string[];
  /** Several instances without killing one. */
  noKill: boolean;
}

export function parseSyncArgs(argv: readonly string[]): SyncPostgresOptions {
  const value = (name: string): string | undefined => {
    const i = argv.indexOf(`--${name}`);
    return i >= 0 ? argv[i + 1] : undefined;
  };
  const database = value("database");
  const instances = value("instances");
  return {
    users: Number(value("users") ?? 10_000),
    plan: (value("plan") ?? "enterprise") as Auth0Plan,
    scale: Number(value("scale") ?? 10),
    samples: Number(value("samples") ?? 40),
    cadenceMs: Number(value("cadence") ?? 200),
    configs:
      database || instances
        ? [`${database ?? "postgres"}:${instances ?? 1}`]
        : (value("configs") ?? "sqlite:1,postgres:1,postgres:3").split(","),
    noKill: argv.includes("--no-kill"),
  };
}

/** Where the PostgreSQL runs go: BENCH_DATABASE_URL, else an embedded server with production durability. */
async function postgresServer(): Promise<{ url: string; stop: () => Promise<void> }> {
  if (process.env.BENCH_DATABASE_URL) return { url: process.env.BENCH_DATABASE_URL, stop: async () => {} };
  return startEmbedded({ durable: true });
}

/** SQLite with one instance beside PostgreSQL with one and three, one of the three killed during the backlog. */
export async function syncPostgresBenchSection(options: SyncPostgresOptions): Promise<string> {
  const needsPostgres = options.configs.some((c) => c.startsWith("postgres"));
  const server = needsPostgres ? await postgresServer() : undefined;
  const results: SyncFigures[] = [];
  try {
    for (const config of options.configs) {
      const [database, n] = config.split(":");
      const instances = Number(n ?? 1);
      console.error(`bench: sync on ${database} with ${instances} instance(s), load ${loadavg()[0]!.toFixed(2)}`);
      results.push(
        await runSync({
          plan: options.plan,
          users: options.users,
          scale: options.scale,
          database: database === "postgres" ? "postgres" : "sqlite",
          instances,
          ...(server ? { postgresUrl: server.url } : {}),
          kill: instances > 1 && !options.noKill,
          backlogSamples: options.samples,
          cadenceMs: options.cadenceMs,
        }),
      );
    }
  } finally {
    await server?.stop();
  }
  const rows = results.map((r) => {
    const share = r.limitSeconds / r.wallSeconds;
    return `| ${r.database} | ${r.instances}${r.kill ? " (one killed)" : ""} | ${r.wallSeconds.toFixed(1)} s | ${r.limitSeconds.toFixed(1)} s — ${r.bottleneck} | **${(share * 100).toFixed(0)}%** | ${r.rateLimited} (${pct(r.rateLimited, r.calls)}) | ${(r.calls / r.users).toFixed(2)} | ${ms(percentile(r.idle, 50))} / ${ms(percentile(r.idle, 99))} | ${ms(percentile(r.backlog, 50))} / **${ms(percentile(r.backlog, 99))}** | ${r.backlogRateLimited} (${pct(r.backlogRateLimited, r.backlogCalls)}) | ${r.load.toFixed(2)} |`;
  });
  const killed = results.filter((r) => r.killedSample !== undefined);
  return [
    `Initial push of ${options.users.toLocaleString("en")} users into an empty tenant on the ${options.plan} plan, buckets time-compressed ×${options.scale} on both sides (the ratio to the physical limit is what matters), 50 ms added to every Auth0 call, one emulator (one tenant) for all instances; the push's jobs are written first and made due once every instance is up (wall time runs from the push's first Auth0 call until its queue is empty); a drift scan and an operator's \`scim-bridge reconcile --dry-run\` run during the push on the same budget. Instances are \`scim-bridge serve\` processes on one database; SCIM requests go round robin over them. PostgreSQL: ${process.env.BENCH_DATABASE_URL ? "BENCH_DATABASE_URL" : "embedded, fsync and synchronous_commit on"}, on this machine.`,
    "",
    `Deprovision latency: from the SCIM 204 of \`active=false\` until the emulator shows the user blocked and (enterprise) its sessions revoked. Idle: 20 one after another once the push drained. Backlog: ${options.samples} sent every ${options.cadenceMs} ms (not waiting for each other) while another organization's push of ${options.users.toLocaleString("en")} users to the same tenant is queued (written before the run, its jobs made due at once). With three instances, the instance that acknowledged the ${Math.floor(options.samples / 4) + 1}th deactivation is SIGKILLed 40 ms after its 204 (it is running that job) and restarted 2 s later.`,
    "",
    "| database | instances | wall time | physical limit (bottleneck) | share of bottleneck | 429s, push | calls/user | deprovision p50 / p99, idle | deprovision p50 / p99, backlog | 429s, backlog | load (1 min) |",
    "|---|---|---|---|---|---|---|---|---|---|---|",
    ...rows,
    "",
    ...killed.map(
      (r) => `The deactivation the killed instance was running reached Auth0 ${ms(r.killedSample)} after its 204.`,
    ),
    ...results.map(
      (r) =>
        `Bridge CPU during the push, ${r.database} × ${r.instances}: ${Math.round(r.bridgeCpuMs)} ms (${((r.bridgeCpuMs * 1000) / r.users).toFixed(0)} µs per user).`,
    ),
    "",
    "Targets: ≥ 90% of the bottleneck's rate and ≤ 1% of calls answered 429 with one and three instances (the shared budget holds); deprovision p99 ≤ 2 s idle and ≤ 5 s during the backlog with one of three instances killed.",
  ].join("\n");
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const argv = process.argv.slice(2);
  const options = parseSyncArgs(argv);
  if (argv.includes("--sqlite-section")) console.log(await syncBenchSection(options.users));
  else console.log(await syncPostgresBenchSection(options));
}
