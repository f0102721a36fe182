/**
 * What an operator sees when the tenant is not what the configuration expects: a wrong client
 * secret, a mapped connection that does not exist, a mapping at odds with its connection, roles
 * the tenant lacks, a plan without revocation. Through the compiled CLI (doctor, serve) against
 * the Management API emulator.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { openDatabase } from "../../src/directory/database.js";
import { sqliteStore } from "../../src/directory/sql.js";
import { startEmulator, type RunningEmulator } from "../../src/emulator/index.js";
import { writeFootprint } from "../helpers/store.js";
import { runCli, startBridge, until, type Served } from "./helpers.js";

const domain = "acme-test.eu.auth0.com";
const dirs: string[] = [];
let emulator: RunningEmulator;
let essentials: RunningEmulator;
const running: Served[] = [];

interface Readyz {
  status: string;
  checks: Record<string, string>;
  problems: string[];
}
interface Report {
  ok: boolean;
  auth0: string;
  checks: { id: string; status: string; summary: string; fix?: string }[];
}

beforeAll(async () => {
  const common = { domain, clientId: "bridge-client", clientSecret: "right-secret" };
  emulator = await startEmulator({
    ...common,
    connections: [
      { name: "acme-okta", strategy: "okta" },
      { name: "acme-entra", strategy: "waad", options: { set_user_root_attributes: "on_first_login" } },
    ],
  });
  essentials = await startEmulator({ ...common, plan: "essentials" });
});
afterEach(async () => {
  await Promise.all(running.splice(0).map((s) => s.stop()));
});
afterAll(async () => {
  await emulator?.close();
  await essentials?.close();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

/** A fresh database with the given organizations (slug → connection), and the environment to reach `em`. */
async function setup(
  orgs: Record<string, string>,
  em: RunningEmulator = emulator,
  extra: Record<string, string> = {},
): Promise<Record<string, string>> {
  const dir = mkdtempSync(join(tmpdir(), "scim-bridge-doctor-"));
  dirs.push(dir);
  const env = {
    DATABASE_URL: `sqlite:${join(dir, "bridge.db")}`,
    AUTH0_DOMAIN: domain,
    AUTH0_CLIENT_ID: "bridge-client",
    AUTH0_CLIENT_SECRET: "right-secret",
    AUTH0_MANAGEMENT_URL: em.url,
    ...extra,
  };
  for (const [slug, connection] of Object.entries(orgs)) {
    const created = await runCli(["org", "create", slug, "--connection", connection, "--json"], env);
    expect(created.code, created.stderr).toBe(0);
  }
  return env;
}

async function readyz(s: Served): Promise<{ status: number; body: Readyz }> {
  const res = await fetch(`${s.url}/readyz`);
  return { status: res.status, body: (await res.json()) as Readyz };
}

function mappingFile(env: Record<string, string>, doc: object): string {
  const file = join(
    env.DATABASE_URL!.slice("sqlite:".length),
    "..",
    `mapping-${Math.random().toString(36).slice(2)}.json`,
  );
  writeFileSync(file, JSON.stringify(doc));
  return file;
}

describe("wrong client secret", { timeout: 120_000 }, () => {
  it("doctor says Auth0 refused the credentials and what to check, and exits 1", async () => {
    const env = await setup({ acme: "Username-Password-Authentication" });
    const run = await runCli(["doctor"], { ...env, AUTH0_CLIENT_SECRET: "wrong-secret" });
    expect(run.code).toBe(1);
    expect(run.stdout).toMatch(/✗ Auth0 unauthorised: the token endpoint answered 401/);
    expect(run.stdout).toMatch(/fix: check AUTH0_CLIENT_ID and AUTH0_CLIENT_SECRET/);
    expect(run.stdout).not.toContain("wrong-secret");
  });

  it("serve logs it at error, and /readyz answers 503 'unauthorised' with the reason; /healthz stays 200", async () => {
    const env = await setup({ acme: "Username-Password-Authentication" });
    const bridge = await startBridge("serve", { ...env, AUTH0_CLIENT_SECRET: "wrong-secret" });
    running.push(bridge);
    const { status, body } = await readyz(bridge);
    expect(status).toBe(503);
    expect(body.checks.auth0).toBe("unauthorised");
    expect(body.problems.join("\n")).toMatch(
      /auth0: Auth0 unauthorised: the token endpoint answered 401 .*fix: check AUTH0_CLIENT_ID and AUTH0_CLIENT_SECRET/,
    );
    const logged = bridge.logs().find((l) => l.check === "token");
    expect(logged).toMatchObject({ level: "error" });
    expect(logged?.msg).toMatch(/401/);
    expect(bridge.output()).not.toContain("wrong-secret");
    expect((await fetch(`${bridge.url}/healthz`)).status).toBe(200);
  });

  it("an unreachable Auth0 is reported as such", async () => {
    const env = await setup({ acme: "Username-Password-Authentication" });
    const bridge = await startBridge("serve", { ...env, AUTH0_MANAGEMENT_URL: "http://127.0.0.1:9" });
    running.push(bridge);
    const { status, body } = await readyz(bridge);
    expect(status).toBe(503);
    expect(body.checks.auth0).toBe("unreachable");
    expect(body.problems.join("\n")).toMatch(/Auth0 unreachable/);
  });
});

