/**
 * A simulated login through an organization, in the order Auth0 runs one:
 * 1. the organization must exist and have the connection enabled;
 * 2. the user is found — or, for an enterprise connection, created at first login (database and
 *    passwordless users must already exist);
 * 3. a blocked user is refused with `unauthorized` / "user is blocked" (Auth0 docs "Block and Unblock Users");
 *    as on Auth0 the attempt still counts in logins_count and last_login;
 * 4. a non-member joins when the enabled connection has assign_membership_on_login
 *    (Auto-Membership), else the login is refused (Auth0 docs "Grant Just-In-Time Membership to an
 *    Organization Connection");
 * 5. the post-login hook is called as an Action would be, and its deny is honoured; a hook that
 *    fails or answers non-2xx denies the login ("hook_unavailable", fail closed);
 * 6. on allow, a session and a refresh token are created for the user.
 */
import { createHmac } from "node:crypto";
import { invalidBody } from "./errors.js";
import type { EmulatorState } from "./state.js";
import type { LoginRequest, LoginResult, PostLoginHookConfig, User } from "./types.js";
import { isPlainObject, nowIso, randomAlnum } from "./util.js";
import { rootAttributesMode } from "./connection-options.js";
import { isDatabase, isPasswordless } from "./routes/user-rules.js";
import { rehash, verifyPassword } from "./password-hashes.js";

export const LOGIN_CLIENT_ID = "emulator-login-client";
const SESSION_LIFETIME_MS = 7 * 24 * 3600 * 1000;
const DEFAULT_HOOK_TIMEOUT_MS = 5000;

interface HookAnswer {
  decision: "allow" | "deny";
  reason?: string;
  roles?: string[];
  app_metadata?: Record<string, unknown>;
}

export function parseLoginRequest(body: unknown): LoginRequest {
  if (!isPlainObject(body)) throw invalidBody("login needs a JSON object {connection, email, organization}.");
  for (const key of ["connection", "email", "organization"]) {
    if (typeof body[key] !== "string" || body[key] === "") throw invalidBody(`'Missing required property: ${key}'.`);
  }
  for (const key of ["sub", "given_name", "family_name", "name", "password"]) {
    if (body[key] !== undefined && typeof body[key] !== "string")
      throw invalidBody(`'Expected type string' on property ${key}.`);
  }
  return body as unknown as LoginRequest;
}

/** `t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<raw body>")>` */
export function signHookBody(secret: string, rawBody: string, unixSeconds = Math.floor(Date.now() / 1000)): string {
  const mac = createHmac("sha256", secret).update(`${unixSeconds}.${rawBody}`).digest("hex");
  return `t=${unixSeconds},v1=${mac}`;
}

async function callHook(hook: PostLoginHookConfig, payload: unknown): Promise<HookAnswer | undefined> {
  const raw = JSON.stringify(payload);
  try {
    const response = await fetch(hook.url, {
      method: "POST",
      headers: { "content-type": "application/json", "x-scim-bridge-signature": signHookBody(hook.secret, raw) },
      body: raw,
      signal: AbortSignal.timeout(hook.timeoutMs ?? DEFAULT_HOOK_TIMEOUT_MS),
    });
    if (!response.ok) return undefined;
    const answer: unknown = await response.json();
    if (!isPlainObject(answer) || (answer.decision !== "allow" && answer.decision !== "deny")) return undefined;
    if (
      answer.roles !== undefined &&
      (!Array.isArray(answer.roles) || !answer.roles.every((r) => typeof r === "string"))
    )
      return undefined;
    if (answer.app_metadata !== undefined && !isPlainObject(answer.app_metadata)) return undefined;
    return answer as unknown as HookAnswer;
  } catch {
    return undefined;
  }
}

function findOrCreateUser(
  state: EmulatorState,
  req: LoginRequest,
  connectionName: string,
  strategy: string,
): { user?: User; created: boolean } {
  const inConnection = (u: User) => u.identities.some((i) => i.connection === connectionName);
  const connection = state.connectionByName(connectionName)!;
  if (isDatabase(connection) || isPasswordless(connection)) {
    const email = isDatabase(connection) ? req.email.toLowerCase() : req.email;
    return { user: state.usersByEmail(email).find(inConnection), created: false };
  }
  // Enterprise: the identity is keyed by the IdP subject (default: the email).
  const sub = req.sub ?? req.email;
  const identityId = `${connectionName}|${sub}`;
  const existing = [...state.users.values()].find((u) =>
    u.identities.some((i) => i.connection === connectionName && i.user_id === identityId),
  );
  const now = nowIso();
  const mode = rootAttributesMode(connection);
  if (existing) {
    // Root attributes of upstream-IdP users are overwritten at each login (Auth0 docs "User Profile Root Attributes"),
    // unless the connection syncs them on first login only or never ("Configure Connection Sync").
    if (mode !== "on_each_login") return { user: existing, created: false };
    const next = {
      ...existing,
      email: req.email,
      ...(req.given_name ? { given_name: req.given_name } : {}),
      ...(req.family_name ? { family_name: req.family_name } : {}),
      ...(req.name ? { name: req.name } : {}),
      updated_at: now,
    };
    state.saveUser(next);
    return { user: next, created: false };
  }
  // never_on_login "configures the connection not to create the user" (ConnectionSetUserRootAttributesEnum).
  if (mode === "never_on_login") return { created: false };
  const user: User = {
    user_id: `${strategy}|${identityId}`,
    email: req.email,
    email_verified: true,
    ...(req.given_name ? { given_name: req.given_name } : {}),
    ...(req.family_name ? { family_name: req.family_name } : {}),
    name: req.name ?? req.email,
    nickname: req.email.split("@")[0]!,
    picture: "https://cdn.auth0.com/avatars/default.png",
    app_metadata: {},
    user_metadata: {},
    identities: [{ connection: connectionName, provider: strategy, user_id: identityId, isSocial: false }],
    created_at: now,
    updated_at: now,
    logins_count: 0,
  };
  state.saveUser(user);
  return { user, created: true };
}

