/**
 * Client-grant scopes, through node-auth0 v7. Source of each route's scope: the `<Scopes>` front
 * matter of its page under auth0.com/docs/api/management/v2 (e.g. "Update an Organization":
 * update:organizations; "Update the Enabled Connection for an Organization":
 * update:organization_connections; "Get all connections": read:connections; "Revoke access":
 * delete:sessions and delete:refresh_tokens).
 */
import { Management, ManagementError } from "auth0";
import { afterEach, describe, expect, it } from "vitest";
import {
  ALL_SCOPES,
  ROUTE_SCOPES,
  requiredScopes,
  routeLabels,
  type EmulatorOptions,
} from "../../src/emulator/index.js";
import { DB, DOMAIN, bearer, createDbUser, expectApiError, http, startHarness, type Harness } from "./helpers.js";

let h: Harness | undefined;
afterEach(async () => {
  await h?.emulator.close();
  h = undefined;
});
async function start(options: EmulatorOptions = {}): Promise<Harness> {
  h = await startHarness({ connections: [{ name: "acme-okta", strategy: "okta", id: "con_okta" }], ...options });
  return h;
}

async function tokenResponse(url: string): Promise<{ scope: string; access_token: string }> {
  const response = await fetch(`${url}/oauth/token`, {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams({
      grant_type: "client_credentials",
      client_id: "c",
      client_secret: "s",
      audience: `https://${DOMAIN}/api/v2/`,
    }).toString(),
  });
  return (await response.json()) as { scope: string; access_token: string };
}

