/**
 * Exactly once, whatever happens mid-import: a POST whose answer was lost, a crash while a job is
 * polled, and a SIGKILL of the CLI process. Each time a rerun with the same file finishes the import,
 * and Auth0's own job summaries show every user inserted exactly once.
 */
import { execFile, spawn } from "node:child_process";
import { join } from "node:path";
import { and, eq } from "drizzle-orm";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { migratedUsers, userImportChunks, userImports, users, userSync } from "../../db/schema.js";
import type { ImportApi } from "../../src/sync/import/client.js";
import { runImport } from "../../src/sync/import/service.js";
import type { TestBridge } from "../helpers/scim.js";
import type { SyncHarness } from "../helpers/sync-harness.js";
import { emulatorJobs, hashedUsers, importBridge, importDeps, jsonl, operator, writeTemp } from "./helpers.js";

const root = join(import.meta.dirname, "../..");
let bridge: TestBridge;
let sync: SyncHarness;

beforeEach(async () => {
  // Jobs take 0.3 s + 1 ms a user, so a process can die while one runs.
  ({ bridge, sync } = await importBridge(300));
});
afterEach(async () => {
  await sync.close();
  await bridge.close();
});

/** Auth0's side: every user present once, and inserted by exactly one job. */
function expectExactlyOnce(n: number) {
  const all = [...sync.emulator.state.users.values()];
  expect(all).toHaveLength(n);
  expect(new Set(all.map((u) => u.email)).size).toBe(n);
  const inserted = emulatorJobs(sync.emulator).reduce((sum, j) => sum + (j.summary?.inserted ?? 0), 0);
  expect(inserted).toBe(n);
  // The directory: one migrated user per record, each linked to its own Auth0 user.
  expect(bridge.db.select().from(migratedUsers).all()).toHaveLength(n);
  const links = bridge.db
    .select({ id: userSync.auth0UserId })
    .from(userSync)
    .all()
    .map((r) => r.id);
  expect(new Set(links).size).toBe(n);
  expect(links.every((id) => sync.emulator.state.users.has(id!))).toBe(true);
}

