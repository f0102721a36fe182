/**
 * /api/v2/organizations and their enabled connections (Auth0 docs "Create Organizations"): name rules
 * (lowercase letters, digits, `_`, `-`; 1–50 characters; unique → 409 organization_conflict),
 * metadata ≤25 pairs of strings ≤255, ≤10 enabled connections.
 */
import { ApiError, conflict, connectionNotFound, invalidBody, organizationNotFound } from "../errors.js";
import { byKey, checkpointReply, isCheckpointRequest, offsetReply, parseCheckpoint, parseOffset } from "../paging.js";
import { jsonType, objectBody, type RequestContext, type Router } from "../router.js";
import type { EmulatorState } from "../state.js";
import type { EnabledConnection, Organization } from "../types.js";
import { isPlainObject, randomAlnum } from "../util.js";

export const ORG_NAME_PATTERN = /^[a-z0-9_-]+$/;
export const MAX_ENABLED_CONNECTIONS = 10;
const ORG_PROPS = new Set(["name", "display_name", "branding", "metadata", "enabled_connections"]);
const CONNECTION_FLAGS = ["assign_membership_on_login", "show_as_button", "is_signup_enabled"] as const;

export function findOrganization(state: EmulatorState, id: string): Organization {
  const org = state.organizations.get(id);
  if (!org) throw organizationNotFound();
  return org;
}

function checkName(name: unknown): string {
  if (typeof name !== "string")
    throw invalidBody(`'Expected type string but found type ${jsonType(name)}' on property name.`);
  if (name.length < 1) throw invalidBody("'String is too short (0 chars), minimum 1' on property name.");
  if (name.length > 50) throw invalidBody(`'String is too long (${name.length} chars), maximum 50' on property name.`);
  if (!ORG_NAME_PATTERN.test(name))
    throw invalidBody(`'String does not match pattern ^[a-z0-9_-]+$: ${name}' on property name.`);
  return name;
}

function checkOrgBody(body: Record<string, unknown>, allowed: Set<string>): void {
  const extra = Object.keys(body).filter((k) => !allowed.has(k));
  if (extra.length) throw invalidBody(`'Additional properties not allowed: ${extra.join(",")}'.`);
  if (body.display_name !== undefined) {
    if (typeof body.display_name !== "string")
      throw invalidBody(
        `'Expected type string but found type ${jsonType(body.display_name)}' on property display_name.`,
      );
    if (body.display_name.length < 1 || body.display_name.length > 255)
      throw invalidBody("'display_name must be 1 to 255 characters' on property display_name.");
  }
  if (body.branding !== undefined && !isPlainObject(body.branding))
    throw invalidBody("'Expected type object' on property branding.");
  if (body.metadata !== undefined) {
    if (!isPlainObject(body.metadata))
      throw invalidBody(`'Expected type object but found type ${jsonType(body.metadata)}' on property metadata.`);
    const entries = Object.entries(body.metadata);
    if (entries.length > 25)
      throw invalidBody(`'Too many properties defined (${entries.length}), maximum 25' on property metadata.`);
    for (const [key, value] of entries) {
      if (value !== null && typeof value !== "string")
        throw invalidBody(`'Expected type string but found type ${jsonType(value)}' on property metadata.${key}.`);
      if (typeof value === "string" && value.length > 255)
        throw invalidBody(`'String is too long (${value.length} chars), maximum 255' on property metadata.${key}.`);
    }
  }
}

function enabledConnectionInput(state: EmulatorState, raw: unknown, status404: boolean): EnabledConnection {
  if (!isPlainObject(raw) || typeof raw.connection_id !== "string")
    throw invalidBody("'Missing required property: connection_id'.");
  if (!state.connections.has(raw.connection_id)) {
    if (status404) throw connectionNotFound();
    throw invalidBody(`connection ${raw.connection_id} does not exist.`);
  }
  for (const flag of CONNECTION_FLAGS) {
    if (raw[flag] !== undefined && typeof raw[flag] !== "boolean")
      throw invalidBody(`'Expected type boolean but found type ${jsonType(raw[flag])}' on property ${flag}.`);
  }
  return {
    connection_id: raw.connection_id,
    assign_membership_on_login: raw.assign_membership_on_login === true,
    show_as_button: raw.show_as_button !== false,
    is_signup_enabled: raw.is_signup_enabled === true,
  };
}

function enabledConnectionJson(state: EmulatorState, ec: EnabledConnection): Record<string, unknown> {
  const c = state.connections.get(ec.connection_id);
  return { ...ec, connection: { name: c?.name, strategy: c?.strategy } };
}

function enabledOf(ctx: RequestContext): Map<string, EnabledConnection> {
  findOrganization(ctx.state, ctx.params.id!);
  let map = ctx.state.enabledConnections.get(ctx.params.id!);
  if (!map) ctx.state.enabledConnections.set(ctx.params.id!, (map = new Map()));
  return map;
}

