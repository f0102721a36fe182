/**
 * POST /oauth/token (client credentials) and the bearer check on /api/v2 (Auth0 Authentication API
 * "Client Credentials Flow"; node-auth0 7.1.0). The SDK posts
 * `grant_type=client_credentials&client_id&client_secret&audience` form-encoded and needs `{access_token, expires_in}`.
 */
import { createHmac, randomBytes } from "node:crypto";
import { ApiError, unauthorized } from "../errors.js";
import type { Reply } from "../router.js";
import type { EmulatorState } from "../state.js";
import type { EmulatorOptions } from "../types.js";
import { isPlainObject, randomAlnum } from "../util.js";

const DEFAULT_TOKEN_LIFETIME = 86400;
/** Signs the emulator's access tokens; they are only ever checked by the emulator itself. */
const TOKEN_KEY = randomBytes(32);

const b64url = (value: unknown): string => Buffer.from(JSON.stringify(value)).toString("base64url");

/**
 * A JWT shaped like Auth0's Management API access tokens ("Access Token Profiles": iss, sub
 * `<client_id>@clients`, aud, iat, exp, scope, gty, azp), so that a client can read its granted
 * scopes from the token as it would on a real tenant. Signed HS256 with a per-process key (Auth0
 * signs RS256); the emulator looks tokens up rather than verifying them.
 */
function accessToken(clientId: string, audience: string, scope: string, lifetime: number): string {
  const iat = Math.floor(Date.now() / 1000);
  const header = b64url({ alg: "HS256", typ: "JWT" });
  const payload = b64url({
    iss: `${new URL(audience).origin}/`,
    sub: `${clientId}@clients`,
    aud: audience,
    iat,
    exp: iat + lifetime,
    scope,
    gty: "client-credentials",
    azp: clientId,
    jti: randomAlnum(16),
  });
  const signature = createHmac("sha256", TOKEN_KEY).update(`${header}.${payload}`).digest("base64url");
  return `${header}.${payload}.${signature}`;
}

/** Parse a token request body, form-encoded (the SDK) or JSON (curl users). */
export function parseTokenBody(raw: string, contentType: string): Record<string, string> {
  if (contentType.includes("application/json")) {
    try {
      const parsed: unknown = JSON.parse(raw || "{}");
      if (!isPlainObject(parsed)) return {};
      return Object.fromEntries(Object.entries(parsed).filter(([, v]) => typeof v === "string")) as Record<
        string,
        string
      >;
    } catch {
      return {};
    }
  }
  return Object.fromEntries(new URLSearchParams(raw));
}

/** Auth0's Authentication API answers OAuth errors as {error, error_description}. */
const oauthError = (status: number, error: string, description: string): Reply => ({
  status,
  body: { error, error_description: description },
});

/** `grant`: the scopes of the client grant, answered as `scope` (space-separated) as Auth0 does. */
export function issueToken(
  state: EmulatorState,
  options: EmulatorOptions,
  params: Record<string, string>,
  grant: readonly string[],
  codeGrant?: (params: Record<string, string>) => Reply,
): Reply {
  if (!params.grant_type) return oauthError(400, "invalid_request", "Missing required parameter: grant_type");
  // The authorization code grant of a regular web application (the console's sign-in): see ../oidc.ts.
  if (params.grant_type === "authorization_code" && codeGrant) return codeGrant(params);
  if (params.grant_type !== "client_credentials") {
    return oauthError(403, "unauthorized_client", `Grant type '${params.grant_type}' not allowed for the client.`);
  }
  if (!params.client_id) return oauthError(401, "access_denied", "Unauthorized");
  const fixed = options.clientId !== undefined;
  if (fixed && (params.client_id !== options.clientId || params.client_secret !== options.clientSecret)) {
    return oauthError(401, "access_denied", "Unauthorized");
  }
  if (!params.audience) {
    return oauthError(
      403,
      "access_denied",
      "No audience parameter was provided, and no default audience has been configured",
    );
  }
  const expected = options.domain ? `https://${options.domain}/api/v2/` : undefined;
  if (expected ? params.audience !== expected : !/^https:\/\/[^/]+\/api\/v2\/$/.test(params.audience)) {
    return oauthError(403, "access_denied", `Service not enabled within domain: ${params.audience}`);
  }
  const lifetime = options.tokenLifetimeSeconds ?? DEFAULT_TOKEN_LIFETIME;
  const token = accessToken(params.client_id, params.audience, grant.join(" "), lifetime);
  state.tokens.set(token, { clientId: params.client_id, expiresAt: Date.now() + lifetime * 1000 });
  return {
    status: 200,
    body: { access_token: token, token_type: "Bearer", expires_in: lifetime, scope: grant.join(" ") },
  };
}

/** The client id behind `Authorization: Bearer …`, or 401 as Auth0 answers it (no errorCode). */
export function authenticate(state: EmulatorState, authorization: string | undefined): string {
  if (!authorization) throw unauthorized("Missing authentication");
  const m = /^Bearer\s+(\S+)$/i.exec(authorization);
  if (!m) throw new ApiError(401, "Bad HTTP authentication header format");
  const issued = state.tokens.get(m[1]!);
  if (!issued) throw unauthorized("Invalid token.");
  if (issued.expiresAt <= Date.now()) {
    state.tokens.delete(m[1]!);
    throw unauthorized("Expired token received for JSON Web Token validation");
  }
  return issued.clientId;
}