describe("resuming an interrupted import", () => {
  it("a chunk whose POST went out but whose answer was lost is posted again, and Auth0's refusals count as already imported", async () => {
    const file = writeTemp("users.jsonl", jsonl(hashedUsers(800)));
    // Small jobs (about 180 users each), so that the import spans several.
    const deps = importDeps(bridge.db, sync, { maxChunkBytes: 100_000 });
    let posts = 0;
    const crashing: ImportApi = {
      ...deps.api,
      status: (id) => deps.api.status(id),
      errors: (id) => deps.api.errors(id),
      async submit(...args) {
        const job = await deps.api.submit(...args);
        if (++posts === 2) throw new Error("process died before the answer was recorded");
        return job;
      },
    };
    const first = await runImport(
      { ...deps, api: crashing },
      { organization: bridge.organizationId, filePath: file, format: "jsonl", actor: operator },
    );
    expect(first.state).toBe("failed");
    expect(
      bridge.db.select().from(userImportChunks).where(eq(userImportChunks.state, "submitting")).all(),
    ).toHaveLength(1);

    const second = await runImport(deps, {
      organization: bridge.organizationId,
      filePath: file,
      format: "jsonl",
      actor: operator,
    });
    expect(second).toMatchObject({ state: "done", resumed: true, records: 800, failed: 0, linked: 800 });
    expect(second.inserted + second.recovered).toBe(800);
    expect(second.recovered).toBeGreaterThan(0);
    expect(bridge.db.select().from(userImports).all()).toHaveLength(1);
    expectExactlyOnce(800);
  }, 120_000);

  it("a job that was submitted when the process stopped is polled, not posted again", async () => {
    const file = writeTemp("users.jsonl", jsonl(hashedUsers(600)));
    const deps = importDeps(bridge.db, sync, { maxChunkBytes: 100_000 });
    const stop = new AbortController();
    const first = await runImport(
      {
        ...deps,
        api: {
          ...deps.api,
          submit: (...a) => deps.api.submit(...a),
          errors: (id) => deps.api.errors(id),
          status: async (id) => (stop.abort(), deps.api.status(id)),
        },
      },
      { organization: bridge.organizationId, filePath: file, format: "jsonl", actor: operator, signal: stop.signal },
    );
    expect(first.state).toBe("stopped");
    const submittedJobs = emulatorJobs(sync.emulator).length;
    expect(submittedJobs).toBeGreaterThan(0);
    const second = await runImport(deps, {
      organization: bridge.organizationId,
      filePath: file,
      format: "jsonl",
      actor: operator,
    });
    expect(second).toMatchObject({ state: "done", resumed: true, inserted: 600, recovered: 0, linked: 600 });
    // One job per chunk in all: the jobs already submitted were not posted twice.
    expect(emulatorJobs(sync.emulator)).toHaveLength(second.chunks);
    expectExactlyOnce(600);
    // The same file once more: already done, nothing sent.
    sync.emulator.clearCalls();
    expect(
      await runImport(deps, { organization: bridge.organizationId, filePath: file, format: "jsonl", actor: operator }),
    ).toMatchObject({ state: "done", resumed: true, inserted: 600 });
    expect(sync.emulator.calls()).toEqual([]);
  }, 120_000);

  it("SIGKILL of the CLI mid-import, then the same command again: every record imported exactly once", async () => {
    const n = 2500;
    const file = writeTemp("users.jsonl", jsonl(hashedUsers(n)));
    const env = {
      ...process.env,
      DATABASE_URL: `sqlite:${bridge.sqlite.name}`,
      AUTH0_DOMAIN: "tenant.example.auth0.com",
      AUTH0_CLIENT_ID: "scim-bridge-cli-test",
      AUTH0_CLIENT_SECRET: "cli-test-secret",
      AUTH0_MANAGEMENT_URL: sync.emulator.url,
      AUTH0_PLAN: "enterprise",
      LOG_LEVEL: "silent",
    };
    // The compiled CLI as operators run it (npm test builds it first), in node itself, so that SIGKILL
    // hits the process doing the work, not a wrapper.
    const args = ["bin/scim-bridge.js", "users", "import", bridge.organizationId, file, "--json", "--no-sync"];
    const child = spawn(process.execPath, args, { cwd: root, env, stdio: "ignore" });
    const exited = new Promise((resolve) => child.once("exit", resolve));
    // Kill it once a chunk is done and another is in Auth0's hands.
    const chunkStates = () =>
      bridge.db
        .select({ state: userImportChunks.state })
        .from(userImportChunks)
        .all()
        .map((c) => c.state);
    for (let i = 0; i < 2400; i++) {
      const states = chunkStates();
      if (states.includes("linked") && states.some((s) => s === "submitted" || s === "submitting")) break;
      await new Promise((r) => setTimeout(r, 25));
    }
    child.kill("SIGKILL");
    await exited;
    const before = chunkStates();
    expect(before.filter((s) => s === "linked").length).toBeGreaterThan(0);
    expect(before.filter((s) => s === "linked").length).toBeLessThan(before.length);

    const { code, stdout } = await new Promise<{ code: number; stdout: string }>((resolve) =>
      execFile(process.execPath, args, { cwd: root, env, timeout: 120_000 }, (err, out) =>
        resolve({ code: err ? Number(err.code ?? -1) : 0, stdout: out }),
      ),
    );
    expect(code, stdout.slice(0, 2000)).toBe(0);
    const report = JSON.parse(stdout) as {
      state: string;
      resumed: boolean;
      inserted: number;
      recovered: number;
      failed: number;
      linked: number;
    };
    expect(report).toMatchObject({ state: "done", resumed: true, failed: 0, linked: n });
    expect(report.inserted + report.recovered).toBe(n);
    expectExactlyOnce(n);
    expect(
      bridge.db
        .select()
        .from(users)
        .where(and(eq(users.directoryId, bridge.directoryId)))
        .all(),
    ).toHaveLength(n);
  }, 180_000);
});