export async function simulateLogin(
  state: EmulatorState,
  hook: PostLoginHookConfig | undefined,
  req: LoginRequest,
): Promise<LoginResult> {
  const connection = state.connectionByName(req.connection);
  if (!connection)
    return {
      decision: "deny",
      error: "invalid_request",
      reason: `connection ${req.connection} does not exist`,
      created: false,
    };
  const org = state.organizations.get(req.organization) ?? state.organizationByName(req.organization);
  if (!org)
    return { decision: "deny", error: "invalid_request", reason: "parameter organization is invalid", created: false };
  const enabled = state.enabledConnections.get(org.id)?.get(connection.id);
  if (!enabled)
    return {
      decision: "deny",
      error: "invalid_request",
      reason: "the connection is not enabled for the organization",
      created: false,
    };

  const { user: found, created } = findOrCreateUser(state, req, connection.name, connection.strategy);
  if (!found) return { decision: "deny", error: "access_denied", reason: "Wrong email or password.", created: false };
  if (req.password !== undefined && isDatabase(connection)) {
    // The password is checked against the stored hash (imported or set through the API); an
    // imported custom hash that matched is replaced by a bcrypt hash of the same password.
    const stored = state.passwords.get(found.user_id);
    if (!(await verifyPassword(stored, req.password)))
      return { decision: "deny", error: "access_denied", reason: "Wrong email or password.", created: false };
    if (stored?.kind === "custom") state.passwords.set(found.user_id, await rehash(req.password));
  }
  const now = nowIso();
  const user: User = { ...found, last_login: now, logins_count: found.logins_count + 1 };
  state.saveUser(user);
  if (user.blocked) return { decision: "deny", error: "unauthorized", reason: "user is blocked", created, user };

  const members = state.members.get(org.id) ?? new Set<string>();
  if (!members.has(user.user_id)) {
    if (!enabled.assign_membership_on_login) {
      return {
        decision: "deny",
        error: "access_denied",
        reason: "user is not a member of the organization",
        created,
        user,
      };
    }
    members.add(user.user_id);
    state.members.set(org.id, members);
  }

  const memberRoleNames = state.memberRolesOf(org.id, user.user_id).flatMap((id) => state.roles.get(id)?.name ?? []);
  let answer: HookAnswer = { decision: "allow" };
  if (hook) {
    const payload = {
      user: {
        user_id: user.user_id,
        email: user.email,
        email_verified: user.email_verified,
        blocked: user.blocked ?? false,
        app_metadata: user.app_metadata,
        identities: user.identities.map((i) => ({
          connection: i.connection,
          provider: i.provider,
          user_id: i.user_id,
          isSocial: i.isSocial,
        })),
      },
      organization: { id: org.id, name: org.name },
      connection: { name: connection.name, strategy: connection.strategy },
      transaction: { id: `tx_${randomAlnum(16)}` },
    };
    const hookAnswer = await callHook(hook, payload);
    if (!hookAnswer) return { decision: "deny", error: "access_denied", reason: "hook_unavailable", created, user };
    answer = hookAnswer;
  }
  if (answer.decision === "deny") {
    return {
      decision: "deny",
      error: "access_denied",
      reason: answer.reason ?? "denied by the post-login hook",
      created,
      user,
    };
  }

  const roles = answer.roles ?? memberRoleNames;
  const appMetadata = { ...user.app_metadata, ...(answer.app_metadata ?? {}) };
  const sessionId = randomAlnum(32);
  state.sessions.set(sessionId, {
    id: sessionId,
    user_id: user.user_id,
    organization_id: org.id,
    connection: connection.name,
    created_at: now,
    updated_at: now,
    authenticated_at: now,
    expires_at: new Date(Date.now() + SESSION_LIFETIME_MS).toISOString(),
    claims: { roles, app_metadata: appMetadata },
  });
  const refreshTokenId = randomAlnum(24);
  state.refreshTokens.set(refreshTokenId, {
    id: refreshTokenId,
    user_id: user.user_id,
    session_id: sessionId,
    client_id: LOGIN_CLIENT_ID,
    created_at: now,
  });
  return {
    decision: "allow",
    created,
    user,
    organization: { id: org.id, name: org.name },
    session_id: sessionId,
    refresh_token_id: refreshTokenId,
    roles,
    app_metadata: appMetadata,
  };
}
