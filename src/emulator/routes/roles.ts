/**
 * /api/v2/roles (Auth0 docs "Entity Limit Policy"): tenant roles, and organization roles (EA) scoped by owner_id;
 * `name_filter` is case-insensitive; at most 1,000 roles per tenant.
 */
import { conflict, invalidBody, organizationNotFound, roleNotFound } from "../errors.js";
import { offsetReply, parseOffset } from "../paging.js";
import { jsonType, objectBody, type Router } from "../router.js";
import type { Role } from "../types.js";
import { randomAlnum } from "../util.js";

export const MAX_ROLES_PER_TENANT = 1000;
const ROLE_PROPS = new Set(["name", "description", "type", "owner_id"]);

export function roleJson(role: Role): Record<string, unknown> {
  return {
    id: role.id,
    name: role.name,
    description: role.description ?? "",
    ...(role.type === "organization" ? { type: role.type, owner_id: role.owner_id } : {}),
  };
}

export function registerRoleRoutes(router: Router): void {
  router.add("GET", "/roles", "other", ({ state, query }) => {
    const nameFilter = query.get("name_filter")?.toLowerCase();
    const type = query.get("type");
    const owner = query.get("owner_id");
    const roles = [...state.roles.values()]
      .filter((r) => !nameFilter || r.name.toLowerCase().includes(nameFilter))
      .filter((r) => !type || (r.type ?? "tenant") === type)
      .filter((r) => !owner || r.owner_id === owner)
      .map(roleJson);
    return { status: 200, body: offsetReply("roles", roles, parseOffset(query)) };
  });

  router.add("POST", "/roles", "other", ({ state, body }) => {
    const input = objectBody(body);
    const extra = Object.keys(input).filter((k) => !ROLE_PROPS.has(k));
    if (extra.length) throw invalidBody(`'Additional properties not allowed: ${extra.join(",")}'.`);
    if (typeof input.name !== "string" || input.name.length === 0) {
      throw invalidBody(
        input.name === undefined
          ? "'Missing required property: name'."
          : `'Expected type string but found type ${jsonType(input.name)}' on property name.`,
      );
    }
    if (input.description !== undefined && typeof input.description !== "string") {
      throw invalidBody(
        `'Expected type string but found type ${jsonType(input.description)}' on property description.`,
      );
    }
    const type = input.type ?? "tenant";
    if (type !== "tenant" && type !== "organization")
      throw invalidBody(`'No enum match for: ${String(type)}' on property type.`);
    if (type === "organization") {
      if (typeof input.owner_id !== "string")
        throw invalidBody("organization roles need owner_id (the organization id).");
      if (!state.organizations.has(input.owner_id)) throw organizationNotFound();
    } else if (input.owner_id !== undefined) {
      throw invalidBody("owner_id is only allowed on organization roles.");
    }
    const owner = type === "organization" ? (input.owner_id as string) : undefined;
    for (const r of state.roles.values()) {
      if (r.name === input.name && r.owner_id === owner)
        throw conflict("A role with the same name already exists.", "role_conflict");
    }
    if (state.roles.size >= MAX_ROLES_PER_TENANT)
      throw invalidBody(`a tenant can have at most ${MAX_ROLES_PER_TENANT} roles.`);
    const role: Role = {
      id: `rol_${randomAlnum(16)}`,
      name: input.name,
      ...(typeof input.description === "string" ? { description: input.description } : {}),
      ...(owner ? { type: "organization" as const, owner_id: owner } : {}),
    };
    state.roles.set(role.id, role);
    return { status: 200, body: roleJson(role) };
  });

  router.add("GET", "/roles/:id", "other", ({ state, params }) => {
    const role = state.roles.get(params.id!);
    if (!role) throw roleNotFound();
    return { status: 200, body: roleJson(role) };
  });

  router.add("DELETE", "/roles/:id", "other", ({ state, params }) => {
    if (!state.roles.delete(params.id!)) throw roleNotFound();
    for (const byUser of state.memberRoles.values()) for (const roles of byUser.values()) roles.delete(params.id!);
    return { status: 204 };
  });
}
