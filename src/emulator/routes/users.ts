/**
 * /api/v2/users, /api/v2/users-by-email (Auth0 Management API v2 reference, "Users").
 */
import { ApiError, invalidQuery, userNotFound } from "../errors.js";
import { parseOffset, offsetReply } from "../paging.js";
import { objectBody, type Router } from "../router.js";
import { matches, parseQuery } from "../search.js";
import type { User } from "../types.js";
import { selectFields } from "../util.js";
import { createUser, patchUser, userJson } from "./user-rules.js";

/**
 * "Auth0 limits the number of users you can return" — 1,000 per query (Auth0 docs,
 * auth0.com/docs/manage-users/user-search/list-and-search-users).
 */
export const SEARCH_RESULT_CAP = 1000;

function sortUsers(users: User[], sort: string | null): User[] {
  if (!sort) return users;
  const m = /^([A-Za-z0-9_.]+):(1|-1)$/.exec(sort);
  if (!m) throw invalidQuery(`'sort' must look like field:1 or field:-1 (got "${sort}").`);
  const [, field, dir] = m as unknown as [string, string, string];
  const get = (u: User): string => {
    let v: unknown = u;
    for (const part of field.split("."))
      v = v && typeof v === "object" ? (v as Record<string, unknown>)[part] : undefined;
    return v === undefined || v === null ? "" : typeof v === "number" ? String(v).padStart(16, "0") : String(v);
  };
  const sign = dir === "1" ? 1 : -1;
  return [...users].sort((a, b) => (get(a) < get(b) ? -sign : get(a) > get(b) ? sign : 0));
}

export function registerUserRoutes(router: Router): void {
  router.add("GET", "/users", "users:read", ({ state, query }) => {
    const engine = query.get("search_engine");
    if (engine && engine !== "v3") throw invalidQuery(`search_engine ${engine} is no longer available; use v3.`);
    const paging = parseOffset(query);
    if ((paging.page + 1) * paging.perPage > SEARCH_RESULT_CAP) {
      throw new ApiError(
        400,
        `You can only page through the first ${SEARCH_RESULT_CAP} records. See https://auth0.com/docs/users/search/v3/view-search-results-by-page#limitation`,
        "invalid_paging",
      );
    }
    // Search reads the (eventually consistent) index, not the primary store.
    let users = state.searchableUsers();
    const q = query.get("q");
    if (q) {
      const node = parseQuery(q);
      users = users.filter((u) => matches(node, u));
    }
    const connection = query.get("connection");
    if (connection) users = users.filter((u) => u.identities.some((i) => i.connection === connection));
    users = sortUsers(users, query.get("sort")).slice(0, SEARCH_RESULT_CAP);
    const shaped = users.map((u) => selectFields(userJson(u), query));
    return { status: 200, body: offsetReply("users", shaped, paging, true) };
  });

  router.add("POST", "/users", "users:write", ({ state, body }) => {
    const user = createUser(state, objectBody(body));
    return { status: 201, body: userJson(user) };
  });

  // Immediately consistent and case-sensitive (Auth0 docs,
  // auth0.com/docs/manage-users/user-search/get-users-by-id-or-email).
  router.add("GET", "/users-by-email", "users:read", ({ state, query }) => {
    const email = query.get("email");
    if (!email) throw invalidQuery("'Missing required property: email'.");
    return { status: 200, body: state.usersByEmail(email).map((u) => selectFields(userJson(u), query)) };
  });

  router.add("GET", "/users/:id", "users:read", ({ state, params, query }) => {
    const user = state.users.get(params.id!);
    if (!user) throw userNotFound();
    return { status: 200, body: selectFields(userJson(user), query) };
  });

  router.add("PATCH", "/users/:id", "users:write", ({ state, params, body }) => {
    const user = state.users.get(params.id!);
    if (!user) throw userNotFound();
    return { status: 200, body: userJson(patchUser(state, user, objectBody(body))) };
  });

  // The SDK declares no 404 for this operation: deleting an absent user answers 204.
  router.add("DELETE", "/users/:id", "users:delete", ({ state, params }) => {
    state.deleteUser(params.id!);
    return { status: 204 };
  });
}