describe("client grant scopes (Auth0 Management API docs, each endpoint's Scopes)", () => {
  it("by default the grant holds every scope the emulator checks, and the token response says so", async () => {
    const { emulator, client } = await start();
    expect((await tokenResponse(emulator.url)).scope.split(" ").sort()).toEqual([...ALL_SCOPES]);
    expect(ALL_SCOPES).toEqual(
      expect.arrayContaining([
        "update:organizations",
        "update:organization_connections",
        "read:connections",
        "update:connections",
        "delete:sessions",
        "delete:refresh_tokens",
        "create:user_tickets",
      ]),
    );
    await createDbUser(client);
  });

  it("a restricted grant answers Auth0's 403 insufficient_scope naming the missing scope; the token carries the grant", async () => {
    const { emulator, client } = await start({ scopes: ["read:users", "read:organizations", "create:organizations"] });
    const issued = await tokenResponse(emulator.url);
    expect(issued.scope).toBe("create:organizations read:organizations read:users");
    // The access token is a JWT like Auth0's ("Access Token Profiles"): its scope claim carries the grant.
    const claims = JSON.parse(Buffer.from(issued.access_token.split(".")[1]!, "base64url").toString("utf8")) as Record<
      string,
      unknown
    >;
    expect(claims).toMatchObject({
      scope: "create:organizations read:organizations read:users",
      sub: "c@clients",
      aud: `https://${DOMAIN}/api/v2/`,
      gty: "client-credentials",
    });
    await expect(client.users.list()).resolves.toBeDefined();
    const org = await client.organizations.create({ name: "acme" });
    const err = await expectApiError(
      client.users.create({ connection: DB, email: "a@x.test", password: "Correct-Horse-9" }),
      Management.ForbiddenError,
      403,
      "insufficient_scope",
    );
    expect(err.body).toEqual({
      statusCode: 403,
      error: "Forbidden",
      message: "Insufficient scope, expected any of: create:users",
      errorCode: "insufficient_scope",
    });
    expect(emulator.state.users.size).toBe(0);
    const cases: [() => Promise<unknown>, string][] = [
      [() => client.organizations.update(org.id!, { display_name: "Acme" }), "update:organizations"],
      [
        () => client.organizations.enabledConnections.update(org.id!, "con_okta", { assign_membership_on_login: true }),
        "update:organization_connections",
      ],
      [
        () => client.organizations.enabledConnections.add(org.id!, { connection_id: "con_okta" }),
        "create:organization_connections",
      ],
      [() => client.connections.list(), "read:connections"],
      [() => client.organizations.members.create(org.id!, { members: ["auth0|1"] }), "create:organization_members"],
      [() => client.organizations.members.list(org.id!), "read:organization_members"],
      [() => client.roles.list(), "read:roles"],
      [() => client.tickets.changePassword({ user_id: "auth0|1" }), "create:user_tickets"],
      [() => client.users.sessions.delete("auth0|1"), "delete:sessions"],
      [() => client.users.refreshToken.delete("auth0|1"), "delete:refresh_tokens"],
    ];
    for (const [call, scope] of cases) {
      const e = await expectApiError(call(), ManagementError, 403, "insufficient_scope");
      expect((e.body as { message: string }).message).toBe(`Insufficient scope, expected any of: ${scope}`);
    }
  });

  it("revoke-access needs both delete:sessions and delete:refresh_tokens", async () => {
    const { client, emulator } = await start({ scopes: ["delete:sessions", "create:users"] });
    const id = await createDbUser(client);
    const e = await expectApiError(client.users.revokeAccess(id, {}), ManagementError, 403, "insufficient_scope");
    expect((e.body as { message: string }).message).toBe("Insufficient scope, expected any of: delete:refresh_tokens");
    emulator.setGrantScopes(["delete:sessions", "delete:refresh_tokens"]);
    await expect(client.users.revokeAccess(id, {})).resolves.toBeUndefined();
  });

  it("listing members with fields=roles also needs read:organization_member_roles", async () => {
    const { client } = await start({ scopes: ["create:organizations", "read:organization_members"] });
    const org = await client.organizations.create({ name: "acme" });
    await expect(client.organizations.members.list(org.id!)).resolves.toBeDefined();
    const e = await expectApiError(
      client.organizations.members.list(org.id!, { fields: "user_id,roles", include_fields: true }),
      ManagementError,
      403,
      "insufficient_scope",
    );
    expect((e.body as { message: string }).message).toBe(
      "Insufficient scope, expected any of: read:organization_member_roles",
    );
  });

  it("setGrantScopes and PUT /__emulator/grant change the grant for tokens already issued; absent = every scope", async () => {
    const { client, emulator } = await start();
    await createDbUser(client); // the SDK now holds a token
    emulator.setGrantScopes(["read:users"]);
    await expectApiError(createDbUser(client), Management.ForbiddenError, 403, "insufficient_scope");
    const token = await bearer(emulator);
    const put = await http(emulator, "PUT", "/__emulator/grant", { scopes: ["create:users"] });
    expect(put).toMatchObject({ status: 200, body: { scopes: ["create:users"] } });
    await createDbUser(client);
    const raw = await http(emulator, "GET", "/api/v2/users", undefined, { authorization: `Bearer ${token}` });
    expect(raw).toMatchObject({ status: 403, body: { errorCode: "insufficient_scope" } });
    expect((await http(emulator, "PUT", "/__emulator/grant", { scopes: "all" })).status).toBe(400);
    await http(emulator, "PUT", "/__emulator/grant", {});
    expect((await http(emulator, "GET", "/__emulator/grant")).body).toEqual({ scopes: [...ALL_SCOPES] });
    expect((await http(emulator, "GET", "/api/v2/users", undefined, { authorization: `Bearer ${token}` })).status).toBe(
      200,
    );
  });

  it("a bad token is still 401 before any scope check", async () => {
    const { emulator } = await start({ scopes: [] });
    expect((await http(emulator, "GET", "/api/v2/users", undefined, { authorization: "Bearer nope" })).status).toBe(
      401,
    );
  });

  it("every route the emulator serves has its scopes in ROUTE_SCOPES, and requiredScopes() answers for a concrete path", () => {
    const missing = routeLabels().filter((label) => !ROUTE_SCOPES[label]);
    expect(missing).toEqual([]);
    expect(requiredScopes("PATCH", "/api/v2/organizations/org_1/enabled_connections/con_1")).toEqual([
      ["update:organization_connections"],
    ]);
    expect(requiredScopes("POST", "/api/v2/users/auth0%7C1/revoke-access")).toEqual([
      ["delete:sessions"],
      ["delete:refresh_tokens"],
    ]);
    expect(requiredScopes("GET", "/api/v2/organizations/org_1/members?fields=roles")).toEqual([
      ["read:organization_members"],
      ["read:organization_member_roles"],
    ]);
    expect(requiredScopes("GET", "/api/v2/nothing-here")).toBeUndefined();
  });
});