describe("a mapped connection the tenant lacks", { timeout: 120_000 }, () => {
  it("doctor names it and the organizations using it, and exits 1", async () => {
    const env = await setup({ acme: "acme-saml" });
    const run = await runCli(["doctor", "--json"], env);
    expect(run.code).toBe(1);
    const report = JSON.parse(run.stdout) as Report;
    expect(report.checks.find((c) => c.id === "connection:acme-saml")).toMatchObject({
      status: "fail",
      summary: expect.stringMatching(/connection "acme-saml" \(used by acme\) does not exist in the tenant/),
    });
  });

  it("serve logs it and /readyz answers 503 naming it", async () => {
    const env = await setup({ acme: "acme-saml" });
    const bridge = await startBridge("serve", env);
    running.push(bridge);
    const { status, body } = await readyz(bridge);
    expect(status).toBe(503);
    expect(body.checks.auth0).toBe("connection missing");
    expect(body.problems.join("\n")).toMatch(/connection "acme-saml" \(used by acme\) does not exist/);
    expect(bridge.logs().find((l) => l.check === "connection:acme-saml")).toMatchObject({ level: "error" });
  });
});

describe("connections, roles and the plan", { timeout: 120_000 }, () => {
  it("warns that an enterprise connection syncing at each login keeps the mapping's names from being written, and fails a mapping typed database on it", async () => {
    const env = await setup({ okta: "acme-okta", entra: "acme-entra" });
    const names = { email: "userName", given_name: "name.givenName", family_name: "name.familyName" };
    const okta = mappingFile(env, {
      connection: { name: "acme-okta", type: "enterprise" },
      userModel: "isolated",
      profile: names,
    });
    const entra = mappingFile(env, {
      connection: { name: "acme-entra", type: "database" },
      userModel: "isolated",
      profile: names,
    });
    expect((await runCli(["mapping", "apply", "okta", okta], env)).code).toBe(0);
    expect((await runCli(["mapping", "apply", "entra", entra], env)).code).toBe(0);
    const report = JSON.parse((await runCli(["doctor", "--json"], env)).stdout) as Report;
    expect(report.checks.find((c) => c.id === "connection:acme-okta")).toMatchObject({
      status: "warn",
      summary: expect.stringMatching(
        /profile sync on_each_login.*okta's mapping writes given_name, family_name, which Auth0 refuses to update/,
      ),
      fix: expect.stringMatching(/set_user_root_attributes: "on_first_login"/),
    });
    expect(report.checks.find((c) => c.id === "connection:acme-entra")).toMatchObject({
      status: "fail",
      summary: expect.stringMatching(/entra's mapping says connection type "database" but its strategy is "waad"/),
      fix: "set connection.type: enterprise in entra's mapping",
    });
  });

  it("warns about a role the tenant lacks (the bridge creates it), and about a plan without revocation", async () => {
    const env = await setup({ acme: "Username-Password-Authentication" }, essentials);
    const file = mappingFile(env, {
      connection: { name: "Username-Password-Authentication" },
      userModel: "isolated",
      profile: { email: "userName" },
      roles: { rules: [], default: ["viewer"] },
    });
    expect((await runCli(["mapping", "apply", "acme", file], env)).code).toBe(0);
    const report = JSON.parse((await runCli(["doctor", "--json"], env)).stdout) as Report;
    expect(report.checks.find((c) => c.id === "role:viewer")).toMatchObject({
      status: "warn",
      summary: expect.stringMatching(/role "viewer" does not exist: the bridge creates it/),
    });
    expect(report.checks.find((c) => c.id === "revocation")).toMatchObject({
      status: "warn",
      summary: expect.stringMatching(/not available on this plan/),
    });
  });

  it("fails the hook check when no bridge answers at PUBLIC_URL, or when it has another secret", async () => {
    const env = await setup({ acme: "Username-Password-Authentication" }, emulator, {
      AUTH0_HOOK_SECRET: "a".repeat(40),
    });
    const down = JSON.parse(
      (await runCli(["doctor", "--json"], { ...env, PUBLIC_URL: "http://127.0.0.1:9" })).stdout,
    ) as Report;
    expect(down.checks.find((c) => c.id === "hook")).toMatchObject({
      status: "fail",
      summary: expect.stringMatching(
        /post-login hook unreachable at http:\/\/127\.0\.0\.1:9\/hooks\/auth0\/post-login/,
      ),
    });
    const bridge = await startBridge("serve", env);
    running.push(bridge);
    const other = JSON.parse(
      (await runCli(["doctor", "--json"], { ...env, PUBLIC_URL: bridge.url, AUTH0_HOOK_SECRET: "b".repeat(40) }))
        .stdout,
    ) as Report;
    expect(other.checks.find((c) => c.id === "hook")).toMatchObject({
      status: "fail",
      summary: expect.stringMatching(/refused the signature/),
    });
    const footprint = async () => {
      const opened = openDatabase(env.DATABASE_URL!);
      try {
        return await writeFootprint(sqliteStore(opened.sqlite));
      } finally {
        opened.close();
      }
    };
    // Once serve's own start-up work is done, the doctor's test event must change nothing.
    await until(async () => ((await readyz(bridge)).status === 200 ? true : undefined), "serve ready");
    const before = await footprint();
    const same = JSON.parse((await runCli(["doctor", "--json"], { ...env, PUBLIC_URL: bridge.url })).stdout) as Report;
    expect(same.checks.find((c) => c.id === "hook")?.status).toBe("ok");
    expect(
      bridge.logs().filter((l) => l.route === "/hooks/auth0/post-login" && l.status === 200).length,
    ).toBeGreaterThan(0);
    expect(await footprint()).toEqual(before);
  });
});
