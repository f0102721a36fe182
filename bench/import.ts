/**
 * User import benchmark: `scim-bridge users import` of a legacy-user file (every user with a salted
 * hash and some metadata) through the emulator's import jobs, with Auth0's rules on: at most 500 KB
 * per job and 2 concurrent jobs per tenant.
 *
 * The limit those rules impose: each job takes the emulator `baseMs + users × perUserMs` (a stand-in
 * for Auth0's processing time), and no more than two run at once, so the jobs cannot finish sooner
 * than the sum of their durations ÷ 2 (nor sooner than the longest one). The bridge's import phase
 * (first POST → last chunk recorded) is compared with that. Validation (the first pass over the
 * file) comes before it and is reported apart.
 *
 * Memory: the CLI process's peak RSS for the full file and for a tenth of it; flat means the
 * ten-times-larger file does not need ten times the memory.
 *
 * The bridge runs as its own process (the CLI, as an operator runs it); the emulator runs here.
 * `IMPORT_BENCH_USERS` (default 100,000) and `IMPORT_BENCH_PER_USER_MS` (default 4) tune it.
 */
import { spawn } from "node:child_process";
import { createWriteStream, mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { once } from "node:events";
import { userImports } from "../db/schema.js";
import { openDatabase } from "../src/directory/database.js";
import { onboardOrganizationOp } from "../src/admin/onboarding.js";
import { changeBy } from "../src/directory/write-context.js";
import { startEmulator, type CallLogEntry } from "../src/emulator/index.js";
import { packageRoot } from "../src/paths.js";
import { writeSync } from "../src/directory/store-op.js";

interface Figures {
  users: number;
  fileBytes: number;
  jobs: number;
  validateSeconds: number;
  importSeconds: number;
  limitSeconds: number;
  totalSeconds: number;
  peakRssMiB: number;
  inserted: number;
}

async function writeFile(path: string, users: number): Promise<void> {
  const out = createWriteStream(path);
  for (let i = 0; i < users; i++) {
    const record = {
      email: `legacy.user.${i}@bench.example`,
      email_verified: true,
      given_name: "Legacy",
      family_name: `User ${i}`,
      external_id: `00u${i.toString(36).padStart(8, "0")}`,
      custom_password_hash: {
        algorithm: "sha256",
        hash: { value: "d24e794fce503c3ddb1cd1ba1dd5d9b250cf9917336a0316fefd87fecf79200f", encoding: "hex" },
        salt: { value: `salt${i}`, position: "prefix" },
      },
      user_metadata: { locale: "en", legacy_id: i },
    };
    if (!out.write(`${JSON.stringify(record)}\n`)) await once(out, "drain");
  }
  out.end();
  await once(out, "finish");
}

async function runOnce(users: number, perUserMs: number, baseMs: number): Promise<Figures> {
  const dir = mkdtempSync(join(tmpdir(), "scim-bridge-import-bench-"));
  let firstPost = 0;
  const emulator = await startEmulator({
    plan: "enterprise",
    importJobTiming: { baseMs, perUserMs },
    onCall: (entry: CallLogEntry) => {
      if (entry.method === "POST" && entry.path === "/api/v2/jobs/users-imports" && entry.status === 202)
        firstPost ||= Date.parse(entry.time);
    },
  });
  try {
    const file = join(dir, "users.jsonl");
    await writeFile(file, users);
    const databaseUrl = `sqlite:${join(dir, "bridge.db")}`;
    const { db, close } = openDatabase(databaseUrl);
    const org = writeSync(
      db,
      onboardOrganizationOp({ slug: "bench-import" }, changeBy({ type: "operator", id: "bench" })),
    );
    close();
    const started = Date.now();
    const child = spawn(
      process.execPath,
      [
        "--import",
        "tsx",
        "--import",
        "data:text/javascript,process.on('exit',()=>process.stderr.write('maxrss '+process.resourceUsage().maxRSS+'\\n'))",
        join(packageRoot, "src", "main.ts"),
        "users",
        "import",
        org.organization.id,
        file,
        "--json",
        "--no-sync",
      ],
      {
        env: {
          ...process.env,
          DATABASE_URL: databaseUrl,
          AUTH0_DOMAIN: "bench.example.auth0.com",
          AUTH0_CLIENT_ID: "bench",
          AUTH0_CLIENT_SECRET: "bench",
          AUTH0_MANAGEMENT_URL: emulator.url,
          AUTH0_PLAN: "enterprise",
          LOG_LEVEL: "warn",
        },
        stdio: ["ignore", "pipe", "pipe"],
      },
    );
    let stdout = "";
    let stderr = "";
    child.stdout!.on("data", (d: Buffer) => (stdout += d.toString()));
    child.stderr!.on("data", (d: Buffer) => (stderr += d.toString()));
    const [code] = (await once(child, "exit")) as [number];
    const ended = Date.now();
    if (code !== 0) throw new Error(`users import exited ${code}: ${stderr.slice(-2000)}`);
    const report = JSON.parse(stdout) as { inserted: number; chunks: number };
    // The tenant's side as it actually ran: each job from its POST to its users applied.
    const state = emulator.state as unknown as {
      importJobs: { jobs: Map<string, { createdMs: number; endedAt?: number }> };
    };
    const durations = [...state.importJobs.jobs.values()].map((j) => (j.endedAt ?? ended) - j.createdMs);
    const limitMs = Math.max(durations.reduce((a, b) => a + b, 0) / 2, ...durations);
    const validatedAt = firstPost || ended;
    // The import is over when its last chunk is recorded (the process then only closes the database).
    const reopened = openDatabase(databaseUrl);
    const finishedAt = reopened.db.select({ at: userImports.updatedAt }).from(userImports).get()?.at ?? ended;
    reopened.close();
    return {
      users,
      fileBytes: statSync(file).size,
      jobs: durations.length,
      validateSeconds: (validatedAt - started) / 1000,
      importSeconds: (finishedAt - validatedAt) / 1000,
      limitSeconds: limitMs / 1000,
      totalSeconds: (ended - started) / 1000,
      peakRssMiB: Number(/maxrss (\d+)/.exec(stderr)?.[1] ?? 0) / 1024,
      inserted: report.inserted,
    };
  } finally {
    await emulator.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

export async function importBenchSection(defaultUsers: number): Promise<string> {
  const users = Number(process.env.IMPORT_BENCH_USERS ?? defaultUsers);
  const perUserMs = Number(process.env.IMPORT_BENCH_PER_USER_MS ?? 4);
  const baseMs = 500;
  const small = await runOnce(Math.round(users / 10), perUserMs, baseMs);
  const full = await runOnce(users, perUserMs, baseMs);
  const row = (f: Figures) =>
    `| ${f.users.toLocaleString("en")} | ${(f.fileBytes / 2 ** 20).toFixed(1)} MiB | ${f.jobs} | ${f.validateSeconds.toFixed(1)} s | ${f.importSeconds.toFixed(1)} s | ${f.limitSeconds.toFixed(1)} s | **${((f.limitSeconds / f.importSeconds) * 100).toFixed(0)} %** | ${f.totalSeconds.toFixed(1)} s | ${f.peakRssMiB.toFixed(0)} MiB | ${f.inserted.toLocaleString("en")} |`;
  return [
    `\`scim-bridge users import\` (its own process) of a JSON Lines file of legacy users, each with a salted sha256 hash, metadata and an externalId, into the emulator (Enterprise profile). Each emulated import job is set to take ${baseMs} ms + ${perUserMs} ms a user; Auth0 allows 500 KB per job and 2 jobs at once, so the **limit** is the jobs' total duration (each from its POST to its users applied, as the emulator actually ran it) ÷ 2. **Import** is first POST → last chunk recorded in the directory (linking included); **validate** is the pass over the whole file before anything is sent. The share is limit ÷ import (100 % = the jobs never waited on the bridge).`,
    "",
    "| users | file | jobs | validate | import | limit | share of limit | total | peak RSS | inserted |",
    "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    row(small),
    row(full),
    "",
    `The validate pass is CPU-bound (parse and check every record); it and the process start dominate the smaller file's total.`,
    "",
    `Memory: ${(full.peakRssMiB / small.peakRssMiB).toFixed(2)}× the peak RSS for ${(full.fileBytes / small.fileBytes).toFixed(1)}× the file (the file is streamed twice and at most three jobs' worth of users are in memory at once).`,
  ].join("\n");
}
