/**
 * The sync engine in its worker thread, as `serve` runs it with SYNC_WORKER_THREAD=1:
 * SCIM writes on the main thread reach the Auth0 emulator through the thread, its job outcomes and
 * Auth0 calls show on the main thread's /metrics, its log lines reach the process log with their
 * fields, and a crashed thread shows in /readyz, is logged and counted, and is replaced.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { inArray } from "drizzle-orm";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { jobs } from "../../db/schema.js";
import { ConfigError, loadConfig } from "../../src/config.js";
import { startEmulator, type RunningEmulator } from "../../src/emulator/index.js";
import { createTestBridge, type TestBridge } from "../helpers/scim.js";
import { applyDatabaseMapping } from "../helpers/sync-harness.js";

const workdir = mkdtempSync(join(tmpdir(), "scim-bridge-sync-thread-"));
const crashFile = join(workdir, "crash");
const seam = `${pathToFileURL(join(import.meta.dirname, "../helpers/sync-thread-seam.ts")).href}?crash=${encodeURIComponent(crashFile)}`;

let emulator: RunningEmulator;
let t: TestBridge;
const lines: Record<string, unknown>[] = [];

const until = async <T>(what: string, probe: () => Promise<T | undefined> | T | undefined, ms = 20_000) => {
  const end = Date.now() + ms;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
};

beforeAll(async () => {
  emulator = await startEmulator({ plan: "enterprise", rateLimits: false });
  t = await createTestBridge({
    log: pino({ level: "info" }, { write: (line: string) => void lines.push(JSON.parse(line)) }),
    overrides: {
      auth0: {
        domain: "tenant.example.auth0.com",
        clientId: "scim-bridge-test",
        clientSecret: "test-secret",
        managementUrl: emulator.url,
      },
      tenantLink: false,
      managementClient: { maxRetries: 0 },
      plan: "enterprise",
      engine: { pollMs: 50 },
      syncThread: { workerSetup: seam },
    },
  });
  await applyDatabaseMapping(t.store, t.organizationId);
  await t.bridge.start();
  // From the sources each thread compiles the engine's TypeScript first: seconds on a busy machine.
  await until(
    "the sync thread to run",
    async () => ((await t.http.get("/readyz")).body.checks?.syncThread === "ok" ? true : undefined),
    45_000,
  );
});
afterAll(async () => {
  await t?.close();
  await emulator?.close();
  rmSync(workdir, { recursive: true, force: true });
});

const drained = () =>
  until("the outbox to drain", () =>
    t.db
      .select({ id: jobs.id })
      .from(jobs)
      .where(inArray(jobs.state, ["pending", "running"]))
      .all().length === 0
      ? true
      : undefined,
  );

const auth0User = (email: string) => emulator.state.usersByEmail(email)[0];

const scimUser = (userName: string) => ({
  schemas: ["urn:ietf:params:scim:schemas:core:2.0:User"],
  userName,
  emails: [{ value: userName, type: "work", primary: true }],
  active: true,
});

const metricValue = (text: string, line: RegExp): number => {
  const found = text.split("\n").find((l) => line.test(l));
  return found ? Number(found.split(" ").pop()) : 0;
};

describe("the sync worker thread", () => {
  it("runs the worker in a thread, not on the main thread", () => {
    expect(t.bridge.syncThread).toBeDefined();
    // The main thread's engine is there for sign-out and imports; its own worker never polls.
    expect(t.bridge.engine.worker.lastTickAt).toBe(0);
  });

  it("pushes a SCIM-created user to Auth0 and applies its deactivation", async () => {
    const created = await t.scim.post("/Users", scimUser("ada@example.com")).expect(201);
    const user = await until("the user in Auth0", () => auth0User("ada@example.com"));
    expect(user.blocked ?? false).toBe(false);
    await drained();

    await t.scim
      .patch(`/Users/${created.body.id as string}`, {
        schemas: ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        Operations: [{ op: "replace", path: "active", value: false }],
      })
      .expect(204);
    await until("the deactivation in Auth0", () => (auth0User("ada@example.com")?.blocked ? true : undefined));
    expect(emulator.state.hasActiveAccess(user.user_id)).toBe(false);
    await drained();
  });

  it("shows the thread's job outcomes, Auth0 calls and deprovision latency on /metrics", async () => {
    // The thread sends its outcomes once per turn of its event loop, so they may reach the main
    // thread's registry a moment after the jobs' rows say done: wait for them, then check them all.
    const text = await until("the thread's job outcomes on /metrics", async () => {
      const body = (await t.http.get("/metrics").expect(200)).text;
      return metricValue(body, /^scim_bridge_deprovision_latency_seconds_count\{/) >= 1 ? body : undefined;
    });
    expect(
      metricValue(text, /^scim_bridge_job_outcomes_total\{kind="user",lane="provision",outcome="done"\}/),
    ).toBeGreaterThanOrEqual(1);
    expect(
      metricValue(text, /^scim_bridge_job_outcomes_total\{kind="user",lane="deprovision",outcome="done"\}/),
    ).toBeGreaterThanOrEqual(1);
    expect(metricValue(text, /^scim_bridge_auth0_calls_total\{endpoint="[^"]+",status="20[01]"\}/)).toBeGreaterThan(0);
    expect(metricValue(text, /^scim_bridge_deprovision_latency_seconds_count\{/)).toBeGreaterThanOrEqual(1);
    // The rate budget comes from the thread's limiter, the one that spends it.
    expect(text).toMatch(/^scim_bridge_auth0_rate_budget_capacity\{bucket="[^"]+"\} \d+/m);
  });

  it("forwards the thread's log lines with their fields", () => {
    const line = lines.find((l) => l.seam === "sync-thread");
    expect(line).toMatchObject({ level: "info", service: "scim-bridge", threadLine: true });
    expect(line?.msg).toBe("sync thread seam installed");
  });

  it("reports a crashed thread in /readyz, logs and counts it, and replaces it", async () => {
    const ready = await t.http.get("/readyz");
    expect(ready.body.checks.syncThread).toBe("ok");
    expect(ready.body.syncThread).toBeUndefined();

    // The thread crashes, and its replacements fail to start while the file exists.
    writeFileSync(crashFile, "");
    const down = await until("/readyz to report the crash", async () => {
      const res = await t.http.get("/readyz");
      return res.status === 503 && res.body.checks.syncThread === "restarting" ? res : undefined;
    });
    expect(down.body.problems.join("\n")).toMatch(/sync thread: the sync worker thread crashed: .*on purpose/);
    expect(down.body.syncThread.crashes).toBeGreaterThanOrEqual(1);
    // The test logger is plain pino (numeric levels); 50 is error.
    const crashLine = lines.find((l) => l.level === 50 && String(l.msg).includes("sync worker thread crashed"));
    expect(crashLine).toMatchObject({ crashes: 1 });
    expect(crashLine?.restartInMs).toBeGreaterThan(0);

    rmSync(crashFile);
    // The replacement compiles the engine again (from the sources): allow for a busy machine.
    const up = await until(
      "the thread to run again",
      async () => {
        const res = await t.http.get("/readyz");
        return res.status === 200 ? res : undefined;
      },
      45_000,
    );
    expect(up.body.checks.syncThread).toBe("ok");
    expect(up.body.syncThread.crashes).toBeGreaterThanOrEqual(1);
    const text = (await t.http.get("/metrics").expect(200)).text;
    expect(metricValue(text, /^scim_bridge_sync_thread_crashes_total /)).toBeGreaterThanOrEqual(1);

    // The replacement does the work: a user created now reaches Auth0.
    await t.scim.post("/Users", scimUser("grace@example.com")).expect(201);
    await until("the user in Auth0 after the restart", () => auth0User("grace@example.com"));
    await drained();
  }, 90_000);
});

describe("SYNC_WORKER_THREAD", () => {
  it("is off unless set to 1, and refuses anything but 0 or 1", () => {
    expect(loadConfig({}).syncWorkerThread).toBe(false);
    expect(loadConfig({ SYNC_WORKER_THREAD: "1" }).syncWorkerThread).toBe(true);
    expect(loadConfig({ SYNC_WORKER_THREAD: "0" }).syncWorkerThread).toBe(false);
    expect(() => loadConfig({ SYNC_WORKER_THREAD: "yes" })).toThrow(ConfigError);
    expect(() => loadConfig({ SYNC_WORKER_THREAD: "yes" })).toThrow(/SYNC_WORKER_THREAD must be 1/);
  });
});
