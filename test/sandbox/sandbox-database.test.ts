/**
 * The sandbox (`npm start` without Auth0 settings) never touches a live database: it keeps its own
 * file, and refuses a database that `serve` linked to a real tenant, since it would replace that
 * tenant's organization and user ids with those of its throwaway emulated tenant.
 */
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { eq } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { organizations } from "../../db/schema.js";
import { openDatabase } from "../../src/directory/database.js";
import { startEmulator, type RunningEmulator } from "../../src/emulator/index.js";
import { runCli, startBridge, until } from "../doctor/helpers.js";

const dirs: string[] = [];
const tempDir = (): string => {
  const d = mkdtempSync(join(tmpdir(), "scim-bridge-sandbox-db-"));
  dirs.push(d);
  return d;
};
let emulator: RunningEmulator;

beforeAll(async () => {
  emulator = await startEmulator({ domain: "acme-test.eu.auth0.com" });
});
afterAll(async () => {
  await emulator?.close();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

const auth0OrgIds = (url: string): (string | null)[] => {
  const opened = openDatabase(url);
  try {
    return opened.db
      .select({ id: organizations.auth0OrgId })
      .from(organizations)
      .all()
      .map((r) => r.id);
  } finally {
    opened.close();
  }
};

describe("the sandbox's database", { timeout: 120_000 }, () => {
  it("without DATABASE_URL is ./data/sandbox.db, never serve's ./data/bridge.db; the sandbox is ready", async () => {
    const cwd = tempDir();
    const sandbox = await startBridge("start", {}, cwd);
    try {
      expect(existsSync(join(cwd, "data", "sandbox.db"))).toBe(true);
      expect(existsSync(join(cwd, "data", "bridge.db"))).toBe(false);
      const ready = await until(async () => {
        const res = await fetch(`${sandbox.url}/readyz`);
        return res.status === 200 ? ((await res.json()) as { checks: Record<string, string> }) : undefined;
      }, "sandbox ready");
      expect(ready.checks.auth0).toBe("ok");
    } finally {
      expect(await sandbox.stop()).toBe(0);
    }
  });

  it("refuses a database that serve linked to a real tenant, and leaves its Auth0 ids alone", async () => {
    const url = `sqlite:${join(tempDir(), "bridge.db")}`;
    const env = {
      DATABASE_URL: url,
      AUTH0_DOMAIN: "acme-test.eu.auth0.com",
      AUTH0_CLIENT_ID: "c",
      AUTH0_CLIENT_SECRET: "s",
      AUTH0_MANAGEMENT_URL: emulator.url,
    };
    expect((await runCli(["org", "create", "acme", "--json"], env)).code).toBe(0);
    const served = await startBridge("serve", env);
    try {
      await until(() => auth0OrgIds(url)[0] ?? undefined, "serve to create the Auth0 organization");
    } finally {
      await served.stop();
    }
    const before = auth0OrgIds(url);
    expect(before[0]).toMatch(/^org_/);

    const refused = await runCli(["start"], { DATABASE_URL: url, PORT: "0" });
    expect(refused.code).toBe(78);
    expect(refused.stderr).toMatch(
      /the sandbox refuses this database: this database is linked to the Auth0 tenant acme-test\.eu\.auth0\.com/,
    );
    expect(auth0OrgIds(url)).toEqual(before);
  });

  it("refuses a database whose organizations carry Auth0 ids without naming their tenant", async () => {
    const url = `sqlite:${join(tempDir(), "old.db")}`;
    expect((await runCli(["org", "create", "acme", "--json"], { DATABASE_URL: url })).code).toBe(0);
    const opened = openDatabase(url);
    opened.db.update(organizations).set({ auth0OrgId: "org_live123" }).where(eq(organizations.slug, "acme")).run();
    opened.close();
    const refused = await runCli(["start"], { DATABASE_URL: url, PORT: "0" });
    expect(refused.code).toBe(78);
    expect(refused.stderr).toMatch(
      /organization "acme" in this database is linked to an Auth0 tenant the database does not name/,
    );
    expect(auth0OrgIds(url)).toEqual(["org_live123"]);
  });

  it("serve refuses the sandbox's database: its ids belong to the throwaway tenant", async () => {
    const cwd = tempDir();
    const sandbox = await startBridge("start", {}, cwd);
    await sandbox.stop();
    const url = `sqlite:${join(cwd, "data", "sandbox.db")}`;
    const refused = await runCli(["serve"], {
      DATABASE_URL: url,
      PORT: "0",
      AUTH0_DOMAIN: "acme-test.eu.auth0.com",
      AUTH0_CLIENT_ID: "c",
      AUTH0_CLIENT_SECRET: "s",
      AUTH0_MANAGEMENT_URL: emulator.url,
    });
    expect(refused.code).toBe(78);
    expect(refused.stderr).toMatch(/this database belongs to the sandbox \(npm start\)/);
  });
});
