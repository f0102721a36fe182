/**
 * Sessions, refresh tokens, revoke-access and password-change tickets (Auth0 docs "Manage User
 * Sessions with Auth0 Management API", "Manage Refresh Tokens with Auth0 Management API").
 * Session and refresh-token management "is available to customers on Enterprise plans": on the
 * free and essentials profiles these endpoints answer 403. Auth0 applies the deletes
 * asynchronously and answers "request accepted" (202); the emulator applies them at once.
 */
import { ApiError, invalidBody, notOnPlan, organizationNotFound, userNotFound } from "../errors.js";
import { byKey, checkpointReply, parseCheckpoint } from "../paging.js";
import { jsonType, objectBody, type RequestContext, type Router } from "../router.js";
import type { RefreshToken, Session, User } from "../types.js";
import { randomAlnum } from "../util.js";
import { isDatabase } from "./user-rules.js";

const DEFAULT_TICKET_TTL_SEC = 432000; // 5 days

function enterpriseOnly(ctx: RequestContext): void {
  if (ctx.env.plan !== "enterprise") throw notOnPlan();
}

function requireUser(ctx: RequestContext): User {
  const user = ctx.state.users.get(ctx.params.id!);
  if (!user) throw userNotFound();
  return user;
}

export function sessionJson(s: Session): Record<string, unknown> {
  return {
    id: s.id,
    user_id: s.user_id,
    created_at: s.created_at,
    updated_at: s.updated_at,
    authenticated_at: s.authenticated_at,
    last_interacted_at: s.updated_at,
    expires_at: s.expires_at,
    clients: [],
    authentication: { methods: [{ name: "federated", timestamp: s.authenticated_at }] },
  };
}

function refreshTokenJson(t: RefreshToken): Record<string, unknown> {
  return {
    id: t.id,
    user_id: t.user_id,
    created_at: t.created_at,
    client_id: t.client_id,
    session_id: t.session_id,
    rotating: false,
    resource_servers: [],
  };
}

