/**
 * The post-login Action (src/auth0/action/post-login.cjs), run in Node as Auth0 runs it: it sends
 * the login decision's request only over https (localhost aside), and a bridge that takes longer
 * than 3 s counts as down, so the login is denied (fail closed).
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { createRequire } from "node:module";
import { afterEach, describe, expect, it } from "vitest";

interface Outcome {
  denied?: string;
  claims: Record<string, unknown>;
}
interface ActionModule {
  onExecutePostLogin(event: Record<string, unknown>, api: unknown): Promise<void>;
}
const action = createRequire(import.meta.url)("../../src/auth0/action/post-login.cjs") as ActionModule;

const servers: Server[] = [];
afterEach(async () => {
  await Promise.all(
    servers.splice(0).map((s) => {
      s.closeAllConnections();
      return new Promise((r) => s.close(r));
    }),
  );
});

/** A stand-in bridge; counts the requests it got. */
async function bridge(
  host: string,
  handler: (req: IncomingMessage, res: ServerResponse) => void,
): Promise<{ url: string; hits: () => number }> {
  let hits = 0;
  const server = createServer((req, res) => {
    hits++;
    req.resume();
    req.on("end", () => handler(req, res));
  });
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, host, r));
  return { url: `http://${host}:${(server.address() as AddressInfo).port}`, hits: () => hits };
}

const allow = (res: ServerResponse): void => {
  res
    .writeHead(200, { "content-type": "application/json" })
    .end(JSON.stringify({ decision: "allow", roles: ["member"] }));
};

async function login(secrets: Record<string, string>): Promise<Outcome> {
  const out: Outcome = { claims: {} };
  const api = {
    access: { deny: (reason: string) => (out.denied = reason) },
    idToken: { setCustomClaim: (name: string, value: unknown) => (out.claims[name] = value) },
    accessToken: { setCustomClaim: () => undefined },
  };
  await action.onExecutePostLogin(
    {
      user: { user_id: "auth0|1", email: "ada@example.com", identities: [] },
      organization: { id: "org_1", name: "acme" },
      connection: { name: "Username-Password-Authentication", strategy: "auth0" },
      secrets: { BRIDGE_HOOK_SECRET: "s".repeat(32), ...secrets },
    },
    api,
  );
  return out;
}

describe("post-login Action: BRIDGE_URL must be https", () => {
  it("denies without calling a plain-http bridge that is not localhost, even with BRIDGE_FAIL_OPEN", async () => {
    // 127.0.0.2 is loopback, so the bridge would answer: only the Action's rule keeps it from being asked.
    const b = await bridge("127.0.0.2", (_req, res) => allow(res));
    expect((await login({ BRIDGE_URL: b.url })).denied).toMatch(/could not be verified/);
    expect((await login({ BRIDGE_URL: b.url, BRIDGE_FAIL_OPEN: "true" })).denied).toMatch(/could not be verified/);
    expect(b.hits()).toBe(0);
  });

  it("denies a BRIDGE_URL that is not a URL, or of another scheme", async () => {
    expect((await login({ BRIDGE_URL: "scim-bridge.example.com" })).denied).toMatch(/could not be verified/);
    expect((await login({ BRIDGE_URL: "ftp://scim-bridge.example.com" })).denied).toMatch(/could not be verified/);
  });

  it("accepts http on 127.0.0.1 (local testing) and lets an allowed user in", async () => {
    const b = await bridge("127.0.0.1", (_req, res) => allow(res));
    const out = await login({ BRIDGE_URL: b.url });
    expect(out.denied).toBeUndefined();
    expect(out.claims["https://scim-bridge/roles"]).toEqual(["member"]);
    expect(b.hits()).toBe(1);
  });
});

describe("post-login Action: a slow bridge counts as down", () => {
  it("waits for a bridge that answers within 3 s", async () => {
    const b = await bridge("127.0.0.1", (_req, res) => setTimeout(() => allow(res), 1500));
    expect((await login({ BRIDGE_URL: b.url })).denied).toBeUndefined();
  });

  it("denies when the bridge answers after more than 3 s", async () => {
    const b = await bridge("127.0.0.1", (_req, res) => setTimeout(() => allow(res), 4500));
    const out = await login({ BRIDGE_URL: b.url });
    expect(out.denied).toMatch(/could not be verified/);
    expect(out.claims).toEqual({});
  });

  it("denies when the bridge sends its headers and then stalls the body", async () => {
    const b = await bridge("127.0.0.1", (_req, res) => {
      res.writeHead(200, { "content-type": "application/json" });
      res.write('{"decision":');
    });
    expect((await login({ BRIDGE_URL: b.url })).denied).toMatch(/could not be verified/);
  });

  it("with BRIDGE_FAIL_OPEN, lets the login through a bridge that timed out", async () => {
    const b = await bridge("127.0.0.1", () => undefined);
    expect((await login({ BRIDGE_URL: b.url, BRIDGE_FAIL_OPEN: "true" })).denied).toBeUndefined();
  });
});
