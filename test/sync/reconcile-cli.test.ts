/**
 * `scim-bridge reconcile <org> [--dry-run] [--json]` as an operator runs it: a separate process on
 * the same SQLite file, talking to an Auth0 emulator through AUTH0_MANAGEMENT_URL.
 */
import { execFile } from "node:child_process";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { RECENT_WRITE_MS, type DriftReport } from "../../src/sync/drift.js";
import { createTestBridge, type TestBridge } from "../helpers/scim.js";
import { applyDatabaseMapping, startSyncHarness, type SyncHarness } from "../helpers/sync-harness.js";

const ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
const root = join(import.meta.dirname, "../..");

let bridge: TestBridge;
let sync: SyncHarness;
let slug: string;

beforeAll(async () => {
  bridge = await createTestBridge();
  await applyDatabaseMapping(bridge.store, bridge.organizationId, {
    app_metadata: { keys: { department: `${ENTERPRISE}:department` } },
    roles: { rules: [], default: ["member"] },
  });
  sync = await startSyncHarness(bridge.store);
  slug = bridge.sqlite
    .prepare("select slug from organizations where id = ?")
    .pluck()
    .get(bridge.organizationId) as string;
  for (const name of ["ada", "bob"]) {
    await bridge.scim
      .post("/Users", {
        schemas: ["urn:ietf:params:scim:schemas:core:2.0:User", ENTERPRISE],
        userName: `${name}@example.com`,
        active: true,
        [ENTERPRISE]: { department: "Research" },
      })
      .expect(201);
  }
  await sync.drain();
  // From here on only the CLI process works the queue.
  await sync.engine.worker.stop();
});
afterAll(async () => {
  await sync?.close();
  await bridge?.close();
});

function cli(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  // The operator runs it a while after the bridge's last writes: a scan does not judge users written
  // within Auth0's propagation delay, and these tests are about users it does judge.
  bridge.sqlite.prepare("update user_sync set applied_at = applied_at - ?").run(RECENT_WRITE_MS + 1_000);
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
  // Asynchronous on purpose: the emulator answering the child runs in this process.
  return new Promise((resolve) => {
    // The compiled CLI as operators run it (npm test builds it first).
    execFile(
      process.execPath,
      [join(root, "bin/scim-bridge.js"), ...args],
      { cwd: root, env, timeout: 60_000 },
      (err, stdout, stderr) => {
        const code = err ? (typeof err.code === "number" ? err.code : -1) : 0;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

const ada = () => sync.emulator.state.usersByEmail("ada@example.com")[0]!;

// Each test runs the CLI several times: a second or more each, more when other test files share the cores.
describe("scim-bridge reconcile", { timeout: 120_000 }, () => {
  it("--dry-run --json exits 2 with the drift report and changes nothing; then repairs; then exits 0", async () => {
    const gateway = sync.engine.gateway;
    await gateway.updateUser(ada().user_id, { blocked: true, app_metadata: { department: "Sales" } }, 2);
    sync.emulator.clearCalls();

    const dry = await cli("reconcile", slug, "--dry-run", "--json");
    expect(dry.code, dry.stderr).toBe(2);
    const report = JSON.parse(dry.stdout) as DriftReport;
    expect(report).toMatchObject({
      organizationId: bridge.organizationId,
      checked: 2,
      unsynced: 0,
      repaired: false,
      unmanagedMembers: [],
    });
    expect(report.drifted).toEqual([
      {
        userId: expect.any(String),
        userName: "ada@example.com",
        differences: [
          "blocked: applied false, Auth0 true",
          'app_metadata.department: applied "Research", Auth0 "Sales"',
        ],
      },
    ]);
    expect(sync.emulator.calls().filter((c) => c.path.startsWith("/api/v2") && c.method !== "GET")).toEqual([]);
    expect(ada().blocked).toBe(true);

    const repair = await cli("reconcile", slug, "--json");
    expect(repair.code, repair.stderr).toBe(0);
    expect((JSON.parse(repair.stdout) as DriftReport).repaired).toBe(true);
    // The bridge's own key is put back; the block a tenant administrator placed is theirs to lift.
    expect(ada().app_metadata).toEqual({ department: "Research" });
    expect(ada().blocked).toBe(true);

    const clean = await cli("reconcile", slug, "--dry-run", "--json");
    expect(clean.code, clean.stderr).toBe(0);
    expect((JSON.parse(clean.stdout) as DriftReport).drifted).toEqual([]);
  });

  it("prints a readable summary without --json, and exits 1 for an unknown organization", async () => {
    const text = await cli("reconcile", slug, "--dry-run");
    expect(text.code, text.stderr).toBe(0);
    expect(text.stdout).toMatch(
      /0 drifted, 0 not yet synced, 0 Auth0 members not managed by the bridge \(dry run: nothing changed\)/,
    );

    const missing = await cli("reconcile", "no-such-org", "--dry-run", "--json");
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/not found/);
  });

  it("does not claim success when a repair fails: exits 1 and says which user", async () => {
    await sync.engine.gateway.updateUser(ada().user_id, { app_metadata: { department: "Sales" } }, 2);
    // Auth0 refuses the repair with a 400: retrying cannot help, so the job goes to dead.
    sync.emulator.setFaults({ errors: [{ path: "/api/v2/users/*", method: "PATCH", status: 400 }] });
    try {
      const run = await cli("reconcile", slug, "--json");
      expect(run.code, run.stderr).toBe(1);
      expect((JSON.parse(run.stdout) as DriftReport).drifted.map((d) => d.userName)).toEqual(["ada@example.com"]);
      expect(run.stderr).toMatch(/1 repair failed:\n {2}ada@example.com: /);
      expect(ada().app_metadata).toEqual({ department: "Sales" });
    } finally {
      sync.emulator.setFaults({});
    }
  });
});
