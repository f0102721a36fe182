/**
 * The post-login Action customers install in Auth0 (src/auth0/action/post-login.cjs), run in Node
 * as Auth0 would run it, against a real bridge hook on 127.0.0.1, with a fake `event` and `api`.
 */
import { randomBytes } from "node:crypto";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { createRequire } from "node:module";
import type { RequestHandler } from "express";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { saveMappingVersion } from "../../src/directory/mappings.js";
import { postLoginHookRouter, verifyPostLoginSignature } from "../../src/http/post-login-hook.js";
import { parseMapping } from "../../src/mapping/index.js";
import { createTestBridge, type TestBridge } from "../helpers/scim.js";
import { value } from "../../src/directory/store-op.js";

interface FakeApi {
  access: { deny(reason: string): void };
  idToken: { setCustomClaim(name: string, value: unknown): void };
  accessToken: { setCustomClaim(name: string, value: unknown): void };
}
interface ActionModule {
  onExecutePostLogin(event: Record<string, unknown>, api: FakeApi): Promise<void>;
}
const action = createRequire(import.meta.url)("../../src/auth0/action/post-login.cjs") as ActionModule;

const CONNECTION = "Username-Password-Authentication";
const operator = { type: "operator" as const, id: "test" };

let bridge: TestBridge;
/** The organization's slug, which the events name their organization by. */
let orgSlug: string;
let secret: string;
const servers: Server[] = [];

beforeEach(async () => {
  secret = randomBytes(32).toString("hex");
  let hook: RequestHandler | undefined;
  bridge = await createTestBridge({
    extraRouters: [{ path: "/hooks/auth0/post-login", router: (req, res, next) => hook!(req, res, next) }],
  });
  hook = postLoginHookRouter(bridge.store, secret);
  orgSlug = (await bridge.store.read(
    value<string>("SELECT slug FROM organizations WHERE id = ?", [bridge.organizationId]),
  ))!;
  await bridge.store.write(
    saveMappingVersion(
      bridge.organizationId,
      parseMapping({
        connection: { name: CONNECTION, type: "database" },
        userModel: "isolated",
        profile: { email: "userName" },
        roles: { rules: [], default: ["member", "viewer"] },
      }),
      { actor: operator },
    ),
  );
});
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => new Promise((r) => s.close(r))));
  await bridge.close();
});

