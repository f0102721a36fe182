/**
 * The scopes the bridge asks operators to grant follow from the mappings, and agree with the
 * scopes the Management API (as the emulator models it, per Auth0's endpoint reference) requires
 * for every call the bridge makes.
 */
import { describe, expect, it } from "vitest";
import { allBridgeScopes, missingScopes, requiredScopes } from "../../src/auth0/scopes.js";
import { ALL_SCOPES, ROUTE_SCOPES } from "../../src/emulator/index.js";
import { defaultMapping, parseMapping, type MappingDocument } from "../../src/mapping/index.js";

const scopesOf = (...mappings: MappingDocument[]): string[] =>
  requiredScopes(mappings.map((m, i) => ({ slug: `org${i}`, mapping: m }))).map((n) => n.scope);
const base = { userModel: "isolated", profile: { email: "userName" } } as const;

describe("requiredScopes", () => {
  it("a database connection needs create:users, not update:organization_connections; update:organizations always", () => {
    const s = scopesOf(defaultMapping({ connection: "db", userModel: "isolated" }));
    expect(s).toContain("create:users");
    expect(s).toContain("update:organizations");
    expect(s).not.toContain("update:organization_connections");
    // The default never deletes users, grants no roles, sends no invitations.
    expect(s).not.toContain("delete:users");
    expect(s).not.toContain("read:roles");
    expect(s).not.toContain("create:user_tickets");
    expect(s).toEqual(expect.arrayContaining(["delete:sessions", "delete:refresh_tokens"]));
  });

  it("an enterprise connection needs update:organization_connections, not create:users", () => {
    const s = scopesOf(defaultMapping({ connection: "okta", userModel: "isolated", connectionType: "enterprise" }));
    expect(s).toContain("update:organization_connections");
    expect(s).not.toContain("create:users");
  });

  it("roles, deletion, shared membership removal and invitations each add their scopes, naming the organizations", () => {
    const roles = parseMapping({ ...base, connection: { name: "db" }, roles: { default: ["member"] } });
    const deleting = parseMapping({
      ...base,
      connection: { name: "db" },
      policies: { deletion: { deleteUser: true } },
    });
    const shared = parseMapping({ ...base, userModel: "shared", connection: { name: "db" } });
    const inviting = parseMapping({ ...base, connection: { name: "db" }, policies: { invitation: { send: true } } });
    const needs = requiredScopes([
      { slug: "roles", mapping: roles },
      { slug: "deleting", mapping: deleting },
      { slug: "shared", mapping: shared },
      { slug: "inviting", mapping: inviting },
    ]);
    const by = (scope: string) => needs.find((n) => n.scope === scope)?.organizations;
    for (const s of [
      "read:roles",
      "create:roles",
      "read:organization_member_roles",
      "create:organization_member_roles",
      "delete:organization_member_roles",
    ])
      expect(by(s)).toEqual(["roles"]);
    // An applied isolated mapping deletes on DELETE unless it says otherwise (only the default mapping never does).
    expect(by("delete:users")).toEqual(["roles", "deleting", "inviting"]);
    expect(by("delete:organization_members")).toEqual(["shared"]);
    expect(by("create:user_tickets")).toEqual(["inviting"]);
    expect(by("read:users")).toEqual([]);
  });

  it("revokeSessions: never (both policies) drops the revocation scopes", () => {
    const m = parseMapping({
      ...base,
      connection: { name: "db" },
      policies: { deactivation: { revokeSessions: "never" }, deletion: { revokeSessions: "never" } },
    });
    expect(scopesOf(m)).not.toContain("delete:sessions");
  });

  it("missingScopes keeps the needs the grant lacks", () => {
    const needs = requiredScopes([{ slug: "a", mapping: defaultMapping({ connection: "db", userModel: "isolated" }) }]);
    expect(
      missingScopes(
        needs,
        needs.map((n) => n.scope).filter((s) => s !== "update:organizations"),
      ).map((n) => n.scope),
    ).toEqual(["update:organizations"]);
  });
});

describe("agreement with the Management API's scopes per endpoint", () => {
  it("every scope the bridge lists exists, and every call it lists needs exactly a listed scope", () => {
    for (const scope of allBridgeScopes) expect(ALL_SCOPES).toContain(scope);
    const needs = requiredScopes([
      {
        slug: "isolated",
        mapping: parseMapping({
          ...base,
          connection: { name: "db" },
          roles: { default: ["r"] },
          policies: { invitation: { send: true } },
        }),
      },
      { slug: "shared", mapping: parseMapping({ ...base, userModel: "shared", connection: { name: "db" } }) },
      {
        slug: "enterprise",
        mapping: defaultMapping({ connection: "okta", userModel: "isolated", connectionType: "enterprise" }),
      },
    ]);
    expect(needs.map((n) => n.scope).sort()).toEqual([...allBridgeScopes].sort());
    for (const need of needs) {
      for (const call of need.calls) {
        const [method, path] = call.split(" ") as [string, string];
        const route = `${method} ${path.replace("/api/v2", "").replace(/\{(\w+)\}/g, (_m, p: string) => `:${p === "user_id" ? "userId" : p === "connection_id" ? "connectionId" : p}`)}`;
        const required = ROUTE_SCOPES[route];
        expect(required, route).toBeDefined();
        expect(required!.flat(), `${route} needs ${need.scope}`).toContain(need.scope);
      }
    }
  });
});
