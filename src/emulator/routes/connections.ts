/**
 * GET /api/v2/connections[/{id}] (with each connection's `options`) and PATCH
 * /api/v2/connections/{id}. Connections are created at start or through the control plane, never
 * through the API. PATCH replaces the whole `options` object, as Auth0 does (node-auth0 reference
 * for `connections.update`: "the entire `options` object is overridden … If any options are
 * unspecified, the default will be used").
 */
import { validateOptions } from "../connection-options.js";
import { connectionNotFound, invalidBody } from "../errors.js";
import { byKey, checkpointReply, isCheckpointRequest, offsetReply, parseCheckpoint, parseOffset } from "../paging.js";
import { jsonType, objectBody, type Router } from "../router.js";
import type { Connection } from "../types.js";
import { selectFields } from "../util.js";

/** What PATCH /connections/{id} takes (node-auth0 `UpdateConnectionRequestContent`); name and strategy are fixed. */
const PATCH_PROPS = new Set([
  "display_name",
  "options",
  "enabled_clients",
  "is_domain_connection",
  "show_as_button",
  "realms",
  "metadata",
  "authentication",
  "connected_accounts",
]);

function connectionJson(c: Connection): Record<string, unknown> {
  return {
    id: c.id,
    name: c.name,
    display_name: c.display_name ?? c.name,
    strategy: c.strategy,
    realms: [c.name],
    is_domain_connection: false,
    enabled_clients: [],
    options: structuredClone(c.options),
  };
}

export function registerConnectionRoutes(router: Router): void {
  router.add("GET", "/connections", "connections:read", ({ state, query }) => {
    const strategies = query.getAll("strategy");
    const name = query.get("name");
    const all = [...state.connections.values()]
      .filter((c) => !name || c.name === name)
      .filter((c) => strategies.length === 0 || strategies.includes(c.strategy))
      .sort(byKey((c) => c.id));
    if (isCheckpointRequest(query)) {
      const page = checkpointReply("connections", all, (c) => c.id, parseCheckpoint(query)) as {
        connections: Connection[];
        next?: string;
      };
      return {
        status: 200,
        body: { ...page, connections: page.connections.map((c) => selectFields(connectionJson(c), query)) },
      };
    }
    return {
      status: 200,
      body: offsetReply(
        "connections",
        all.map((c) => selectFields(connectionJson(c), query)),
        parseOffset(query),
      ),
    };
  });

  router.add("GET", "/connections/:id", "connections:read", ({ state, params, query }) => {
    const connection = state.connections.get(params.id!);
    if (!connection) throw connectionNotFound();
    return { status: 200, body: selectFields(connectionJson(connection), query) };
  });

  router.add("PATCH", "/connections/:id", "other", ({ state, params, body }) => {
    const connection = state.connections.get(params.id!);
    if (!connection) throw connectionNotFound();
    const input = objectBody(body);
    const extra = Object.keys(input).filter((k) => !PATCH_PROPS.has(k));
    if (extra.length) throw invalidBody(`'Additional properties not allowed: ${extra.join(",")}'.`);
    if (input.display_name !== undefined && typeof input.display_name !== "string") {
      throw invalidBody(
        `'Expected type string but found type ${jsonType(input.display_name)}' on property display_name.`,
      );
    }
    for (const key of ["is_domain_connection", "show_as_button"]) {
      if (input[key] !== undefined && typeof input[key] !== "boolean")
        throw invalidBody(`'Expected type boolean but found type ${jsonType(input[key])}' on property ${key}.`);
    }
    for (const key of ["realms", "enabled_clients"]) {
      if (input[key] !== undefined && input[key] !== null && !Array.isArray(input[key]))
        throw invalidBody(`'Expected type array but found type ${jsonType(input[key])}' on property ${key}.`);
    }
    // Validate everything before writing anything: a refused PATCH leaves the connection as it was.
    const options =
      input.options === undefined ? undefined : input.options === null ? {} : validateOptions(input.options);
    if (options !== undefined) connection.options = options;
    // "If display_name is not included in the request, the field will be overwritten with the name value."
    if (typeof input.display_name === "string") connection.display_name = input.display_name;
    else delete connection.display_name;
    return { status: 200, body: connectionJson(connection) };
  });
}