export function registerOrganizationRoutes(router: Router): void {
  router.add("POST", "/organizations", "orgs:write", ({ state, body }) => {
    const input = objectBody(body);
    checkOrgBody(input, ORG_PROPS);
    const name = checkName(input.name);
    const connections = input.enabled_connections === undefined ? [] : input.enabled_connections;
    if (!Array.isArray(connections)) throw invalidBody("'Expected type array' on property enabled_connections.");
    if (connections.length > MAX_ENABLED_CONNECTIONS)
      throw invalidBody(
        `'Array is too long (${connections.length}), maximum ${MAX_ENABLED_CONNECTIONS}' on property enabled_connections.`,
      );
    const enabled = connections.map((c) => enabledConnectionInput(state, c, false));
    if (state.organizationByName(name))
      throw conflict("An organization with the same name already exists.", "organization_conflict");
    const org: Organization = {
      id: `org_${randomAlnum(16)}`,
      name,
      ...(typeof input.display_name === "string" ? { display_name: input.display_name } : {}),
      ...(isPlainObject(input.branding) ? { branding: input.branding } : {}),
      ...(isPlainObject(input.metadata) ? { metadata: input.metadata as Record<string, string | null> } : {}),
    };
    state.organizations.set(org.id, org);
    state.enabledConnections.set(org.id, new Map(enabled.map((e) => [e.connection_id, e])));
    return { status: 201, body: { ...org, ...(enabled.length ? { enabled_connections: enabled } : {}) } };
  });

  router.add("GET", "/organizations", "orgs:read", ({ state, query }) => {
    const orgs = [...state.organizations.values()].sort(byKey((o) => o.name));
    if (isCheckpointRequest(query))
      return { status: 200, body: checkpointReply("organizations", orgs, (o) => o.name, parseCheckpoint(query)) };
    return { status: 200, body: offsetReply("organizations", orgs, parseOffset(query)) };
  });

  router.add("GET", "/organizations/name/:name", "orgs:by-name", ({ state, params }) => {
    const org = state.organizationByName(params.name!);
    if (!org) throw organizationNotFound();
    return { status: 200, body: org };
  });

  router.add("GET", "/organizations/:id", "orgs:read-by-id", ({ state, params }) => ({
    status: 200,
    body: findOrganization(state, params.id!),
  }));

  router.add("PATCH", "/organizations/:id", "orgs:write", ({ state, params, body }) => {
    const org = findOrganization(state, params.id!);
    const input = objectBody(body);
    checkOrgBody(input, new Set(["name", "display_name", "branding", "metadata"]));
    const next: Organization = { ...org };
    if (input.name !== undefined) {
      const name = checkName(input.name);
      const other = state.organizationByName(name);
      if (other && other.id !== org.id)
        throw conflict("An organization with the same name already exists.", "organization_conflict");
      next.name = name;
    }
    if (typeof input.display_name === "string") next.display_name = input.display_name;
    if (isPlainObject(input.branding)) next.branding = input.branding;
    if (isPlainObject(input.metadata)) {
      const merged: Record<string, string | null> = { ...(org.metadata ?? {}) };
      for (const [k, v] of Object.entries(input.metadata)) {
        if (v === null) delete merged[k];
        else merged[k] = v as string;
      }
      if (Object.keys(merged).length > 25)
        throw invalidBody("'Too many properties defined, maximum 25' on property metadata.");
      next.metadata = merged;
    }
    state.organizations.set(org.id, next);
    return { status: 200, body: next };
  });

  router.add("DELETE", "/organizations/:id", "orgs:write", ({ state, params }) => {
    findOrganization(state, params.id!);
    state.deleteOrganization(params.id!);
    return { status: 204 };
  });

  router.add("GET", "/organizations/:id/enabled_connections", "org-connections:read", (ctx) => {
    const all = [...enabledOf(ctx).values()].map((ec) => enabledConnectionJson(ctx.state, ec));
    return { status: 200, body: offsetReply("enabled_connections", all, parseOffset(ctx.query)) };
  });

  router.add("POST", "/organizations/:id/enabled_connections", "org-connections:write", (ctx) => {
    const map = enabledOf(ctx);
    const ec = enabledConnectionInput(ctx.state, objectBody(ctx.body), true);
    if (map.has(ec.connection_id))
      throw conflict("The connection is already enabled for this organization.", "organization_connection_conflict");
    if (map.size >= MAX_ENABLED_CONNECTIONS)
      throw invalidBody(`an organization can have at most ${MAX_ENABLED_CONNECTIONS} enabled connections.`);
    map.set(ec.connection_id, ec);
    return { status: 201, body: enabledConnectionJson(ctx.state, ec) };
  });

  const enabledOne = (ctx: RequestContext): EnabledConnection => {
    const ec = enabledOf(ctx).get(ctx.params.connectionId!);
    if (!ec) throw new ApiError(404, "The connection is not enabled for this organization.", "inexistent_connection");
    return ec;
  };

  router.add("GET", "/organizations/:id/enabled_connections/:connectionId", "org-connections:read", (ctx) => ({
    status: 200,
    body: enabledConnectionJson(ctx.state, enabledOne(ctx)),
  }));

  router.add("PATCH", "/organizations/:id/enabled_connections/:connectionId", "org-connections:write", (ctx) => {
    const ec = enabledOne(ctx);
    const input = objectBody(ctx.body);
    const extra = Object.keys(input).filter((k) => !(CONNECTION_FLAGS as readonly string[]).includes(k));
    if (extra.length) throw invalidBody(`'Additional properties not allowed: ${extra.join(",")}'.`);
    for (const flag of CONNECTION_FLAGS) {
      if (input[flag] === undefined) continue;
      if (typeof input[flag] !== "boolean")
        throw invalidBody(`'Expected type boolean but found type ${jsonType(input[flag])}' on property ${flag}.`);
      ec[flag] = input[flag];
    }
    return { status: 200, body: enabledConnectionJson(ctx.state, ec) };
  });

  router.add("DELETE", "/organizations/:id/enabled_connections/:connectionId", "org-connections:write", (ctx) => {
    enabledOne(ctx);
    enabledOf(ctx).delete(ctx.params.connectionId!);
    return { status: 204 };
  });
}
