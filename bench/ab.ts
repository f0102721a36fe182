/**
 * Before/after on a shared machine: two builds of `scim-bridge serve` (A: another checkout's
 * bin/scim-bridge.js, B: this one), each on its own copy of the same seeded database, both with the
 * emulator, measured in alternating short bursts (A then B, then B then A, …) so that both see the
 * same background load. Reports totals per scenario and the ratios B/A of req/s and of server CPU
 * per request.
 *
 *   npx tsx bench/ab.ts --before ../main/bin/scim-bridge.js [--users 10000] [--rounds 6] [--burst 2] [--only REGEX]
 *   npx tsx bench/ab.ts --before bin/scim-bridge.js --before-env SYNC_WORKER_THREAD=0   one build, two settings
 *   npx tsx bench/ab.ts --before ../main/bin/scim-bridge.js --database postgres       on PostgreSQL
 *
 * With --database postgres both sides run on the embedded PostgreSQL server of bench/postgres.ts
 * (or BENCH_DATABASE_URL), each on its own copy of one seeded database; CPU per request is then
 * serve's alone (the server's processes are shared by both sides).
 */
import { copyFileSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { packageRoot } from "../src/paths.js";
import {
  measure,
  readScenarios,
  seedShipped,
  serveEnv,
  startLogged,
  stop,
  writeScenarios,
  type Row,
  type Scenario,
  type ShippedSeed,
} from "./shipped.js";
import { createDatabase, dropDatabase, seedPostgres, startBenchPostgres } from "./postgres.js";
import type { SeededIds } from "./seed.js";

const { values } = parseArgs({
  options: {
    before: { type: "string" },
    "before-env": { type: "string", default: "" },
    users: { type: "string", default: "10000" },
    organizations: { type: "string", default: "10000" },
    rounds: { type: "string", default: "6" },
    burst: { type: "string", default: "2" },
    only: { type: "string" },
    database: { type: "string", default: "sqlite" },
  },
});
if (!values.before) throw new Error("--before <path to the other checkout's bin/scim-bridge.js> is required");
const after = join(packageRoot, "bin", "scim-bridge.js");
const only = values.only ? new RegExp(values.only, "i") : undefined;

/** KEY=VALUE,… added to the "before" side's environment, to compare two settings of one build. */
const beforeEnv = Object.fromEntries(
  values["before-env"]
    .split(",")
    .filter((pair) => pair.includes("="))
    .map((pair) => [pair.slice(0, pair.indexOf("=")), pair.slice(pair.indexOf("=") + 1)]),
);
const postgres = values.database === "postgres";
if (!postgres && values.database !== "sqlite") throw new Error("--database is sqlite or postgres");
const pgServer = postgres ? await startBenchPostgres() : undefined;
const seed: SeededIds = postgres
  ? await seedPostgres(
      await createDatabase(pgServer!.adminUrl, "scim_ab_seed"),
      Number(values.users),
      Number(values.organizations),
    )
  : seedShipped(Number(values.users), Number(values.organizations));
const dir = postgres ? mkdtempSync(join(tmpdir(), "bench-ab-")) : join((seed as ShippedSeed).dbPath, "..");
let databases: string[];
if (pgServer) {
  databases = [
    await createDatabase(pgServer.adminUrl, "scim_ab_before", "scim_ab_seed"),
    await createDatabase(pgServer.adminUrl, "scim_ab_after", "scim_ab_seed"),
  ];
} else {
  const copy = join(dir, "b.db");
  copyFileSync((seed as ShippedSeed).dbPath, copy);
  databases = [`sqlite:${(seed as ShippedSeed).dbPath}`, `sqlite:${copy}`];
}
const sides = [
  { name: "before", cli: values.before, db: databases[0]! },
  { name: "after", cli: after, db: databases[1]! },
];
const servers = await Promise.all(
  sides.map(async (side) => {
    // An emulator each: two bridges creating the same Auth0 organization in one tenant would conflict.
    const emu = await startLogged(
      [after, "auth0-emulator", "--port", "0", "--plan", "enterprise"],
      process.env,
      join(dir, `${side.name}-emulator.log`),
      /AUTH0_MANAGEMENT_URL=(\S+)/,
    );
    const s = await startLogged(
      [side.cli, "serve"],
      {
        ...serveEnv("", emu.match[1]!),
        DATABASE_URL: side.db,
        ...(side.name === "before" ? beforeEnv : {}),
      },
      join(dir, `${side.name}.log`),
      /"port":(\d+)/,
    );
    const plan = [...readScenarios(seed), ...writeScenarios(seed, side.name)].filter(
      (sc) => !only || only.test(sc.name),
    );
    return { ...side, child: s.child, emulator: emu.child, origin: `http://127.0.0.1:${s.match[1]}`, plan };
  }),
);
const totals = new Map<string, { requests: number; cpu: number; seconds: number }>();
try {
  const names = servers[0]!.plan.map((sc) => sc.name);
  for (let round = 0; round < Number(values.rounds); round++) {
    const order = round % 2 === 0 ? servers : [...servers].reverse();
    for (let i = 0; i < names.length; i++) {
      for (const server of order) {
        const sc: Scenario = server.plan[i]!;
        const row: Row = await measure(server.origin, seed, sc, Number(values.burst), server.name, server.child.pid);
        const key = `${server.name}\t${sc.name}`;
        const t = totals.get(key) ?? { requests: 0, cpu: 0, seconds: 0 };
        t.requests += row.rps * Number(values.burst);
        t.cpu += row.cpuPerRequest * row.rps * Number(values.burst);
        t.seconds += Number(values.burst);
        totals.set(key, t);
      }
    }
  }
  console.log(
    "| scenario | req/s before | req/s after | after/before | CPU ms/req before | CPU ms/req after | after/before |",
  );
  console.log("|---|---:|---:|---:|---:|---:|---:|");
  for (const name of names) {
    const a = totals.get(`before\t${name}`)!;
    const b = totals.get(`after\t${name}`)!;
    const rps = (t: typeof a) => t.requests / t.seconds;
    const cpu = (t: typeof a) => t.cpu / Math.max(1, t.requests);
    console.log(
      `| ${name} | ${rps(a).toFixed(0)} | ${rps(b).toFixed(0)} | ${(rps(b) / rps(a)).toFixed(2)} | ${cpu(a).toFixed(2)} | ${cpu(b).toFixed(2)} | ${(cpu(b) / cpu(a)).toFixed(2)} |`,
    );
  }
} finally {
  for (const server of servers) {
    await stop(server.child);
    await stop(server.emulator);
  }
  rmSync(dir, { recursive: true, force: true });
  if (pgServer) {
    for (const name of ["scim_ab_before", "scim_ab_after", "scim_ab_seed"])
      await dropDatabase(pgServer.adminUrl, name).catch(() => undefined);
    await pgServer.stop();
  }
}