export function registerAccessRoutes(router: Router): void {
  router.add("GET", "/users/:id/sessions", "other", (ctx) => {
    enterpriseOnly(ctx);
    const user = requireUser(ctx);
    const sessions = ctx.state
      .sessionsOf(user.user_id)
      .map(sessionJson)
      .sort(byKey((s) => String(s.id)));
    return {
      status: 200,
      body: checkpointReply("sessions", sessions, (s) => String(s.id), parseCheckpoint(ctx.query)),
    };
  });

  router.add("DELETE", "/users/:id/sessions", "other", (ctx) => {
    enterpriseOnly(ctx);
    const user = requireUser(ctx);
    ctx.state.revokeSessions(user.user_id, "DELETE /users/{id}/sessions");
    return { status: 202 };
  });

  router.add("GET", "/users/:id/refresh-tokens", "other", (ctx) => {
    enterpriseOnly(ctx);
    const user = requireUser(ctx);
    const tokens = ctx.state
      .refreshTokensOf(user.user_id)
      .map(refreshTokenJson)
      .sort(byKey((t) => String(t.id)));
    return { status: 200, body: checkpointReply("tokens", tokens, (t) => String(t.id), parseCheckpoint(ctx.query)) };
  });

  router.add("DELETE", "/users/:id/refresh-tokens", "other", (ctx) => {
    enterpriseOnly(ctx);
    const user = requireUser(ctx);
    ctx.state.revokeRefreshTokens(user.user_id, "DELETE /users/{id}/refresh-tokens");
    return { status: 202 };
  });

  // Whether revoke-access is Enterprise-only is not stated in Auth0's docs; the emulator treats it
  // like the session endpoints it stands for.
  router.add("POST", "/users/:id/revoke-access", "other", (ctx) => {
    enterpriseOnly(ctx);
    const user = requireUser(ctx);
    const input = ctx.body === undefined ? {} : objectBody(ctx.body);
    const extra = Object.keys(input).filter((k) => k !== "session_id" && k !== "preserve_refresh_tokens");
    if (extra.length) throw invalidBody(`'Additional properties not allowed: ${extra.join(",")}'.`);
    if (input.session_id !== undefined && typeof input.session_id !== "string")
      throw invalidBody(`'Expected type string but found type ${jsonType(input.session_id)}' on property session_id.`);
    if (input.preserve_refresh_tokens !== undefined && typeof input.preserve_refresh_tokens !== "boolean")
      throw invalidBody(
        `'Expected type boolean but found type ${jsonType(input.preserve_refresh_tokens)}' on property preserve_refresh_tokens.`,
      );
    const sessionId = input.session_id as string | undefined;
    const via = "POST /users/{id}/revoke-access";
    ctx.state.revokeSessions(user.user_id, via, sessionId);
    if (input.preserve_refresh_tokens !== true) ctx.state.revokeRefreshTokens(user.user_id, via, sessionId);
    return { status: 202 };
  });

  router.add("GET", "/sessions/:id", "other", (ctx) => {
    enterpriseOnly(ctx);
    const session = ctx.state.sessions.get(ctx.params.id!);
    if (!session) throw new ApiError(404, "The session does not exist.", "inexistent_session");
    return { status: 200, body: sessionJson(session) };
  });

  router.add("DELETE", "/sessions/:id", "other", (ctx) => {
    enterpriseOnly(ctx);
    const session = ctx.state.sessions.get(ctx.params.id!);
    if (session) ctx.state.revokeSessions(session.user_id, "DELETE /sessions/{id}", session.id);
    return { status: 202 };
  });

  // "/revoke = session + its refresh tokens"
  router.add("POST", "/sessions/:id/revoke", "other", (ctx) => {
    enterpriseOnly(ctx);
    const session = ctx.state.sessions.get(ctx.params.id!);
    if (!session) throw new ApiError(404, "The session does not exist.", "inexistent_session");
    ctx.state.revokeSessions(session.user_id, "POST /sessions/{id}/revoke", session.id);
    ctx.state.revokeRefreshTokens(session.user_id, "POST /sessions/{id}/revoke", session.id);
    return { status: 202 };
  });

  router.add("POST", "/tickets/password-change", "other", (ctx) => {
    const input = objectBody(ctx.body);
    const allowed = new Set([
      "user_id",
      "connection_id",
      "email",
      "client_id",
      "organization_id",
      "result_url",
      "ttl_sec",
      "mark_email_as_verified",
      "includeEmailInRedirect",
    ]);
    const extra = Object.keys(input).filter((k) => !allowed.has(k));
    if (extra.length) throw invalidBody(`'Additional properties not allowed: ${extra.join(",")}'.`);
    for (const key of ["user_id", "connection_id", "email", "client_id", "organization_id", "result_url"]) {
      if (input[key] !== undefined && typeof input[key] !== "string")
        throw invalidBody(`'Expected type string but found type ${jsonType(input[key])}' on property ${key}.`);
    }
    const ttl = input.ttl_sec ?? 0;
    if (typeof ttl !== "number" || !Number.isInteger(ttl) || ttl < 0)
      throw invalidBody("'ttl_sec must be a non-negative integer' on property ttl_sec.");
    let user: User | undefined;
    if (typeof input.user_id === "string") {
      if (input.email !== undefined) throw invalidBody("user_id and email cannot be used together.");
      user = ctx.state.users.get(input.user_id);
    } else if (typeof input.email === "string") {
      if (typeof input.connection_id !== "string") throw invalidBody("connection_id is required together with email.");
      const connection = ctx.state.connections.get(input.connection_id);
      if (!connection) throw new ApiError(404, "The connection does not exist.", "inexistent_connection");
      user = ctx.state
        .usersByEmail(input.email)
        .find((u) => u.identities.some((i) => i.connection === connection.name));
    } else {
      throw invalidBody("one of user_id or (connection_id and email) is required.");
    }
    if (!user) throw userNotFound();
    const connection = ctx.state.connectionByName(user.identities[0]?.connection ?? "");
    if (!connection || !isDatabase(connection)) {
      throw new ApiError(
        400,
        "Password change tickets are only for users of database connections.",
        "operation_not_supported",
      );
    }
    if (typeof input.organization_id === "string" && !ctx.state.organizations.has(input.organization_id))
      throw organizationNotFound();
    const created = Date.now();
    const ticket = `${ctx.env.baseUrl}/lo/reset?ticket=${randomAlnum(32)}#`;
    ctx.state.tickets.push({
      ticket,
      user_id: user.user_id,
      ...(typeof input.organization_id === "string" ? { organization_id: input.organization_id } : {}),
      ...(typeof input.result_url === "string" ? { result_url: input.result_url } : {}),
      mark_email_as_verified: input.mark_email_as_verified === true,
      created_at: new Date(created).toISOString(),
      expires_at: new Date(created + (ttl || DEFAULT_TICKET_TTL_SEC) * 1000).toISOString(),
    });
    return { status: 201, body: { ticket } };
  });
}
