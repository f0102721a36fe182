/**
 * The newcomer's path (docs/design.md, "Contract"): `npm start` in sandbox mode, a user created and
 * deactivated through SCIM, the emulated Auth0 blocking it, then SIGTERM: exit 0, nothing lost.
 * It runs exactly what `npm start` runs (the package.json start script) as a child process.
 */
import { spawn, type ChildProcessWithoutNullStreams } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { packageRoot } from "../../src/paths.js";

const startScript = (
  JSON.parse(readFileSync(join(packageRoot, "package.json"), "utf8")) as { scripts: Record<string, string> }
).scripts.start!;
const workdir = mkdtempSync(join(tmpdir(), "scim-bridge-start-"));
afterAll(() => rmSync(workdir, { recursive: true, force: true }));

interface Started {
  child: ChildProcessWithoutNullStreams;
  output: () => string;
  scimBaseUrl: string;
  token: string;
  emulatorUrl: string;
}

async function npmStart(): Promise<Started> {
  // `node bin/scim-bridge.js start`, run from a temporary folder so ./data/sandbox.db lands there.
  const [cmd, ...args] = startScript.split(" ");
  const child = spawn(
    cmd!,
    args.map((a) => (a.startsWith("bin/") ? join(packageRoot, a) : a)),
    {
      cwd: workdir,
      env: {
        ...process.env,
        PORT: "0",
        LOG_LEVEL: "warn",
        AUTH0_DOMAIN: "",
        AUTH0_CLIENT_ID: "",
        AUTH0_CLIENT_SECRET: "",
        DATABASE_URL: "",
      },
    },
  );
  let out = "";
  child.stdout.on("data", (d: Buffer) => (out += d.toString()));
  child.stderr.on("data", (d: Buffer) => (out += d.toString()));
  const deadline = Date.now() + 30_000;
  while (!/SCIM token\s+\S+/.test(out) || !/Auth0 emulator\s+\S+/.test(out)) {
    if (child.exitCode !== null || Date.now() > deadline) throw new Error(`npm start did not print its token:\n${out}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    child,
    output: () => out,
    scimBaseUrl: /SCIM base URL\s+(\S+)/.exec(out)![1]!,
    token: /SCIM token\s+(\S+)/.exec(out)![1]!,
    emulatorUrl: /Auth0 emulator\s+(\S+)/.exec(out)![1]!,
  };
}

async function until<T>(probe: () => Promise<T | undefined>, what: string, ms = 15_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

type EmulatedUser = { user_id: string; email: string; blocked?: boolean };
const emulatedUser = async (s: Started, email: string): Promise<EmulatedUser | undefined> => {
  const state = (await (await fetch(`${s.emulatorUrl}/__emulator/state`)).json()) as { users: EmulatedUser[] };
  return state.users.find((u) => u.email === email);
};

const stop = (s: Started): Promise<number | null> =>
  new Promise((resolve) => {
    s.child.once("exit", (code) => resolve(code));
    s.child.kill("SIGTERM");
  });

describe("npm start (sandbox)", () => {
  it("prints a working SCIM URL and token; a deactivation blocks the emulated Auth0 user; SIGTERM exits 0 and loses nothing", async () => {
    expect(startScript).toBe("node bin/scim-bridge.js start");
    const first = await npmStart();
    const scim = (path: string, init: RequestInit = {}) =>
      fetch(first.scimBaseUrl + path, {
        ...init,
        headers: { Authorization: `Bearer ${first.token}`, "Content-Type": "application/scim+json", ...init.headers },
      });

    const created = await scim("/Users", {
      method: "POST",
      body: JSON.stringify({
        schemas: ["urn:ietf:params:scim:schemas:core:2.0:User"],
        userName: "ada@example.com",
        emails: [{ value: "ada@example.com", primary: true }],
        active: true,
      }),
    });
    expect(created.status).toBe(201);
    const id = ((await created.json()) as { id: string }).id;
    // Provisioned: the user exists in the emulated Auth0 and is a member of the demo organization.
    await until(async () => {
      const state = (await (await fetch(`${first.emulatorUrl}/__emulator/state`)).json()) as {
        users: EmulatedUser[];
        organizations: { id: string; name: string }[];
        members: Record<string, string[]>;
      };
      const user = state.users.find((u) => u.email === "ada@example.com");
      const org = state.organizations.find((o) => o.name === "demo");
      return user && org && state.members[org.id]?.includes(user.user_id) ? true : undefined;
    }, "the user to be provisioned into the demo organization");

    const login = await fetch(`${first.emulatorUrl}/__emulator/login`, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({
        connection: "Username-Password-Authentication",
        email: "ada@example.com",
        organization: "demo",
      }),
    });
    expect(((await login.json()) as { decision: string }).decision).toBe("allow");

    const patched = await scim(`/Users/${id}`, {
      method: "PATCH",
      body: JSON.stringify({
        schemas: ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        Operations: [{ op: "replace", path: "active", value: false }],
      }),
    });
    expect(patched.status).toBe(204);
    await until(
      async () => ((await emulatedUser(first, "ada@example.com"))?.blocked ? true : undefined),
      "the emulated user to be blocked",
    );
    const denied = await fetch(`${first.emulatorUrl}/__emulator/login`, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({
        connection: "Username-Password-Authentication",
        email: "ada@example.com",
        organization: "demo",
      }),
    });
    expect(((await denied.json()) as { decision: string }).decision).toBe("deny");

    expect(await stop(first)).toBe(0);

    // Restart on the same database: the directory still holds the user, deactivated.
    const second = await npmStart();
    try {
      const found = await fetch(
        `${second.scimBaseUrl}/Users?filter=${encodeURIComponent('userName eq "ada@example.com"')}`,
        { headers: { Authorization: `Bearer ${second.token}` } },
      );
      const body = (await found.json()) as { totalResults: number; Resources: { id: string; active: boolean }[] };
      expect(body.totalResults).toBe(1);
      expect(body.Resources[0]).toMatchObject({ id, active: false });
      // The new emulated tenant starts empty and a deactivated user is never created only to be
      // blocked; reactivating it provisions it into the new tenant, unblocked.
      expect(await emulatedUser(second, "ada@example.com")).toBeUndefined();
      const reactivated = await fetch(`${second.scimBaseUrl}/Users/${id}`, {
        method: "PATCH",
        headers: { Authorization: `Bearer ${second.token}`, "Content-Type": "application/scim+json" },
        body: JSON.stringify({
          schemas: ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
          Operations: [{ op: "replace", path: "active", value: true }],
        }),
      });
      expect(reactivated.status).toBe(204);
      const back = await until(
        () => emulatedUser(second, "ada@example.com"),
        "re-provisioning into the new emulated tenant",
      );
      expect(back.blocked ?? false).toBe(false);
    } finally {
      expect(await stop(second)).toBe(0);
    }
  }, 90_000);
});
