/**
 * Organization members and their roles (Auth0 docs "Assign Members to Organizations",
 * "Remove Members from Organizations", "Entity Limit Policy"):
 * - add/remove take at most 10 user ids per call; remove takes a JSON body on DELETE;
 * - members are listed with checkpoint paging (`from`/`take`) or offset paging, which stops at
 *   1,000 records with 400 invalid_paging;
 * - at most 50 roles per member; roles must exist; removing a member removes its roles there.
 */
import { ApiError, invalidBody } from "../errors.js";
import { byKey, checkpointReply, isCheckpointRequest, offsetReply, parseCheckpoint, parseOffset } from "../paging.js";
import { jsonType, objectBody, type RequestContext, type Router } from "../router.js";
import { findOrganization } from "./organizations.js";
import { roleJson } from "./roles.js";

export const MAX_MEMBERS_PER_CALL = 10;
export const MAX_ROLES_PER_MEMBER = 50;
export const MEMBER_OFFSET_LIMIT = 1000;

function idList(body: unknown, property: "members" | "roles", max: number): string[] {
  const input = objectBody(body);
  const extra = Object.keys(input).filter((k) => k !== property);
  if (extra.length) throw invalidBody(`'Additional properties not allowed: ${extra.join(",")}'.`);
  const list = input[property];
  if (list === undefined) throw invalidBody(`'Missing required property: ${property}'.`);
  if (!Array.isArray(list))
    throw invalidBody(`'Expected type array but found type ${jsonType(list)}' on property ${property}.`);
  if (list.length < 1) throw invalidBody(`'Array is too short (0), minimum 1' on property ${property}.`);
  if (list.length > max)
    throw invalidBody(`'Array is too long (${list.length}), maximum ${max}' on property ${property}.`);
  for (const id of list) {
    if (typeof id !== "string" || id.length === 0)
      throw invalidBody(`'Expected type string but found type ${jsonType(id)}' on property ${property}.`);
  }
  return [...new Set(list as string[])];
}

function requireMember(ctx: RequestContext): { orgId: string; userId: string } {
  const org = findOrganization(ctx.state, ctx.params.id!);
  const userId = ctx.params.userId!;
  if (!ctx.state.members.get(org.id)?.has(userId)) {
    throw new ApiError(400, "The user is not a member of the organization.", "invalid_body");
  }
  return { orgId: org.id, userId };
}

export function registerMemberRoutes(router: Router): void {
  router.add("POST", "/organizations/:id/members", "org-members:write", ({ state, params, body }) => {
    const org = findOrganization(state, params.id!);
    const ids = idList(body, "members", MAX_MEMBERS_PER_CALL);
    const missing = ids.filter((id) => !state.users.has(id));
    if (missing.length) throw invalidBody(`the following users do not exist: ${missing.join(", ")}.`);
    for (const id of ids) state.addMember(org.id, id);
    return { status: 204 };
  });

  // In Auth0 removal "takes approximately 5–10 seconds": it shows after asyncDelayMs (default 0).
  router.add("DELETE", "/organizations/:id/members", "org-members:write", ({ state, params, body }) => {
    const org = findOrganization(state, params.id!);
    for (const id of idList(body, "members", MAX_MEMBERS_PER_CALL)) state.removeMember(org.id, id);
    return { status: 204 };
  });

  router.add("GET", "/organizations/:id/members", "org-members:read", ({ state, params, query }) => {
    const org = findOrganization(state, params.id!);
    const withRoles = (query.get("fields") ?? "")
      .split(",")
      .map((f) => f.trim())
      .includes("roles");
    const members = state
      .membersOf(org.id)
      .sort()
      .map((userId) => {
        const user = state.users.get(userId);
        return {
          user_id: userId,
          email: user?.email,
          picture: user?.picture,
          name: user?.name,
          ...(withRoles
            ? {
                roles: state.memberRolesOf(org.id, userId).flatMap((r) => {
                  const role = state.roles.get(r);
                  return role ? [{ id: role.id, name: role.name }] : [];
                }),
              }
            : {}),
        };
      });
    const offset = (query.has("page") || query.has("per_page")) && !query.has("from");
    if (!offset && isCheckpointRequest(query)) {
      return { status: 200, body: checkpointReply("members", members, (m) => m.user_id, parseCheckpoint(query)) };
    }
    const paging = parseOffset(query);
    if ((paging.page + 1) * paging.perPage > MEMBER_OFFSET_LIMIT) {
      throw new ApiError(
        400,
        `Requesting page exceeds the allowed maximum of ${MEMBER_OFFSET_LIMIT} records.`,
        "invalid_paging",
      );
    }
    return { status: 200, body: offsetReply("members", members, paging) };
  });

  router.add("POST", "/organizations/:id/members/:userId/roles", "org-member-roles:write", (ctx) => {
    const { orgId, userId } = requireMember(ctx);
    const ids = idList(ctx.body, "roles", MAX_ROLES_PER_MEMBER);
    const missing = ids.filter((id) => !ctx.state.roles.has(id));
    if (missing.length) throw invalidBody(`the following roles do not exist: ${missing.join(", ")}.`);
    const foreign = ids.filter((id) => {
      const role = ctx.state.roles.get(id)!;
      return role.type === "organization" && role.owner_id !== orgId;
    });
    if (foreign.length)
      throw invalidBody(`the following organization roles belong to another organization: ${foreign.join(", ")}.`);
    let byUser = ctx.state.memberRoles.get(orgId);
    if (!byUser) ctx.state.memberRoles.set(orgId, (byUser = new Map()));
    const current = byUser.get(userId) ?? new Set<string>();
    const next = new Set([...current, ...ids]);
    if (next.size > MAX_ROLES_PER_MEMBER) {
      throw invalidBody(
        `a member can hold at most ${MAX_ROLES_PER_MEMBER} roles in an organization (would have ${next.size}).`,
      );
    }
    byUser.set(userId, next);
    return { status: 204 };
  });

  router.add("DELETE", "/organizations/:id/members/:userId/roles", "org-member-roles:write", (ctx) => {
    const org = findOrganization(ctx.state, ctx.params.id!);
    const ids = idList(ctx.body, "roles", MAX_ROLES_PER_MEMBER);
    const current = ctx.state.memberRoles.get(org.id)?.get(ctx.params.userId!);
    for (const id of ids) current?.delete(id);
    return { status: 204 };
  });

  router.add("GET", "/organizations/:id/members/:userId/roles", "org-member-roles:read", (ctx) => {
    const org = findOrganization(ctx.state, ctx.params.id!);
    const roles = ctx.state
      .memberRolesOf(org.id, ctx.params.userId!)
      .flatMap((id) => {
        const role = ctx.state.roles.get(id);
        return role ? [roleJson(role)] : [];
      })
      .sort(byKey((r) => String(r.id)));
    return { status: 200, body: offsetReply("roles", roles, parseOffset(ctx.query)) };
  });
}
