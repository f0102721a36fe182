/**
 * A client grant without some of the scopes the bridge needs, as on a tenant set up from an older
 * guide: `scim-bridge doctor` names each missing scope and what breaks, and exits non-zero; `serve`
 * logs each one at error; /readyz answers 503 naming them. Granting them makes the doctor pass.
 * Everything runs through the compiled CLI against the Management API emulator.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ALL_SCOPES, startEmulator, type RunningEmulator } from "../../src/emulator/index.js";
import { runCli, startBridge, type Served } from "./helpers.js";

const withheld = ["update:organizations", "update:organization_connections", "delete:sessions"];
const hookSecret = "h".repeat(40);
const dir = mkdtempSync(join(tmpdir(), "scim-bridge-doctor-"));
let emulator: RunningEmulator;
let bridge: Served;
let env: Record<string, string>;

interface Report {
  ok: boolean;
  auth0: string;
  missingScopes: { scope: string; breaks: string; organizations: string[] }[];
  checks: { id: string; status: string; summary: string; fix?: string }[];
}

beforeAll(async () => {
  emulator = await startEmulator({
    domain: "acme-test.eu.auth0.com",
    clientId: "bridge-client",
    clientSecret: "right-secret",
    connections: [{ name: "acme-okta", strategy: "okta" }],
    scopes: ALL_SCOPES.filter((s) => !withheld.includes(s)),
  });
  env = {
    DATABASE_URL: `sqlite:${join(dir, "bridge.db")}`,
    AUTH0_DOMAIN: "acme-test.eu.auth0.com",
    AUTH0_CLIENT_ID: "bridge-client",
    AUTH0_CLIENT_SECRET: "right-secret",
    AUTH0_MANAGEMENT_URL: emulator.url,
    AUTH0_HOOK_SECRET: hookSecret,
  };
  expect((await runCli(["org", "create", "acme", "--connection", "acme-okta", "--json"], env)).code).toBe(0);
  bridge = await startBridge("serve", env);
  // The hook the doctor calls is this running bridge's.
  env.PUBLIC_URL = bridge.url;
}, 120_000);

afterAll(async () => {
  await bridge?.stop();
  await emulator?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe("a restricted client grant", { timeout: 120_000 }, () => {
  it("doctor names each missing scope with what it breaks and how to grant it, and exits 1", async () => {
    const run = await runCli(["doctor"], env);
    expect(run.code).toBe(1);
    for (const scope of withheld) {
      expect(run.stdout).toMatch(new RegExp(`✗ scope ${scope} missing`));
      expect(run.stdout).toContain(`tick ${scope}`);
    }
    expect(run.stdout).toMatch(
      /✗ scope update:organization_connections missing \(for acme\): enterprise users are not admitted/,
    );
    expect(run.stdout).toMatch(/✓ scope read:users granted/);
    expect(run.stdout).toMatch(/✓ connection "acme-okta" exists: strategy okta \(enterprise\)/);
    expect(run.stdout).toMatch(/✓ post-login hook answers a signed test event/);
    expect(run.stdout).toMatch(/3 problem\(s\) to fix/);
  });

  it("doctor --json lists exactly the missing scopes, and nothing else fails", async () => {
    const run = await runCli(["doctor", "--json"], env);
    expect(run.code).toBe(1);
    const report = JSON.parse(run.stdout) as Report;
    expect(report.auth0).toBe("ok");
    expect(report.missingScopes.map((m) => m.scope).sort()).toEqual([...withheld].sort());
    expect(
      report.checks
        .filter((c) => c.status === "fail")
        .map((c) => c.id)
        .sort(),
    ).toEqual(withheld.map((s) => `scope:${s}`).sort());
    // revoke-access needs delete:sessions too, so the revocation probe is left to the scope check.
    expect(report.checks.find((c) => c.id === "revocation")).toBeUndefined();
  });

  it("serve logged each missing scope at error, with its fix", () => {
    const errors = bridge.logs().filter((l) => l.level === "error" || l.level === (50 as unknown));
    for (const scope of withheld) {
      const line = errors.find((l) => l.check === `scope:${scope}`);
      expect(line?.msg).toMatch(new RegExp(`scope ${scope} missing`));
      expect(line?.fix).toContain(scope);
    }
  });

  it("/readyz answers 503 naming the missing scopes; /healthz stays 200", async () => {
    const ready = await fetch(`${bridge.url}/readyz`);
    expect(ready.status).toBe(503);
    const body = (await ready.json()) as {
      checks: Record<string, string>;
      problems: string[];
      auth0: { missingScopes: string[] };
    };
    expect(body.checks.auth0).toBe("missing scopes");
    expect(body.auth0.missingScopes.sort()).toEqual([...withheld].sort());
    expect(body.problems.join("\n")).toMatch(
      /missing scopes update:organizations, update:organization_connections, delete:sessions/,
    );
    expect((await fetch(`${bridge.url}/healthz`)).status).toBe(200);
  });

  it("once the scopes are granted the doctor passes (exit 0)", async () => {
    emulator.setGrantScopes(undefined);
    try {
      const run = await runCli(["doctor", "--json"], env);
      const report = JSON.parse(run.stdout) as Report;
      expect(report.checks.filter((c) => c.status === "fail")).toEqual([]);
      expect(report.missingScopes).toEqual([]);
      expect(report.checks.find((c) => c.id === "revocation")?.status).toBe("ok");
      expect(run.code).toBe(0);
    } finally {
      emulator.setGrantScopes(ALL_SCOPES.filter((s) => !withheld.includes(s)));
    }
  });
});
