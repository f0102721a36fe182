/**
 * Public types of the Auth0 Management API emulator. The emulator imports nothing from the rest of
 * src/ (docs/architecture.md): these types are its whole contract with the bridge's tests and sandbox mode.
 */

/** Auth0 plan profile. "essentials" stands for Essentials, Professional and B2B (same limits). */
export type Plan = "free" | "essentials" | "enterprise";

export const PLANS: readonly Plan[] = ["free", "essentials", "enterprise"];

/** Auth0's `options.set_user_root_attributes` ("Configure Connection Sync with Auth0"). */
export type SetUserRootAttributes = "on_each_login" | "on_first_login" | "never_on_login";

/** Auth0's `options.passwordPolicy` ("Password Strength in Auth0 Database Connections"). */
export type PasswordPolicy = "none" | "low" | "fair" | "good" | "excellent";

/**
 * The part of a connection's `options` object the emulator understands (node-auth0
 * `ConnectionOptionsAuth0`, `UpdateConnectionOptions`). Other keys are kept as sent: Auth0's
 * schema "accepts any additional properties".
 */
export interface ConnectionOptions {
  /** Enterprise and social connections; default `on_each_login`. Does not apply to database connections. */
  set_user_root_attributes?: SetUserRootAttributes;
  /** Database connections; `null`/absent means `none`. */
  passwordPolicy?: PasswordPolicy | null;
  /** Overrides the policy's minimum length (1–72 bytes: "Password Strength in Auth0 Database Connections"). */
  password_complexity_options?: { min_length?: number } | null;
  /** Refuses Auth0's 10,000 common passwords and `dictionary` (case-insensitive; at most 200 entries). */
  password_dictionary?: { enable: boolean; dictionary?: string[] } | null;
  /** Refuses passwords containing name, username, nickname, user_metadata.name/first/last or the email's local part. */
  password_no_personal_info?: { enable: boolean } | null;
  /** Refuses the last `size` passwords (1–24). */
  password_history?: { enable: boolean; size?: number } | null;
  /** Users of the connection have (and must be given) a `username`. */
  requires_username?: boolean;
  /** Username length bounds when `requires_username` (Auth0's default 1–15). */
  validation?: { username?: { min: number; max: number } | null } | null;
  [key: string]: unknown;
}

/** A connection to declare at start (or through POST /__emulator/connections). */
export interface ConnectionSpec {
  name: string;
  /** "auth0" (database), "email"/"sms" (passwordless), or an enterprise strategy: okta, waad, samlp, oidc, … */
  strategy: string;
  /** Fixed id; default `con_` + random. */
  id?: string;
  /** The connection's `options`; defaults as a new Auth0 connection of that strategy has them. */
  options?: ConnectionOptions;
}

export interface PostLoginHookConfig {
  url: string;
  /** HMAC-SHA256 key for the `x-scim-bridge-signature` header. */
  secret: string;
  /** Abort the hook call after this long (default 5000 ms); a timeout denies the login. */
  timeoutMs?: number;
}

