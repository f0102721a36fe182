import { createHmac } from "node:crypto";
import { createServer, type IncomingMessage, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { Management, ManagementError } from "auth0";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { clientFor, createDbUser, expectApiError, http, startHarness, uniqueEmail, type Harness } from "./helpers.js";
import type { Plan } from "../../src/emulator/index.js";

/** A stand-in for the bridge's post-login endpoint: records calls, answers what the test says. */
interface HookCall {
  headers: IncomingMessage["headers"];
  raw: string;
  body: Record<string, unknown>;
}
let hookServer: Server;
let hookUrl: string;
let hookCalls: HookCall[] = [];
let hookAnswer: { status: number; body: unknown } = { status: 200, body: { decision: "allow" } };
const SECRET = "hook-secret";

beforeAll(async () => {
  hookServer = createServer((req, res) => {
    let raw = "";
    req.on("data", (c: Buffer) => (raw += c.toString("utf8")));
    req.on("end", () => {
      hookCalls.push({ headers: req.headers, raw, body: JSON.parse(raw) as Record<string, unknown> });
      res.writeHead(hookAnswer.status, { "content-type": "application/json" }).end(JSON.stringify(hookAnswer.body));
    });
  });
  await new Promise<void>((r) => hookServer.listen(0, "127.0.0.1", r));
  hookUrl = `http://127.0.0.1:${(hookServer.address() as AddressInfo).port}/hooks/auth0/post-login`;
});
afterAll(() => new Promise<void>((r) => hookServer.close(() => r())));

let h: Harness;
let orgId: string;
beforeEach(async () => {
  hookCalls = [];
  hookAnswer = { status: 200, body: { decision: "allow" } };
  h = await startHarness({
    connections: [
      { name: "acme-okta", strategy: "okta", id: "con_okta" },
      { name: "other-saml", strategy: "samlp", id: "con_saml" },
    ],
    postLoginHook: { url: hookUrl, secret: SECRET },
  });
  orgId = (
    await h.client.organizations.create({
      name: "acme",
      enabled_connections: [{ connection_id: "con_okta", assign_membership_on_login: true }],
    })
  ).id!;
});
afterEach(() => h.emulator.close());

describe("simulated login (POST /__emulator/login)", () => {
  it("creates the enterprise user at first login, joins it by auto-membership and calls the signed hook", async () => {
    const res = await http(h.emulator, "POST", "/__emulator/login", {
      connection: "acme-okta",
      email: "Ann@Acme.test",
      organization: "acme",
    });
    expect(res.status).toBe(200);
    const result = res.body as {
      decision: string;
      created: boolean;
      user: { user_id: string };
      session_id: string;
      refresh_token_id: string;
    };
    expect(result).toMatchObject({ decision: "allow", created: true });
    expect(result.user.user_id).toBe("okta|acme-okta|Ann@Acme.test");
    expect(h.emulator.state.membersOf(orgId)).toEqual([result.user.user_id]);
    expect(h.emulator.state.sessionsOf(result.user.user_id).map((s) => s.id)).toEqual([result.session_id]);
    expect(h.emulator.state.refreshTokensOf(result.user.user_id).map((t) => t.id)).toEqual([result.refresh_token_id]);

    expect(hookCalls).toHaveLength(1);
    const call = hookCalls[0]!;
    expect(call.headers["content-type"]).toBe("application/json");
    const [t, v1] = String(call.headers["x-scim-bridge-signature"]).split(",");
    const ts = t!.replace("t=", "");
    expect(Math.abs(Number(ts) - Date.now() / 1000)).toBeLessThan(5);
    expect(v1).toBe(`v1=${createHmac("sha256", SECRET).update(`${ts}.${call.raw}`).digest("hex")}`);
    expect(call.body).toMatchObject({
      user: {
        user_id: result.user.user_id,
        email: "Ann@Acme.test",
        email_verified: true,
        blocked: false,
        app_metadata: {},
        identities: [
          { connection: "acme-okta", provider: "okta", user_id: "acme-okta|Ann@Acme.test", isSocial: false },
        ],
      },
      organization: { id: orgId, name: "acme" },
      connection: { name: "acme-okta", strategy: "okta" },
      transaction: { id: expect.any(String) },
    });

    const again = await h.emulator.login({ connection: "acme-okta", email: "Ann@Acme.test", organization: orgId });
    expect(again).toMatchObject({ decision: "allow", created: false });
    expect(h.emulator.state.users.get(result.user.user_id)?.logins_count).toBe(2);
  });

  it("applies the roles and app_metadata the hook returns to the login result", async () => {
    hookAnswer = {
      status: 200,
      body: { decision: "allow", roles: ["admin"], app_metadata: { scim: { active: true } } },
    };
    const result = await h.emulator.login({ connection: "acme-okta", email: "bob@acme.test", organization: "acme" });
    expect(result).toMatchObject({ decision: "allow", roles: ["admin"], app_metadata: { scim: { active: true } } });
    if (result.decision !== "allow") throw new Error("unreachable");
    expect(h.emulator.state.sessions.get(result.session_id)?.claims.roles).toEqual(["admin"]);
  });

  it("honours a deny from the hook: no session is created", async () => {
    hookAnswer = { status: 200, body: { decision: "deny", reason: "user_deprovisioned" } };
    const res = await http(h.emulator, "POST", "/__emulator/login", {
      connection: "acme-okta",
      email: "c@acme.test",
      organization: "acme",
    });
    expect(res.status).toBe(403);
    expect(res.body).toMatchObject({ decision: "deny", error: "access_denied", reason: "user_deprovisioned" });
    expect(h.emulator.state.sessions.size).toBe(0);
  });

  it("fails closed when the hook errors, answers garbage or cannot be reached", async () => {
    hookAnswer = { status: 500, body: { oops: true } };
    expect(
      await h.emulator.login({ connection: "acme-okta", email: "d@acme.test", organization: "acme" }),
    ).toMatchObject({ decision: "deny", reason: "hook_unavailable" });
    hookAnswer = { status: 200, body: { decision: "maybe" } };
    expect(
      await h.emulator.login({ connection: "acme-okta", email: "d@acme.test", organization: "acme" }),
    ).toMatchObject({ decision: "deny", reason: "hook_unavailable" });
    h.emulator.setPostLoginHook({ url: "http://127.0.0.1:1/unreachable", secret: SECRET });
    expect(
      await h.emulator.login({ connection: "acme-okta", email: "d@acme.test", organization: "acme" }),
    ).toMatchObject({ decision: "deny", reason: "hook_unavailable" });
    expect(h.emulator.state.sessions.size).toBe(0);
  });

  it("refuses a blocked user with 'user is blocked' before calling the hook", async () => {
    const first = await h.emulator.login({ connection: "acme-okta", email: "e@acme.test", organization: "acme" });
    if (first.decision !== "allow") throw new Error("first login should pass");
    await h.client.users.update(first.user.user_id, { blocked: true });
    hookCalls = [];
    const res = await http(h.emulator, "POST", "/__emulator/login", {
      connection: "acme-okta",
      email: "e@acme.test",
      organization: "acme",
    });
    expect(res.status).toBe(403);
    expect(res.body).toMatchObject({ decision: "deny", error: "unauthorized", reason: "user is blocked" });
    expect(hookCalls).toHaveLength(0);
  });

  it("refuses when the organization does not have the connection enabled, or the user is not a member without auto-membership", async () => {
    expect(
      await h.emulator.login({ connection: "other-saml", email: "f@acme.test", organization: "acme" }),
    ).toMatchObject({
      decision: "deny",
      error: "invalid_request",
      reason: "the connection is not enabled for the organization",
    });
    await h.client.organizations.enabledConnections.add(orgId, {
      connection_id: "con_saml",
      assign_membership_on_login: false,
    });
    const denied = await h.emulator.login({ connection: "other-saml", email: "f@acme.test", organization: "acme" });
    expect(denied).toMatchObject({
      decision: "deny",
      error: "access_denied",
      reason: "user is not a member of the organization",
      created: true,
    });
    const userId = (denied as { user: { user_id: string } }).user.user_id;
    await h.client.organizations.members.create(orgId, { members: [userId] });
    expect(
      await h.emulator.login({ connection: "other-saml", email: "f@acme.test", organization: "acme" }),
    ).toMatchObject({ decision: "allow" });
  });

  it("logs in existing database users only", async () => {
    const dbId = (await h.client.connections.list({ name: "Username-Password-Authentication" })).data[0]!.id!;
    await h.client.organizations.enabledConnections.add(orgId, {
      connection_id: dbId,
      assign_membership_on_login: true,
    });
    expect(
      await h.emulator.login({
        connection: "Username-Password-Authentication",
        email: "nobody@acme.test",
        organization: "acme",
      }),
    ).toMatchObject({ decision: "deny", created: false });
    const email = uniqueEmail();
    const id = await createDbUser(h.client, email);
    expect(
      await h.emulator.login({
        connection: "Username-Password-Authentication",
        email: email.toUpperCase(),
        organization: "acme",
      }),
    ).toMatchObject({ decision: "allow", user: { user_id: id } });
  });

  it("answers 400 for a malformed login request", async () => {
    const res = await http(h.emulator, "POST", "/__emulator/login", { email: "x@y.test" });
    expect(res.status).toBe(400);
    expect(res.body).toMatchObject({ statusCode: 400, error: "Bad Request", errorCode: "invalid_body" });
  });
});

describe("sessions, refresh tokens and revoke-access (Enterprise)", () => {
  async function loggedIn(email = uniqueEmail()): Promise<string> {
    const result = await h.emulator.login({ connection: "acme-okta", email, organization: "acme" });
    if (result.decision !== "allow") throw new Error(`login denied: ${result.reason}`);
    return result.user.user_id;
  }

  it("lists and deletes a user's sessions, then refresh tokens", async () => {
    const id = await loggedIn();
    await loggedIn(h.emulator.state.users.get(id)!.email);
    const sessions = await h.client.users.sessions.list(id);
    expect(sessions.data).toHaveLength(2);
    expect(sessions.data[0]).toMatchObject({ user_id: id });
    const tokens = await h.client.users.refreshToken.list(id);
    expect(tokens.data.map((t) => t.session_id).sort()).toEqual(sessions.data.map((s) => s.id).sort());

    await h.client.users.sessions.delete(id);
    expect(h.emulator.state.sessionsOf(id)).toEqual([]);
    expect(h.emulator.state.hasActiveAccess(id)).toBe(true); // refresh tokens outlive the session
    await h.client.users.refreshToken.delete(id);
    expect(h.emulator.state.hasActiveAccess(id)).toBe(false);
    expect(
      h.emulator.state.revocations
        .filter((r) => r.user_id === id)
        .map((r) => r.kind)
        .sort(),
    ).toEqual(["refresh_token", "refresh_token", "session", "session"]);
  });

  it("revoke-access removes sessions and refresh tokens at once (202), or keeps the tokens when asked", async () => {
    const id = await loggedIn();
    const { rawResponse } = await h.client.users.revokeAccess(id, {}).withRawResponse();
    expect(rawResponse.status).toBe(202);
    expect(h.emulator.state.hasActiveAccess(id)).toBe(false);
    expect(new Set(h.emulator.state.revocations.map((r) => r.via))).toEqual(
      new Set(["POST /users/{id}/revoke-access"]),
    );

    const other = await loggedIn();
    await h.client.users.revokeAccess(other, { preserve_refresh_tokens: true });
    expect(h.emulator.state.sessionsOf(other)).toEqual([]);
    expect(h.emulator.state.refreshTokensOf(other)).toHaveLength(1);
    await expectApiError(h.client.users.revokeAccess("okta|nobody", {}), ManagementError, 404, "inexistent_user");
  });

  it("reads, deletes and revokes a single session by id", async () => {
    const id = await loggedIn();
    const email = h.emulator.state.users.get(id)!.email;
    await loggedIn(email);
    const [s1, s2] = h.emulator.state.sessionsOf(id).map((s) => s.id);
    expect(await h.client.sessions.get(s1!)).toMatchObject({ id: s1, user_id: id });
    await h.client.sessions.delete(s1!);
    expect(h.emulator.state.sessionsOf(id).map((s) => s.id)).toEqual([s2]);
    expect(h.emulator.state.refreshTokensOf(id)).toHaveLength(2); // DELETE /sessions/{id} leaves refresh tokens
    await h.client.sessions.revoke(s2!);
    expect(h.emulator.state.sessionsOf(id)).toEqual([]);
    expect(h.emulator.state.refreshTokensOf(id).map((t) => t.session_id)).toEqual([s1]); // /revoke takes the session's tokens
    await expectApiError(h.client.sessions.get(s1!), Management.NotFoundError, 404);
  });

  it.each<Plan>(["free", "essentials"])("answers 403 on the %s plan", async (plan) => {
    const limited = await startHarness({ plan });
    try {
      const id = await createDbUser(limited.client);
      await expectApiError(limited.client.users.sessions.list(id), Management.ForbiddenError, 403);
      await expectApiError(limited.client.users.sessions.delete(id), Management.ForbiddenError, 403);
      await expectApiError(limited.client.users.refreshToken.list(id), Management.ForbiddenError, 403);
      await expectApiError(limited.client.users.refreshToken.delete(id), Management.ForbiddenError, 403);
      await expectApiError(limited.client.users.revokeAccess(id, {}), Management.ForbiddenError, 403);
      await expectApiError(limited.client.sessions.delete("any"), Management.ForbiddenError, 403);
    } finally {
      await limited.emulator.close();
    }
  });
});

describe("password-change tickets", () => {
  it("issues a ticket URL for a database user, by id or by connection and email", async () => {
    const email = uniqueEmail();
    const id = await createDbUser(h.client, email);
    const ticket = await h.client.tickets.changePassword({
      user_id: id,
      result_url: "https://app.example/welcome",
      ttl_sec: 3600,
      organization_id: orgId,
    });
    expect(ticket.ticket).toMatch(new RegExp(`^${h.emulator.url}/lo/reset\\?ticket=[A-Za-z0-9]+#$`));
    const stored = h.emulator.state.tickets[0]!;
    expect(stored).toMatchObject({ user_id: id, organization_id: orgId, result_url: "https://app.example/welcome" });
    expect(Date.parse(stored.expires_at) - Date.parse(stored.created_at)).toBe(3600_000);
    const dbId = (await h.client.connections.list({ name: "Username-Password-Authentication" })).data[0]!.id!;
    await expect(h.client.tickets.changePassword({ connection_id: dbId, email })).resolves.toHaveProperty("ticket");
    expect(
      Date.parse(h.emulator.state.tickets[1]!.expires_at) - Date.parse(h.emulator.state.tickets[1]!.created_at),
    ).toBe(432000_000);
  });

  it("answers 404 for an unknown user and 400 for an enterprise user", async () => {
    await expectApiError(
      h.client.tickets.changePassword({ user_id: "auth0|nobody" }),
      Management.NotFoundError,
      404,
      "inexistent_user",
    );
    const result = await h.emulator.login({ connection: "acme-okta", email: "g@acme.test", organization: "acme" });
    if (result.decision !== "allow") throw new Error("login denied");
    await expectApiError(
      h.client.tickets.changePassword({ user_id: result.user.user_id }),
      Management.BadRequestError,
      400,
    );
  });
});

describe("authentication", () => {
  it("answers 401 (UnauthorizedError, no errorCode) once the access token is no longer valid", async () => {
    await createDbUser(h.client);
    h.emulator.revokeTokens();
    const err = await expectApiError(h.client.users.list(), Management.UnauthorizedError, 401);
    expect(err.body).toEqual({ statusCode: 401, error: "Unauthorized", message: "Invalid token." });
  });

  it("answers 401 Missing authentication without a bearer token", async () => {
    const res = await http(h.emulator, "GET", "/api/v2/users");
    expect(res.status).toBe(401);
    expect(res.body).toEqual({ statusCode: 401, error: "Unauthorized", message: "Missing authentication" });
  });

  it("with fixed credentials, refuses a wrong client secret at /oauth/token", async () => {
    const fixed = await startHarness({ clientId: "bridge", clientSecret: "right" });
    try {
      const wrong = clientFor(fixed.emulator, 0, { clientId: "bridge", clientSecret: "wrong" });
      const err = (await wrong.users.list().catch((e: unknown) => e)) as { statusCode?: number; body?: unknown };
      expect(err).toBeInstanceOf(ManagementError);
      expect(err.statusCode).toBe(401);
      expect(err.body).toEqual({ error: "access_denied", error_description: "Unauthorized" });
      const right = clientFor(fixed.emulator, 0, { clientId: "bridge", clientSecret: "right" });
      await expect(right.users.list()).resolves.toBeDefined();
    } finally {
      await fixed.emulator.close();
    }
  });
});
