/**
 * PostgreSQL job queue benchmark: claim + finish throughput of src/directory/pg/outbox.ts with one
 * claimer and with three (each its own pool, as three instances would be), every job finished as
 * done at once, so the figures are the queue's own cost, not a handler's.
 *
 *   npx tsx bench/pg-queue.ts [--jobs 3000] [--batch 16]
 *
 * The server is TEST_DATABASE_URL if set (its user needs CREATEDB), else an embedded PostgreSQL
 * started as the tests start it, with fsync and synchronous_commit off: the figures then measure
 * round trips and CPU, not a disk's flush time. Reported: wall time, jobs/s, and CPU milliseconds per
 * 1,000 jobs of this process (the claimers) and of the PostgreSQL server (its backends, read from
 * /proc when the server runs on this machine), with the load average, as the machine is shared.
 */
import { loadavg } from "node:os";
import pg from "pg";
import { enqueueJobs, Lane } from "../src/directory/outbox.js";
import { runOnClient } from "../src/directory/store-op.js";
import { PgOutbox } from "../src/directory/pg/outbox.js";
import { migratePostgres } from "../src/directory/postgres.js";
import startServer from "../test/support/postgres-global-setup.js";
import { postmasterPid, serverCpuMs } from "./postgres.js";

function arg(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : fallback;
}

interface Figures {
  claimers: number;
  jobs: number;
  seconds: number;
  clientCpuMsPer1k: number;
  serverCpuMsPer1k: number;
  load: number;
}

async function measure(url: string, claimers: number, jobs: number, batch: number): Promise<Figures> {
  const setup = new pg.Pool({ connectionString: url, max: 1 });
  await setup.query("TRUNCATE jobs");
  const subjects = Array.from({ length: jobs }, (_, i) => `u${i}`);
  for (let i = 0; i < subjects.length; i += 1000)
    await runOnClient(
      setup,
      enqueueJobs({ organizationId: "org_1", kind: "user", lane: Lane.provision }, subjects.slice(i, i + 1000)),
    );
  await setup.query("VACUUM ANALYZE jobs");
  const pools = Array.from({ length: claimers }, () => new pg.Pool({ connectionString: url, max: 4 }));
  // An idle connection the server closes (at its shutdown) must not end the process.
  for (const p of [setup, ...pools]) p.on("error", () => undefined);
  const postmaster = await postmasterPid(url);
  // Every pool opens its connections before the clock starts.
  await Promise.all(pools.flatMap((p) => [0, 1, 2, 3].map(() => p.query("SELECT 1"))));

  const serverBefore = serverCpuMs(postmaster);
  const cpuBefore = process.cpuUsage();
  const started = performance.now();
  let done = 0;
  await Promise.all(
    pools.map(async (pool, i) => {
      const outbox = new PgOutbox({ pool, backoffMs: () => 1000 });
      const owner = `bench-${i}`;
      for (;;) {
        const claimed = await outbox.claim(owner, batch, 60_000);
        if (claimed.length === 0) return;
        await Promise.all(
          claimed.map(async (job) => {
            if (await outbox.finish(owner, { id: job.id, leaseToken: job.leaseToken }, { status: "done" })) done++;
          }),
        );
      }
    }),
  );
  const seconds = (performance.now() - started) / 1000;
  const cpu = process.cpuUsage(cpuBefore);
  const serverMs = serverCpuMs(postmaster) - serverBefore;
  await Promise.all([...pools, setup].map((p) => p.end()));
  if (done !== jobs) throw new Error(`finished ${done} of ${jobs} jobs`);
  return {
    claimers,
    jobs,
    seconds,
    clientCpuMsPer1k: ((cpu.user + cpu.system) / 1000 / jobs) * 1000,
    serverCpuMsPer1k: (serverMs / jobs) * 1000,
    load: loadavg()[0]!,
  };
}

async function main(): Promise<void> {
  const jobs = arg("jobs", 3000);
  const batch = arg("batch", 16);
  let adminUrl = "";
  const stop = await startServer({
    provide: (key: string, value: string) => {
      if (key === "postgresAdminUrl") adminUrl = value;
      if (key === "postgresUnavailable" && value) throw new Error(`no PostgreSQL: ${value}`);
    },
  } as unknown as Parameters<typeof startServer>[0]);
  try {
    const admin = new pg.Client({ connectionString: adminUrl });
    await admin.connect();
    await admin.query("DROP DATABASE IF EXISTS scim_bench_queue WITH (FORCE)");
    await admin.query("CREATE DATABASE scim_bench_queue");
    await admin.end();
    const url = new URL(adminUrl);
    url.pathname = "/scim_bench_queue";
    await migratePostgres(url.toString());

    console.log(
      `load average before: ${loadavg()
        .map((l) => l.toFixed(2))
        .join(", ")}`,
    );
    console.log(
      `| claimers | jobs | batch | wall s | jobs/s | client CPU ms / 1k jobs | server CPU ms / 1k jobs | load (1 min) |`,
    );
    console.log(`|---|---|---|---|---|---|---|---|`);
    for (const claimers of [1, 3, 1, 3]) {
      const f = await measure(url.toString(), claimers, jobs, batch);
      console.log(
        `| ${f.claimers} | ${f.jobs} | ${batch} | ${f.seconds.toFixed(2)} | ${(f.jobs / f.seconds).toFixed(0)} | ` +
          `${f.clientCpuMsPer1k.toFixed(0)} | ${Number.isNaN(f.serverCpuMsPer1k) ? "n/a" : f.serverCpuMsPer1k.toFixed(0)} | ${f.load.toFixed(2)} |`,
      );
    }
  } finally {
    await stop?.();
  }
}

await main();