export interface EmulatorOptions {
  /** Default 0 (an ephemeral port). */
  port?: number;
  /** Default "127.0.0.1". */
  host?: string;
  /** Default "enterprise". */
  plan?: Plan;
  /** Fixed client credentials for POST /oauth/token. Default: any id and secret are accepted. */
  clientId?: string;
  clientSecret?: string;
  /** When set, POST /oauth/token insists on audience `https://{domain}/api/v2/`. */
  domain?: string;
  /** Connections besides `Username-Password-Authentication`, which every new tenant has. */
  connections?: ConnectionSpec[];
  /** Called on each simulated login, as a Post-Login Action would be. */
  postLoginHook?: PostLoginHookConfig;
  /** `GET /users` sees writes only after this delay (Auth0's search index is eventually consistent). Default 0. */
  searchConsistencyDelayMs?: number;
  /** `false` turns rate limiting off (headers are still sent). Default on. */
  rateLimits?: boolean;
  /** Multiplies every bucket's refill rate (time compression for benchmarks). Default 1. */
  rateScale?: number;
  /**
   * Called with every API call once answered. The call log keeps the last 10,000; a benchmark that
   * counts a longer run (or watches for one call) listens here instead of copying the log.
   */
  onCall?: (entry: CallLogEntry) => void;
  /** Lifetime of issued access tokens; default 86400 s as Auth0's default for the Management API. */
  tokenLifetimeSeconds?: number;
  /** Seed of the PRNG behind fault error rates (default 1), so a test run is reproducible. */
  seed?: number;
  /**
   * The scopes granted to the client (its client grant for the Management API). Default: every
   * scope the emulator knows (ALL_SCOPES). A route whose scope is missing answers 403
   * insufficient_scope.
   */
  scopes?: string[];
  /**
   * Delay before asynchronous effects show: organization member removal ("takes approximately
   * 5–10 seconds" on Auth0) and session / refresh-token deletion. Default 0 (at once).
   */
  asyncDelayMs?: number;
  /** Regular web applications that sign users in through /authorize (OIDC; see oidc.ts). */
  oidcClients?: OidcClientSpec[];
  /** Namespace of the roles claim a post-login Action adds to ID tokens: `${ns}/roles`. Default "https://scim-bridge.dev". */
  roleClaimNamespace?: string;
  /** How long a user import job runs: baseMs + perUserMs per user (default 20 ms + 0.05 ms). */
  importJobTiming?: { baseMs?: number; perUserMs?: number };
}

/** An Auth0 application of type "Regular Web Application" (authorization code flow). */
export interface OidcClientSpec {
  clientId: string;
  clientSecret: string;
  /** Allowed Callback URLs (matched exactly). */
  callbacks: string[];
  /** Allowed Logout URLs (matched exactly). */
  logoutUrls?: string[];
}

export interface CallLogEntry {
  method: string;
  /** Path without the query string, as received (still percent-encoded). */
  path: string;
  query: string;
  status: number;
  /** ISO time the request arrived. */
  time: string;
  durationMs: number;
  /** Rate-limit bucket charged, when one was. */
  bucket?: string;
  /** The x-ratelimit-* headers sent back (limit, remaining, reset in epoch seconds). */
  rateLimit?: { limit: number; remaining: number; reset: number };
  /** Parsed JSON (or form) body; `client_secret` is redacted. */
  body?: unknown;
}

/** An injected error for requests whose path matches `path` (glob: `*` matches anything). */
export interface ErrorFault {
  path: string;
  method?: string;
  status: number;
  /** Probability 0..1 (default 1). */
  rate?: number;
  /** Inject at most this many times. */
  count?: number;
  errorCode?: string;
  message?: string;
}

/** What callers send to setFaults (times relative to now). */
export interface FaultsInput {
  errors?: ErrorFault[];
  latency?: { ms: number; path?: string; method?: string };
  /** The whole tenant (API and /oauth/token) answers `status` (default 503) during the window. */
  outage?: { startInMs?: number; durationMs: number; status?: number };
  /** Every matching API request answers 429, with x-ratelimit-reset at the end of the storm. */
  rateLimitStorm?: { startInMs?: number; durationMs: number; path?: string };
}

export interface Identity {
  connection: string;
  provider: string;
  user_id: string;
  isSocial: boolean;
}

export interface User {
  user_id: string;
  email?: string;
  email_verified: boolean;
  username?: string;
  phone_number?: string;
  phone_verified?: boolean;
  given_name?: string;
  family_name?: string;
  name?: string;
  nickname?: string;
  picture?: string;
  blocked?: boolean;
  app_metadata: Record<string, unknown>;
  user_metadata: Record<string, unknown>;
  identities: Identity[];
  created_at: string;
  updated_at: string;
  last_login?: string;
  logins_count: number;
}

export interface Connection {
  id: string;
  name: string;
  strategy: string;
  display_name?: string;
  options: ConnectionOptions;
}

export interface Organization {
  id: string;
  name: string;
  display_name?: string;
  branding?: Record<string, unknown>;
  metadata?: Record<string, string | null>;
}

export interface EnabledConnection {
  connection_id: string;
  assign_membership_on_login: boolean;
  show_as_button: boolean;
  is_signup_enabled: boolean;
}

export interface Role {
  id: string;
  name: string;
  description?: string;
  type?: "tenant" | "organization";
  owner_id?: string;
}