/** A stand-in server on 127.0.0.1 (a broken bridge, or a spy). */
async function serve(handler: (req: IncomingMessage, body: string, res: ServerResponse) => void): Promise<string> {
  const server = createServer((req, res) => {
    let body = "";
    req.on("data", (c: Buffer) => (body += c.toString("utf8")));
    req.on("end", () => handler(req, body, res));
  });
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

/** A port nothing listens on: a bridge that is down. */
async function deadUrl(): Promise<string> {
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const port = (server.address() as AddressInfo).port;
  await new Promise((r) => server.close(r));
  return `http://127.0.0.1:${port}`;
}

async function provision(userName: string, active = true): Promise<string> {
  const res = await bridge.scim
    .post("/Users", { schemas: ["urn:ietf:params:scim:schemas:core:2.0:User"], userName, active })
    .expect(201);
  return res.body.id as string;
}

function event(
  email: string,
  secrets: Record<string, string> = {},
  organization: Record<string, string> | null = { id: "org_abc123", name: orgSlug },
) {
  return {
    user: {
      user_id: `auth0|${email}`,
      email,
      email_verified: true,
      app_metadata: { plan: "gold" },
      identities: [{ connection: CONNECTION, provider: "auth0", user_id: email, isSocial: false }],
    },
    ...(organization ? { organization } : {}),
    connection: { name: CONNECTION, strategy: "auth0" },
    transaction: { id: "tx_1" },
    secrets: { BRIDGE_URL: bridge.origin, BRIDGE_HOOK_SECRET: secret, ...secrets },
  };
}

/** Runs the Action; records what it asked Auth0 to do. */
async function run(e: Record<string, unknown>) {
  const denied: string[] = [];
  const claims: { token: string; name: string; value: unknown }[] = [];
  const api: FakeApi = {
    access: { deny: (reason) => denied.push(reason) },
    idToken: { setCustomClaim: (name, value) => claims.push({ token: "id", name, value }) },
    accessToken: { setCustomClaim: (name, value) => claims.push({ token: "access", name, value }) },
  };
  await action.onExecutePostLogin(e, api);
  return { denied, claims };
}

describe("the shipped post-login Action", () => {
  it("lets a provisioned user in and puts the bridge's roles in both tokens", async () => {
    await provision("ada@example.com");
    const { denied, claims } = await run(event("ada@example.com"));
    expect(denied).toEqual([]);
    expect(claims).toEqual([
      { token: "id", name: "https://scim-bridge/roles", value: ["member", "viewer"] },
      { token: "access", name: "https://scim-bridge/roles", value: ["member", "viewer"] },
    ]);
    const custom = await run(event("ada@example.com", { BRIDGE_ROLES_CLAIM: "https://example.com/roles" }));
    expect(custom.claims.map((c) => c.name)).toEqual(["https://example.com/roles", "https://example.com/roles"]);
  });

  it("denies with the bridge's reason", async () => {
    await provision("grace@example.com", false);
    const { denied, claims } = await run(event("grace@example.com"));
    expect(denied).toHaveLength(1);
    expect(denied[0]).toMatch(/deactivated/i);
    expect(claims).toEqual([]);
    const unknown = await run(event("stranger@example.com"));
    expect(unknown.denied[0]).toMatch(/not provisioned/i);
  });

  it("fails closed when the bridge is down, answers 500, or answers something that is not a decision", async () => {
    await provision("ada@example.com");
    const broken = await serve((_req, _body, res) => res.writeHead(500).end("boom"));
    const garbage = await serve((_req, _body, res) =>
      res.writeHead(200, { "content-type": "application/json" }).end("<html>"),
    );
    for (const url of [await deadUrl(), broken, garbage]) {
      const { denied, claims } = await run(event("ada@example.com", { BRIDGE_URL: url }));
      expect(denied, url).toHaveLength(1);
      expect(denied[0]).toMatch(/could not be verified/i);
      expect(claims).toEqual([]);
    }
  });

  it("fails closed when the Action's own secret is wrong (the bridge answers 401)", async () => {
    await provision("ada@example.com");
    const { denied } = await run(event("ada@example.com", { BRIDGE_HOOK_SECRET: "not-the-secret" }));
    expect(denied).toHaveLength(1);
  });

  it("lets logins through an unreachable bridge only when BRIDGE_FAIL_OPEN is true", async () => {
    const url = await deadUrl();
    const open = await run(event("ada@example.com", { BRIDGE_URL: url, BRIDGE_FAIL_OPEN: "true" }));
    expect(open).toEqual({ denied: [], claims: [] });
    const notQuite = await run(event("ada@example.com", { BRIDGE_URL: url, BRIDGE_FAIL_OPEN: "yes" }));
    expect(notQuite.denied).toHaveLength(1);
    // Fail-open is about reachability: a bridge that answers "deny" is still obeyed.
    await provision("grace@example.com", false);
    const deny = await run(event("grace@example.com", { BRIDGE_FAIL_OPEN: "true" }));
    expect(deny.denied[0]).toMatch(/deactivated/i);
  });

  it("leaves logins without an organization alone, without calling the bridge", async () => {
    let called = 0;
    const spy = await serve((_req, _body, res) => {
      called++;
      res.writeHead(500).end();
    });
    const { denied, claims } = await run(event("anyone@example.com", { BRIDGE_URL: spy }, null));
    expect({ denied, claims, called }).toEqual({ denied: [], claims: [], called: 0 });
  });

  it("signs its request in a way the bridge's verifier accepts, over the exact bytes it sends", async () => {
    let seen: { header: string | undefined; body: string; path: string | undefined } | undefined;
    const spy = await serve((req, body, res) => {
      seen = { header: req.headers["x-scim-bridge-signature"] as string | undefined, body, path: req.url };
      res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ decision: "allow", roles: [] }));
    });
    const { denied } = await run(event("ada@example.com", { BRIDGE_URL: spy }));
    expect(denied).toEqual([]);
    expect(seen?.path).toBe("/hooks/auth0/post-login");
    expect(verifyPostLoginSignature(secret, seen?.header, seen!.body)).toBe(true);
    expect(verifyPostLoginSignature("another-secret", seen?.header, seen!.body)).toBe(false);
    expect(JSON.parse(seen!.body)).toMatchObject({
      user: { user_id: "auth0|ada@example.com", email: "ada@example.com" },
      organization: { id: "org_abc123" },
      connection: { name: CONNECTION },
    });
  });

  it("tolerates a BRIDGE_URL with a trailing slash", async () => {
    await provision("ada@example.com");
    const { denied, claims } = await run(event("ada@example.com", { BRIDGE_URL: `${bridge.origin}/` }));
    expect(denied).toEqual([]);
    expect(claims).toHaveLength(2);
  });

  it("denies with a clear reason instead of crashing when its secrets are missing", async () => {
    const e = event("ada@example.com");
    e.secrets = { BRIDGE_URL: bridge.origin } as typeof e.secrets;
    const { denied } = await run(e);
    expect(denied).toHaveLength(1);
    expect(denied[0]).toMatch(/could not be verified/i);
  });
});
