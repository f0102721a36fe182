/**
 * `npm run bench`: runs each benchmark module in turn and writes its section of BENCHMARKS.md.
 * To add a benchmark, append to `benches` a function that returns a markdown section. Sections not
 * run this time (`npm run bench -- shipped` runs one) keep their previous text.
 *
 * `shipped` is the product as users run it (bench/shipped.ts: 10k, 100k and 1M users, about 15
 * minutes on a quiet 2-core machine); BENCH_SHIPPED_ARGS passes its options, e.g.
 * `BENCH_SHIPPED_ARGS="--sizes 10000 --duration 3 --mixed 0" npm run bench -- shipped` for a quick run.
 * `sync-postgres` runs the sync benchmark on SQLite (one instance) and PostgreSQL (one and three
 * instances, one of the three killed during the backlog); BENCH_SYNC_ARGS passes bench/sync.ts's options.
 * `shipped-postgres` runs the same scenarios at 100,000 users on SQLite, on PostgreSQL with one instance
 * and with three (bench/shipped-postgres.ts, about 6 minutes); BENCH_SHIPPED_POSTGRES_ARGS passes its
 * options, e.g. `BENCH_SHIPPED_POSTGRES_ARGS="--duration 3 --runs postgres:1"`.
 * `scim` is the bare createApp() without the product's middleware or worker, kept for comparison.
 */
import { execFileSync } from "node:child_process";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { cpus, platform, release, totalmem } from "node:os";
import { join } from "node:path";
import { packageRoot } from "../src/paths.js";
import { fairnessBenchSection } from "./fairness.js";
import { consoleBenchSection } from "./console.js";
import { importBenchSection } from "./import.js";
import { scimBenchSection } from "./scim.js";
import { parseShippedArgs, runShipped, shippedSection } from "./shipped.js";
import { parseSyncArgs, syncBenchSection, syncPostgresBenchSection } from "./sync.js";
import { parseShippedPostgresArgs, runShippedPostgres, shippedPostgresSection } from "./shipped-postgres.js";

// With the bare createApp() read figures as an extra column unless BENCH_SHIPPED_ARGS says otherwise.
const shippedOptions = parseShippedArgs((process.env.BENCH_SHIPPED_ARGS ?? "--bare").split(/\s+/).filter(Boolean));
const shippedPostgresOptions = parseShippedPostgresArgs(
  (process.env.BENCH_SHIPPED_POSTGRES_ARGS ?? "").split(/\s+/).filter(Boolean),
);
const benches: { id: string; title: string; run: () => Promise<string> }[] = [
  {
    id: "shipped",
    title: "SCIM server as shipped",
    run: async () => shippedSection(await runShipped(shippedOptions), shippedOptions),
  },
  {
    id: "shipped-postgres",
    title: "SCIM server as shipped on PostgreSQL",
    run: async () => shippedPostgresSection(await runShippedPostgres(shippedPostgresOptions), shippedPostgresOptions),
  },
  { id: "scim", title: "SCIM server, bare app (comparison only)", run: () => scimBenchSection(100_000) },
  { id: "sync", title: "Sync engine", run: () => syncBenchSection(10_000) },
  {
    id: "sync-postgres",
    title: "Sync engine on PostgreSQL, one and three instances",
    // BENCH_SYNC_ARGS: bench/sync.ts's options, e.g. "--users 2000 --configs postgres:3" for a quick run.
    run: () =>
      syncPostgresBenchSection(parseSyncArgs((process.env.BENCH_SYNC_ARGS ?? "").split(/\s+/).filter(Boolean))),
  },
  { id: "fairness", title: "Fairness between tenants", run: () => fairnessBenchSection(15) },
  { id: "console", title: "Console users page", run: () => consoleBenchSection(100_000) },
  { id: "import", title: "User import", run: () => importBenchSection(100_000) },
  {
    id: "preview",
    title: "Mapping preview",
    // A script of its own (it seeds its own database); its table lands in bench/results/preview.md.
    run: async () => {
      execFileSync(process.execPath, ["--import", "tsx", join(packageRoot, "bench", "preview.ts")], {
        stdio: ["ignore", "ignore", "inherit"],
      });
      return readFileSync(join(packageRoot, "bench", "results", "preview.md"), "utf8").replace(/^<!--.*-->\n/, "");
    },
  },
];

const file = join(packageRoot, "BENCHMARKS.md");
const chosen = process.argv.slice(2);
const previous = existsSync(file) ? readFileSync(file, "utf8") : "";

const section = (id: string): string | undefined => {
  const m = previous.match(new RegExp(`<!-- bench:${id} -->[\\s\\S]*?<!-- /bench:${id} -->`));
  return m?.[0];
};

const cpu = cpus();
const machine = `${cpu.length} × ${cpu[0]?.model ?? "unknown CPU"}, ${Math.round(totalmem() / 2 ** 30)} GiB RAM, ${platform()} ${release()}, Node ${process.version}`;
const parts: string[] = [];
for (const bench of benches) {
  if (chosen.length > 0 && !chosen.includes(bench.id)) {
    const kept = section(bench.id);
    if (kept) parts.push(kept);
    continue;
  }
  console.error(`bench: ${bench.title}…`);
  const body = await bench.run();
  parts.push(
    `<!-- bench:${bench.id} -->\n## ${bench.title}\n\nMeasured ${new Date().toISOString().slice(0, 16).replace("T", " ")} UTC on ${machine}. The machine is shared with other work, so figures are noisy.\n\n${body}\n<!-- /bench:${bench.id} -->`,
  );
}

writeFileSync(
  file,
  `# Benchmarks\n\nWritten by \`npm run bench\` (bench/run.ts). Each section says when and on what it was measured.\n\n${parts.join("\n\n")}\n`,
);
console.error(`bench: wrote ${file}`);