export interface Session {
  id: string;
  user_id: string;
  organization_id?: string;
  connection: string;
  created_at: string;
  updated_at: string;
  authenticated_at: string;
  expires_at: string;
  /** What the post-login hook (or membership) put in the login result. */
  claims: { roles: string[]; app_metadata: Record<string, unknown> };
}

export interface RefreshToken {
  id: string;
  user_id: string;
  session_id: string;
  client_id: string;
  created_at: string;
}

export interface Revocation {
  kind: "session" | "refresh_token";
  id: string;
  user_id: string;
  at: string;
  /** The API call that revoked it, e.g. "POST /users/{id}/revoke-access". */
  via: string;
}

export interface Ticket {
  ticket: string;
  user_id: string;
  organization_id?: string;
  result_url?: string;
  mark_email_as_verified: boolean;
  created_at: string;
  expires_at: string;
}

export interface LoginRequest {
  connection: string;
  email: string;
  /** Organization id (org_…) or name. */
  organization: string;
  /** Subject at the IdP; default: the email. Enterprise users only. */
  sub?: string;
  /** Database connections: checked against the user's password or imported hash when given. */
  password?: string;
  given_name?: string;
  family_name?: string;
  name?: string;
}

export type LoginResult =
  | {
      decision: "allow";
      created: boolean;
      user: User;
      organization: { id: string; name: string };
      session_id: string;
      refresh_token_id: string;
      roles: string[];
      app_metadata: Record<string, unknown>;
    }
  | {
      decision: "deny";
      /** Auth0's /authorize error (`unauthorized` for a blocked user, else `access_denied`). */
      error: "unauthorized" | "access_denied" | "invalid_request";
      reason: string;
      created: boolean;
      user?: User;
    };

/** Read access to the emulated tenant, for tests. Mutate only through the API or control plane. */
export interface EmulatorStateView {
  readonly plan: Plan;
  readonly users: ReadonlyMap<string, User>;
  readonly connections: ReadonlyMap<string, Connection>;
  readonly organizations: ReadonlyMap<string, Organization>;
  readonly roles: ReadonlyMap<string, Role>;
  readonly sessions: ReadonlyMap<string, Session>;
  readonly refreshTokens: ReadonlyMap<string, RefreshToken>;
  readonly revocations: readonly Revocation[];
  readonly tickets: readonly Ticket[];
  connectionByName(name: string): Connection | undefined;
  organizationByName(name: string): Organization | undefined;
  usersByEmail(email: string): User[];
  /** User ids that are members of the organization, in the order they were added. */
  membersOf(orgId: string): string[];
  /** Role ids the member holds in the organization. */
  memberRolesOf(orgId: string, userId: string): string[];
  enabledConnectionsOf(orgId: string): EnabledConnection[];
  sessionsOf(userId: string): Session[];
  refreshTokensOf(userId: string): RefreshToken[];
  /** True while the user still has a session or a refresh token (i.e. "access not yet revoked"). */
  hasActiveAccess(userId: string): boolean;
}

export interface RunningEmulator {
  /** Origin, e.g. http://127.0.0.1:41234 — use it as AUTH0_MANAGEMENT_URL. */
  readonly url: string;
  readonly port: number;
  readonly state: EmulatorStateView;
  calls(): CallLogEntry[];
  clearCalls(): void;
  /** Replace the fault configuration (an empty object clears it). */
  setFaults(faults: FaultsInput): void;
  /** Back to a fresh tenant (as started): state, calls, faults, rate buckets. Issued access tokens stay valid. */
  reset(): void;
  /** Invalidate every issued access token (the next API call with one answers 401 "Invalid token."). */
  revokeTokens(): void;
  /** Simulate a login, as POST /__emulator/login does. */
  login(request: LoginRequest): Promise<LoginResult>;
  /** Declare a connection, as POST /__emulator/connections does. */
  addConnection(spec: ConnectionSpec): Connection;
  setPostLoginHook(hook: PostLoginHookConfig | undefined): void;
  /** Change the client grant (undefined = every scope); applies to tokens already issued too. */
  setGrantScopes(scopes: string[] | undefined): void;
  /** Change the delay of asynchronous effects (member removal, session and refresh-token deletion). */
  setAsyncDelay(ms: number): void;
  close(): Promise<void>;
}
