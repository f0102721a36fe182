/**
 * Sync engine benchmark: a 10,000-user initial push against the emulator with Auth0's rate
 * limits on (enterprise and essentials profiles) and 50 ms of latency per call. It reports the wall
 * time against the physical limit (the bottleneck bucket's refill rate × the calls it must carry),
 * calls per user, 429s, and deprovision latency (SCIM 2xx → emulator shows the user blocked and
 * its access revoked), idle and during a backlog.
 *
 * The bridge runs as `scim-bridge serve` in a process of its own, as deployed; the emulator runs here.
 *
 * Time compression: both the emulator and the bridge's limiter run the plan's buckets `scale` times
 * faster (--rate-scale / AUTH0_RATE_SCALE), so an hour of Auth0 pacing fits in a minute. Ratios to
 * the physical limit are unaffected; latencies are real (the 50 ms per call is not scaled).
 */
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { inArray } from "drizzle-orm";
import { jobs } from "../db/schema.js";
import type { Auth0Plan } from "../src/auth0/rate-limiter.js";
import { openDatabase } from "../src/directory/database.js";
import { scimBaseUrl } from "../src/directory/directories.js";
import { onboardOrganizationOp } from "../src/admin/onboarding.js";
import { changeBy } from "../src/directory/write-context.js";
import { createUser } from "../src/directory/users.js";
import { PLAN_LIMITS, startEmulator, type CallLogEntry } from "../src/emulator/index.js";
import { packageRoot } from "../src/paths.js";
import { enqueueJob, Lane } from "../src/directory/outbox.js";
import { runSync, writeSync } from "../src/directory/store-op.js";

interface SyncFigures {
  plan: Auth0Plan;
  users: number;
  scale: number;
  wallSeconds: number;
  limitSeconds: number;
  bottleneck: string;
  calls: number;
  rateLimited: number;
  /** CPU time of the bridge process from its start-up to the drained queue (the push, a drift scan). */
  bridgeCpuMs: number;
  idle: number[];
  backlog: number[];
}

const percentile = (xs: number[], p: number): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))] ?? NaN;
};

