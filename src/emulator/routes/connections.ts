/**
 * GET /api/v2/connections[/{id}]: read-only, so the bridge can turn a connection name into the id
 * that enabled_connections and tickets take. Connections are declared at start or through the
 * control plane, never through the API.
 */
import { connectionNotFound } from "../errors.js";
import { byKey, checkpointReply, isCheckpointRequest, offsetReply, parseCheckpoint, parseOffset } from "../paging.js";
import type { Router } from "../router.js";
import type { Connection } from "../types.js";
import { selectFields } from "../util.js";

function connectionJson(c: Connection): Record<string, unknown> {
  return {
    id: c.id,
    name: c.name,
    display_name: c.name,
    strategy: c.strategy,
    realms: [c.name],
    is_domain_connection: false,
    enabled_clients: [],
    options: {},
  };
}

export function registerConnectionRoutes(router: Router): void {
  router.add("GET", "/connections", "other", ({ state, query }) => {
    const strategies = query.getAll("strategy");
    const name = query.get("name");
    const all = [...state.connections.values()]
      .filter((c) => !name || c.name === name)
      .filter((c) => strategies.length === 0 || strategies.includes(c.strategy))
      .sort(byKey((c) => c.id));
    if (isCheckpointRequest(query)) {
      const page = checkpointReply("connections", all, (c) => c.id, parseCheckpoint(query)) as { connections: Connection[]; next?: string };
      return { status: 200, body: { ...page, connections: page.connections.map((c) => selectFields(connectionJson(c), query)) } };
    }
    return { status: 200, body: offsetReply("connections", all.map((c) => selectFields(connectionJson(c), query)), parseOffset(query)) };
  });

  router.add("GET", "/connections/:id", "other", ({ state, params, query }) => {
    const connection = state.connections.get(params.id!);
    if (!connection) throw connectionNotFound();
    return { status: 200, body: selectFields(connectionJson(connection), query) };
  });
}
