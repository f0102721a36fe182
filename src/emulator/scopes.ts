/**
 * Management API scopes per route. Each route's scopes come from the `<Scopes>` front matter of its
 * page under auth0.com/docs/api/management/v2 (e.g. "Update a connection": update:connections;
 * "Revokes selected resources related to a user": delete:sessions and delete:refresh_tokens). A
 * token whose grant lacks them gets
 *   403 {"statusCode":403,"error":"Forbidden","message":"Insufficient scope, expected any of: <scope>","errorCode":"insufficient_scope"}
 *
 * Where a page lists alternatives only some clients can hold (read:current_user and the like are
 * for user tokens, not client grants), the emulator keeps the client-grant scope alone: stricter.
 */
import { ApiError } from "./errors.js";

/**
 * Route label ("METHOD /pattern", patterns as the emulator's router spells them) → requirements.
 * Every requirement must be met; a requirement is met by any one of its scopes.
 */
export const ROUTE_SCOPES: Readonly<Record<string, readonly (readonly string[])[]>> = {
  "GET /users": [["read:users"]],
  "POST /users": [["create:users"]],
  "GET /users-by-email": [["read:users"]],
  "GET /users/:id": [["read:users"]],
  "PATCH /users/:id": [["update:users"]],
  "DELETE /users/:id": [["delete:users"]],
  "GET /users/:id/sessions": [["read:sessions"]],
  "DELETE /users/:id/sessions": [["delete:sessions"]],
  "GET /users/:id/refresh-tokens": [["read:refresh_tokens"]],
  "DELETE /users/:id/refresh-tokens": [["delete:refresh_tokens"]],
  "POST /users/:id/revoke-access": [["delete:sessions"], ["delete:refresh_tokens"]],
  "GET /sessions/:id": [["read:sessions"]],
  "DELETE /sessions/:id": [["delete:sessions"]],
  "POST /sessions/:id/revoke": [["delete:sessions"], ["delete:refresh_tokens"]],
  "POST /tickets/password-change": [["create:user_tickets"]],
  "POST /organizations": [["create:organizations"]],
  "GET /organizations": [["read:organizations"]],
  "GET /organizations/name/:name": [["read:organizations"]],
  "GET /organizations/:id": [["read:organizations"]],
  "PATCH /organizations/:id": [["update:organizations"]],
  "DELETE /organizations/:id": [["delete:organizations"]],
  "GET /organizations/:id/enabled_connections": [["read:organization_connections"]],
  "POST /organizations/:id/enabled_connections": [["create:organization_connections"]],
  "GET /organizations/:id/enabled_connections/:connectionId": [["read:organization_connections"]],
  "PATCH /organizations/:id/enabled_connections/:connectionId": [["update:organization_connections"]],
  "DELETE /organizations/:id/enabled_connections/:connectionId": [["delete:organization_connections"]],
  "POST /organizations/:id/members": [["create:organization_members"]],
  "DELETE /organizations/:id/members": [["delete:organization_members"]],
  "GET /organizations/:id/members": [["read:organization_members"]],
  "POST /organizations/:id/members/:userId/roles": [["create:organization_member_roles"]],
  "DELETE /organizations/:id/members/:userId/roles": [["delete:organization_member_roles"]],
  "GET /organizations/:id/members/:userId/roles": [["read:organization_member_roles"]],
  "GET /roles": [["read:roles"]],
  "POST /roles": [["create:roles"]],
  "GET /roles/:id": [["read:roles"]],
  "DELETE /roles/:id": [["delete:roles"]],
  "GET /connections": [["read:connections"]],
  "GET /connections/:id": [["read:connections"]],
  "PATCH /connections/:id": [["update:connections"]],
  // User import jobs ("Create import users job": create:users; "Get a job" / "Get job error
  // details": create:users or read:users).
  "POST /jobs/users-imports": [["create:users"]],
  "GET /jobs/:id": [["create:users", "read:users"]],
  "GET /jobs/:id/errors": [["create:users", "read:users"]],
};

/** Every scope the emulator checks: the default client grant. */
export const ALL_SCOPES: readonly string[] = [...new Set(Object.values(ROUTE_SCOPES).flat(2))].sort();

/**
 * Scopes a call needs beyond its route's: "Get members who belong to an organization" with
 * `fields=roles` also needs read:organization_member_roles.
 */
export function extraScopes(label: string, query: URLSearchParams): (readonly string[])[] {
  if (label === "GET /organizations/:id/members") {
    const fields = (query.get("fields") ?? "").split(",").map((f) => f.trim());
    if (fields.includes("roles") && query.get("include_fields") !== "false")
      return [["read:organization_member_roles"]];
  }
  return [];
}

export function insufficientScope(expected: readonly string[]): ApiError {
  return new ApiError(403, `Insufficient scope, expected any of: ${expected.join(",")}`, "insufficient_scope");
}

/** Throws Auth0's 403 for the first requirement the grant does not meet. */
export function checkScopes(requirements: readonly (readonly string[])[], granted: ReadonlySet<string>): void {
  for (const anyOf of requirements) {
    if (!anyOf.some((s) => granted.has(s))) throw insufficientScope(anyOf);
  }
}