/** Calls each bucket carried, counted as the emulator answers them (global included on plans that have one). */
class BucketLoad {
  readonly carried = new Map<string, number>();
  calls = 0;
  rateLimited = 0;
  constructor(private readonly plan: Auth0Plan) {}
  record(entry: CallLogEntry): void {
    if (!entry.path.startsWith("/api/v2/")) return;
    this.calls++;
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

/** `scim-bridge serve` as its own process (as deployed), so that it does not share a CPU with the emulator. */
async function serveBridge(
  env: NodeJS.ProcessEnv,
): Promise<{ child: ChildProcess; port: number; env: NodeJS.ProcessEnv }> {
  // BENCH_CPU_PROF=DIR: a V8 CPU profile of the bridge process (summarise with bench/profile-summary.ts).
  const profile = process.env.BENCH_CPU_PROF ? ["--cpu-prof", `--cpu-prof-dir=${process.env.BENCH_CPU_PROF}`] : [];
  const child = spawn(process.execPath, [...profile, "--import", "tsx", join(packageRoot, "src", "main.ts"), "serve"], {
    env,
    stdio: ["ignore", "pipe", "inherit"],
  });
  let out = "";
  child.stdout!.on("data", (d: Buffer) => (out += d.toString()));
  for (const deadline = Date.now() + 30_000; ;) {
    const m = /"port":(\d+)/.exec(out);
    if (m) return { child, port: Number(m[1]), env };
    if (child.exitCode !== null || Date.now() > deadline) throw new Error(`scim-bridge serve did not start:\n${out}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

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

async function runOne(plan: Auth0Plan, users: number, scale: number): Promise<SyncFigures> {
  const dir = mkdtempSync(join(tmpdir(), "scim-bridge-bench-sync-"));
  const load = new BucketLoad(plan);
  const revoked = new Set<string>();
  let counting = false;
  let firstCallAt = 0;
  const emulator = await startEmulator({
    plan,
    rateScale: scale,
    onCall: (entry) => {
      if (counting) {
        firstCallAt ||= Date.now();
        load.record(entry);
      }
      if (entry.method === "POST" && entry.path.endsWith("/revoke-access") && entry.status < 300)
        revoked.add(decodeURIComponent(entry.path.split("/")[4] ?? ""));
    },
  });
  emulator.setFaults({ latency: { ms: 50 } });
  const databaseUrl = `sqlite:${join(dir, "bridge.db")}`;
  const { db, close } = openDatabase(databaseUrl);
  let bridge: ChildProcess | undefined;
  try {
    const onboarded = writeSync(
      db,
      onboardOrganizationOp({ slug: `bench-${plan}` }, changeBy({ type: "operator", id: "bench" })),
    );
    const ctx = {
      organizationId: onboarded.organization.id,
      directoryId: onboarded.directory.id,
      actor: { type: "directory" as const, id: onboarded.directory.id },
      requestId: null,
      at: Date.now(),
    };
    const push = (prefix: string, n: number): string[] =>
      db.transaction((tx) =>
        Array.from({ length: n }, (_, i) => {
          const email = `${prefix}${i}@bench.example`;
          return runSync(
            tx,
            createUser(ctx, {
              schemas: ["urn:ietf:params:scim:schemas:core:2.0:User"],
              userName: email,
              emails: [{ value: email, primary: true }],
              active: true,
            }),
          ).id;
        }),
      );
    const openJobs = () =>
      db
        .select({ id: jobs.id })
        .from(jobs)
        .where(inArray(jobs.state, ["pending", "running"]))
        .all().length;

    const ids = push("u", users);
    counting = true;
    const served = await serveBridge({
      ...process.env,
      DATABASE_URL: databaseUrl,
      PORT: "0",
      LOG_LEVEL: "info",
      AUTH0_DOMAIN: "bench.example.auth0.com",
      AUTH0_CLIENT_ID: "bench",
      AUTH0_CLIENT_SECRET: "bench",
      AUTH0_MANAGEMENT_URL: emulator.url,
      AUTH0_PLAN: plan,
      AUTH0_RATE_SCALE: String(scale),
      SCIM_RATE_LIMIT_PER_SECOND: "0",
      // Enough calls in flight for the compressed rate at 50 ms per call.
      SYNC_CONCURRENCY: "64",
    });
    bridge = served.child;
    const cpuAtStart = processCpuMs(bridge.pid);
    // A drift scan during the push: the server's own background scan, and an operator's
    // `scim-bridge reconcile --dry-run` in a second process spending the same tenant budget.
    runSync(
      db,
      enqueueJob({
        organizationId: onboarded.organization.id,
        kind: "drift",
        subjectId: onboarded.organization.id,
        lane: Lane.background,
      }),
    );
    const cli = spawn(
      process.execPath,
      [
        "--import",
        "tsx",
        join(packageRoot, "src", "main.ts"),
        "reconcile",
        onboarded.organization.slug,
        "--dry-run",
        "--json",
      ],
      {
        env: { ...served.env, LOG_LEVEL: "silent" },
        stdio: ["ignore", "ignore", "inherit"],
      },
    );
    const cliExit = new Promise<number | null>((r) => cli.once("exit", (code) => r(code)));
    while (openJobs() > 0) await new Promise((r) => setTimeout(r, 50));
    const cliCode = await cliExit;
    if (cliCode !== 0 && cliCode !== 2) console.error(`bench: warning: reconcile --dry-run exited ${cliCode}`);
    // From the bridge's first Auth0 call (process start-up is not sync time) until the queue is empty.
    const wallSeconds = (Date.now() - firstCallAt) / 1000;
    const bridgeCpuMs = processCpuMs(bridge.pid) - cpuAtStart;
    counting = false;
    const limit = load.limit(scale);

    const base = scimBaseUrl(`http://127.0.0.1:${served.port}`, onboarded.directory.id);
    const headers = { Authorization: `Bearer ${onboarded.token.token}`, "Content-Type": "application/scim+json" };
    const deprovisionLatency = async (id: string, email: string): Promise<number> => {
      const res = await fetch(`${base}/Users/${id}`, {
        method: "PATCH",
        headers,
        body: JSON.stringify({
          schemas: ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
          Operations: [{ op: "replace", path: "active", value: false }],
        }),
      });
      if (res.status !== 204) throw new Error(`PATCH answered ${res.status}`);
      const acked = performance.now();
      const auth0Id = emulator.state.usersByEmail(email)[0]!.user_id;
      for (;;) {
        const blocked = emulator.state.usersByEmail(email)[0]?.blocked === true;
        // Session revocation exists on the enterprise plan only (essentials answers 403; the bridge records it).
        if (blocked && (plan !== "enterprise" || revoked.has(auth0Id))) return performance.now() - acked;
        await new Promise((r) => setTimeout(r, 5));
      }
    };

    const idle: number[] = [];
    for (let i = 0; i < 20; i++) idle.push(await deprovisionLatency(ids[i]!, `u${i}@bench.example`));
    push("backlog", users);
    await new Promise((r) => setTimeout(r, 1_000));
    const backlog: number[] = [];
    for (let i = 20; i < 40; i++) {
      backlog.push(await deprovisionLatency(ids[i]!, `u${i}@bench.example`));
      await new Promise((r) => setTimeout(r, 100));
    }
    if (openJobs() < users / 2)
      console.error(`bench: warning: the backlog was mostly drained (${openJobs()} open) before the last sample`);
    return {
      plan,
      users,
      scale,
      wallSeconds,
      limitSeconds: limit.seconds,
      bottleneck: limit.bucket,
      calls: load.calls,
      rateLimited: load.rateLimited,
      bridgeCpuMs,
      idle,
      backlog,
    };
  } finally {
    if (bridge && bridge.exitCode === null) {
      const exited = new Promise((r) => bridge!.once("exit", r));
      bridge.kill("SIGTERM");
      await exited;
    }
    await emulator.close();
    close();
    rmSync(dir, { recursive: true, force: true });
  }
}

export async function syncBenchSection(users = 10_000): Promise<string> {
  const scales = (process.env.BENCH_SCALES ?? "10,30").split(",").map(Number);
  const runs = [await runOne("enterprise", users, scales[0]!), await runOne("essentials", users, scales[1]!)];
  const ms = (x: number) => `${Math.round(x)} ms`;
  const rows = runs.map(
    (r) =>
      `| ${r.plan} (×${r.scale}) | ${r.users} | ${r.wallSeconds.toFixed(1)} s | ${r.limitSeconds.toFixed(1)} s — ${r.bottleneck} | **${((r.limitSeconds / r.wallSeconds) * 100).toFixed(0)}%** | ${(r.calls / r.users).toFixed(2)} | ${r.rateLimited} (${((r.rateLimited / r.calls) * 100).toFixed(2)}%) | ${ms(percentile(r.idle, 50))} / ${ms(percentile(r.idle, 99))} | ${ms(percentile(r.backlog, 50))} / ${ms(percentile(r.backlog, 99))} |`,
  );
  return [
    "Initial push of users into an empty tenant; emulator with the plan's published rate-limit buckets and 50 ms added to every call; buckets time-compressed by the factor shown (both sides), so the ratio to the physical limit is what matters. During the push a drift scan runs in the server and an operator's `scim-bridge reconcile --dry-run` runs in a second process, both on the same tenant budget. Deprovision latency: from the SCIM 204 of `active=false` until the emulator shows the user blocked and (enterprise) revoke-access done; 20 samples each, idle and during a second push of the same size.",
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

if (import.meta.url === `file://${process.argv[1]}`) {
  console.log(await syncBenchSection(Number(process.argv[2] ?? 10_000)));
}
