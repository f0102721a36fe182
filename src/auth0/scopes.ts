/**
 * The Management API scopes the bridge's application needs, derived from what the organizations'
 * mappings make it do. Each scope names the calls that use it and what stops working without it,
 * so `doctor`, `serve` and /readyz can say exactly what to grant. Scopes per endpoint are those of
 * Auth0's Management API v2 reference (each endpoint's "Scopes" section). Pure.
 */
import type { MappingDocument } from "../mapping/index.js";

export interface ScopeNeed {
  scope: string;
  /** The Management API calls that need it. */
  calls: string[];
  /** What goes wrong without it, in operator's words. */
  breaks: string;
  /** The organizations (slugs) whose mapping needs it; empty for scopes every organization needs. */
  organizations: string[];
}

export interface MappedOrganization {
  slug: string;
  mapping: MappingDocument;
}

interface Rule {
  scope: string;
  calls: string[];
  breaks: string;
  /** Absent: every organization needs it. */
  when?: (m: MappingDocument) => boolean;
}

const grantsRoles = (m: MappingDocument): boolean =>
  m.roles.default.length > 0 || m.roles.rules.some((r) => r.grant.length > 0);
const policies = (m: MappingDocument) => [m.policies.deactivation, m.policies.deletion];

/** In the order a first sync uses them. */
const rules: Rule[] = [
  {
    scope: "read:organizations",
    calls: ["GET /api/v2/organizations/name/{name}"],
    breaks: "the bridge cannot find the Auth0 Organization of any organization: nothing syncs",
  },
  {
    scope: "create:organizations",
    calls: ["POST /api/v2/organizations"],
    breaks: "organizations not yet in Auth0 are never created: their users never sync",
  },
  {
    scope: "update:organizations",
    calls: ["PATCH /api/v2/organizations/{id}"],
    breaks: "a renamed organization's display name is not updated in Auth0, and its sync fails",
  },
  {
    scope: "read:connections",
    calls: ["GET /api/v2/connections"],
    breaks: "the bridge cannot resolve the mapped connection: no organization syncs",
  },
  {
    scope: "read:organization_connections",
    calls: ["GET /api/v2/organizations/{id}/enabled_connections"],
    breaks: "the bridge cannot check that the connection is enabled on the organization: no organization syncs",
  },
  {
    scope: "create:organization_connections",
    calls: ["POST /api/v2/organizations/{id}/enabled_connections"],
    breaks: "the connection is not enabled on new organizations, so their users cannot sign in through it",
  },
  {
    scope: "update:organization_connections",
    calls: ["PATCH /api/v2/organizations/{id}/enabled_connections/{connection_id}"],
    breaks: "enterprise users are not admitted to the organization at their first login (auto-membership stays off)",
    when: (m) => m.connection.type === "enterprise",
  },
  {
    scope: "read:users",
    calls: ["GET /api/v2/users/{id}", "GET /api/v2/users-by-email"],
    breaks: "the bridge cannot find or link users: nothing syncs, and deactivations cannot block anyone",
  },
  {
    scope: "create:users",
    calls: ["POST /api/v2/users"],
    breaks: "users pushed by the IdP are never created in the database connection",
    when: (m) => m.connection.type === "database",
  },
  {
    scope: "update:users",
    calls: ["PATCH /api/v2/users/{id}"],
    breaks: "deactivated users are NOT blocked, and profiles and app_metadata never change",
  },
  {
    scope: "delete:users",
    calls: ["DELETE /api/v2/users/{id}"],
    breaks: "users deleted at the IdP are not deleted in Auth0 (the mapping's deletion.deleteUser)",
    when: (m) => m.policies.deletion.deleteUser,
  },
  {
    scope: "create:organization_members",
    calls: ["POST /api/v2/organizations/{id}/members"],
    breaks: "users are never added to their organization",
  },
  {
    scope: "read:organization_members",
    calls: ["GET /api/v2/organizations/{id}/members"],
    breaks: "drift scans cannot compare the organization's members with the directory",
  },
  {
    scope: "delete:organization_members",
    calls: ["DELETE /api/v2/organizations/{id}/members"],
    breaks: "deprovisioned users keep their organization membership (the mapping's removeMembership)",
    when: (m) => policies(m).some((p) => p.removeMembership),
  },
  {
    scope: "read:roles",
    calls: ["GET /api/v2/roles"],
    breaks: "the roles the mapping grants cannot be resolved: users get no roles",
    when: grantsRoles,
  },
  {
    scope: "create:roles",
    calls: ["POST /api/v2/roles"],
    breaks: "a role the mapping names that the tenant lacks is not created, and users needing it get no roles",
    when: grantsRoles,
  },
  {
    scope: "read:organization_member_roles",
    calls: ["GET /api/v2/organizations/{id}/members/{user_id}/roles"],
    breaks: "drift scans cannot see members' roles",
    when: grantsRoles,
  },
  {
    scope: "create:organization_member_roles",
    calls: ["POST /api/v2/organizations/{id}/members/{user_id}/roles"],
    breaks: "users never get the roles the mapping grants",
    when: grantsRoles,
  },
  {
    scope: "delete:organization_member_roles",
    calls: ["DELETE /api/v2/organizations/{id}/members/{user_id}/roles"],
    breaks: "roles the IdP no longer grants (or of deprovisioned users) are never removed",
    when: grantsRoles,
  },
  {
    scope: "delete:sessions",
    calls: ["POST /api/v2/users/{id}/revoke-access", "DELETE /api/v2/users/{id}/sessions"],
    breaks: "deactivated users keep their open sessions (the mapping's revokeSessions)",
    when: (m) => policies(m).some((p) => p.revokeSessions !== "never"),
  },
  {
    scope: "delete:refresh_tokens",
    calls: ["POST /api/v2/users/{id}/revoke-access", "DELETE /api/v2/users/{id}/refresh-tokens"],
    breaks:
      "deactivated users keep their refresh tokens, so applications stay signed in (the mapping's revokeSessions)",
    when: (m) => policies(m).some((p) => p.revokeSessions !== "never"),
  },
  {
    scope: "create:user_tickets",
    calls: ["POST /api/v2/tickets/password-change"],
    breaks: "invitations (password-change tickets) are never sent",
    when: (m) => m.policies.invitation.send,
  },
];

/** Every scope the bridge might use, whatever the mappings: for the setup guide and the emulator's full grant. */
export const allBridgeScopes: readonly string[] = rules.map((r) => r.scope);

/** The scopes the given organizations need (with none yet: those every organization needs). */
export function requiredScopes(orgs: MappedOrganization[]): ScopeNeed[] {
  const out: ScopeNeed[] = [];
  for (const r of rules) {
    if (!r.when) {
      out.push({ scope: r.scope, calls: r.calls, breaks: r.breaks, organizations: [] });
      continue;
    }
    const needing = orgs.filter((o) => r.when!(o.mapping)).map((o) => o.slug);
    if (needing.length > 0) out.push({ scope: r.scope, calls: r.calls, breaks: r.breaks, organizations: needing });
  }
  return out;
}

/** The needs the granted scopes do not cover. */
export function missingScopes(needs: ScopeNeed[], granted: readonly string[]): ScopeNeed[] {
  const have = new Set(granted);
  return needs.filter((n) => !have.has(n.scope));
}
