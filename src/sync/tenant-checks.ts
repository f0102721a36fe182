/**
 * The doctor: checks the live Auth0 tenant against what the configuration and the organizations'
 * mappings need. One service for `scim-bridge doctor`, `serve`'s start-up checks and /readyz.
 *
 * Every check is a read, or a call that changes nothing: the token request, GET connections and
 * roles, a signed test event to the bridge's own post-login hook (answered without side effects),
 * and revoke-access for a user id that cannot exist (404 where the plan has it, 403 where not).
 */
import { ManagementClient, ManagementError } from "auth0";
import type { Auth0Config } from "../config.js";
import { readActiveMappings } from "../directory/mappings.js";
import { recordConnection, type KnownConnection } from "../directory/settings.js";
import type { MappingDocument } from "../mapping/index.js";
import { redirectingFetch } from "../auth0/client.js";
import { signPostLoginBody } from "../auth0/hook-signature.js";
import { missingScopes, requiredScopes, type MappedOrganization, type ScopeNeed } from "../auth0/scopes.js";
import type { SqlStore } from "../directory/sql.js";

export type CheckStatus = "ok" | "warn" | "fail" | "skipped";

export interface TenantCheck {
  /** Stable identifier, e.g. "token", "scope:update:users", "connection:okta-acme", "role:admin", "hook", "revocation". */
  id: string;
  status: CheckStatus;
  /** One line: what was checked and what was found. */
  summary: string;
  /** What to do about a warn or a fail. */
  fix?: string;
}

/** Whether the bridge can work with the tenant at all: what /readyz reports. */
export type Auth0Reachability = "ok" | "unreachable" | "unauthorised";

export interface TenantReport {
  tenant: string;
  checkedAt: string;
  /** false when any check failed: something required is missing. */
  ok: boolean;
  auth0: Auth0Reachability;
  /** As the token response (or the token itself) states them; null when it does not say. */
  grantedScopes: string[] | null;
  missingScopes: { scope: string; breaks: string; organizations: string[] }[];
  checks: TenantCheck[];
}

export interface TenantCheckOptions {
  auth0: Auth0Config;
  store: SqlStore;
  /** Where the Auth0 Action reaches the bridge (PUBLIC_URL). */
  publicUrl: string;
  /** AUTH0_HOOK_SECRET; undefined when the hook is off. */
  hookSecret: string | undefined;
  /** Per HTTP call (default 10 s). */
  timeoutMs?: number;
  now?: () => number;
}

/** A user id no tenant holds: revoke-access on it answers 404 where the plan has the endpoint. */
const probeUserId = "auth0|scim-bridge-doctor-probe";
/** What the post-login hook answers to the doctor without looking anything up or writing anything. */
export const hookTestEvent = { test: true, user: { user_id: "scim-bridge|doctor" } } as const;
/** Root attributes Auth0 refuses to update for IdP users whose connection syncs them at each login. */
const syncedRootAttributes = ["name", "given_name", "family_name", "nickname", "picture"] as const;

const message = (err: unknown): string => (err instanceof Error ? err.message : String(err));

function bodyField(body: unknown, key: string): string | undefined {
  const v = body && typeof body === "object" ? (body as Record<string, unknown>)[key] : undefined;
  return typeof v === "string" ? v : undefined;
}

function describeApiError(err: unknown): { status: number | undefined; errorCode: string | undefined; text: string } {
  if (err instanceof ManagementError) {
    const errorCode = bodyField(err.body, "errorCode");
    const detail = bodyField(err.body, "message") ?? err.message;
    return {
      status: err.statusCode,
      errorCode,
      text: `Auth0 answered ${err.statusCode ?? "?"}${errorCode ? ` ${errorCode}` : ""}: ${detail}`,
    };
  }
  return { status: undefined, errorCode: undefined, text: `Auth0 did not answer: ${message(err)}` };
}

/** `scope` of the client-credentials response, else the token's own `scope` claim (a JWT on Auth0). */
function scopesOf(body: Record<string, unknown>): string[] | null {
  if (typeof body.scope === "string") return body.scope.split(/\s+/).filter(Boolean);
  const token = typeof body.access_token === "string" ? body.access_token : "";
  const payload = token.split(".")[1];
  if (!payload) return null;
  try {
    const claims = JSON.parse(Buffer.from(payload, "base64url").toString("utf8")) as { scope?: unknown };
    return typeof claims.scope === "string" ? claims.scope.split(/\s+/).filter(Boolean) : null;
  } catch {
    return null;
  }
}

interface TokenResult {
  reachability: Auth0Reachability;
  token?: string;
  scopes: string[] | null;
  check: TenantCheck;
}

async function requestToken(auth0: Auth0Config, fetcher: typeof fetch, timeoutMs: number): Promise<TokenResult> {
  const tokenUrl = `https://${auth0.domain}/oauth/token`;
  let res: Response;
  try {
    res = await fetcher(tokenUrl, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({
        grant_type: "client_credentials",
        client_id: auth0.clientId,
        client_secret: auth0.clientSecret,
        audience: `https://${auth0.domain}/api/v2/`,
      }),
      signal: AbortSignal.timeout(timeoutMs),
    });
  } catch (err) {
    return {
      reachability: "unreachable",
      scopes: null,
      check: {
        id: "token",
        status: "fail",
        summary: `Auth0 unreachable: POST ${tokenUrl} failed (${message(err)})`,
        fix: "check AUTH0_DOMAIN (and AUTH0_MANAGEMENT_URL if set) and that this host can reach Auth0 over HTTPS",
      },
    };
  }
  let body: Record<string, unknown> = {};
  try {
    body = (await res.json()) as Record<string, unknown>;
  } catch {
    // A non-JSON answer (a proxy's error page) is described by its status below.
  }
  if (res.status >= 500 || (res.status !== 200 && res.status !== 401 && res.status !== 403)) {
    return {
      reachability: "unreachable",
      scopes: null,
      check: {
        id: "token",
        status: "fail",
        summary: `Auth0 unreachable: the token endpoint answered ${res.status}${bodyField(body, "error") ? ` ${bodyField(body, "error")}` : ""}`,
        fix: "retry later; see status.auth0.com",
      },
    };
  }
  if (res.status !== 200 || typeof body.access_token !== "string") {
    const reason = bodyField(body, "error_description") ?? bodyField(body, "error") ?? "no access token";
    return {
      reachability: "unauthorised",
      scopes: null,
      check: {
        id: "token",
        status: "fail",
        summary: `Auth0 unauthorised: the token endpoint answered ${res.status} (${reason})`,
        fix: "check AUTH0_CLIENT_ID and AUTH0_CLIENT_SECRET (Applications → your Machine to Machine application → Settings), and that the application is authorized for the Auth0 Management API (its APIs tab)",
      },
    };
  }
  const scopes = scopesOf(body);
  return {
    reachability: "ok",
    token: body.access_token,
    scopes,
    check: { id: "token", status: "ok", summary: `client credentials accepted by ${auth0.domain}` },
  };
}

function scopeChecks(needs: ScopeNeed[], granted: string[] | null): { checks: TenantCheck[]; missing: ScopeNeed[] } {
  if (granted === null) {
    return {
      checks: [
        {
          id: "scopes",
          status: "warn",
          summary: "the token response names no scopes, so they cannot be checked",
          fix: `grant the application these scopes: ${needs.map((n) => n.scope).join(" ")}`,
        },
      ],
      missing: [],
    };
  }
  const missing = missingScopes(needs, granted);
  const checks: TenantCheck[] = needs.map((n) => {
    const who = n.organizations.length > 0 ? ` (for ${n.organizations.join(", ")})` : "";
    return missing.includes(n)
      ? {
          id: `scope:${n.scope}`,
          status: "fail" as const,
          summary: `scope ${n.scope} missing${who}: ${n.breaks}`,
          fix: `APIs → Auth0 Management API → Machine to Machine Applications → this application: tick ${n.scope}`,
        }
      : { id: `scope:${n.scope}`, status: "ok" as const, summary: `scope ${n.scope} granted${who}` };
  });
  return { checks, missing };
}

interface TenantConnection {
  name: string;
  strategy: string;
  options?: Record<string, unknown>;
}

function connectionCheck(
  name: string,
  found: TenantConnection | undefined,
  users: { slug: string; mapping: MappingDocument; applied: boolean }[],
): TenantCheck {
  const slugs = users.map((u) => u.slug).join(", ");
  if (!found) {
    return {
      id: `connection:${name}`,
      status: "fail",
      summary: `connection "${name}" (used by ${slugs}) does not exist in the tenant: these organizations cannot sync`,
      fix: `create the connection in Auth0 (Authentication → Database or Enterprise), or point the organizations at an existing one`,
    };
  }
  const type = found.strategy === "auth0" ? "database" : "enterprise";
  const problems: string[] = [];
  const fixes: string[] = [];
  let status: CheckStatus = "ok";
  for (const u of users.filter((x) => x.applied && x.mapping.connection.type !== type)) {
    status = "fail";
    problems.push(
      `${u.slug}'s mapping says connection type "${u.mapping.connection.type}" but its strategy is "${found.strategy}" (${type})` +
        (type === "enterprise"
          ? ": the bridge would try to create users Auth0 only creates at their first login"
          : ": the bridge would wait for logins of users that do not exist yet"),
    );
    fixes.push(`set connection.type: ${type} in ${u.slug}'s mapping`);
  }
  let sync = "";
  if (type === "enterprise") {
    const setting =
      typeof found.options?.set_user_root_attributes === "string"
        ? found.options.set_user_root_attributes
        : "on_each_login";
    sync = `; profile sync ${setting}`;
    if (setting === "on_each_login") {
      for (const u of users) {
        const written = syncedRootAttributes.filter((f) => u.mapping.profile[f] !== undefined);
        if (written.length === 0) continue;
        if (status === "ok") status = "warn";
        problems.push(
          `${u.slug}'s mapping writes ${written.join(", ")}, which Auth0 refuses to update for this connection's users (it overwrites them from the IdP at each login): they are left out`,
        );
        fixes.push(
          `to let the bridge write them, set "Sync user profile attributes at each login" off (options.set_user_root_attributes: "on_first_login"); otherwise drop them from the mapping`,
        );
      }
    }
  }
  const summary =
    `connection "${name}" exists: strategy ${found.strategy} (${type})${sync}; used by ${slugs}` +
    (type === "enterprise" ? "; users' email is the IdP's and is never written" : "");
  return {
    id: `connection:${name}`,
    status,
    summary: problems.length > 0 ? `${summary}. ${problems.join("; ")}` : summary,
    ...(fixes.length > 0 ? { fix: fixes.join("; ") } : {}),
  };
}

async function hookCheck(
  publicUrl: string,
  secret: string | undefined,
  fetcher: typeof fetch,
  timeoutMs: number,
): Promise<TenantCheck[]> {
  const url = `${publicUrl.replace(/\/+$/, "")}/hooks/auth0/post-login`;
  const checks: TenantCheck[] = [];
  const host = new URL(publicUrl).hostname;
  if (!publicUrl.startsWith("https://") && host !== "localhost" && host !== "127.0.0.1") {
    checks.push({
      id: "public-url",
      status: "warn",
      summary: `PUBLIC_URL ${publicUrl} is not https: the post-login Action refuses such a BRIDGE_URL and denies every login`,
      fix: "serve the bridge over HTTPS and set PUBLIC_URL to that address",
    });
  }
  if (!secret) {
    checks.push({
      id: "hook",
      status: "fail",
      summary:
        "AUTH0_HOOK_SECRET is not set: the post-login hook is off, so logins are not checked against the directory",
      fix: "set AUTH0_HOOK_SECRET (32+ characters) and the same value as the Action's BRIDGE_HOOK_SECRET",
    });
    return checks;
  }
  const body = JSON.stringify(hookTestEvent);
  try {
    const res = await fetcher(url, {
      method: "POST",
      headers: { "content-type": "application/json", "x-scim-bridge-signature": signPostLoginBody(secret, body) },
      body,
      signal: AbortSignal.timeout(timeoutMs),
    });
    const answer = (await res.json().catch(() => ({}))) as { test?: unknown };
    if (res.ok && answer.test === true)
      checks.push({ id: "hook", status: "ok", summary: `post-login hook answers a signed test event at ${url}` });
    else if (res.status === 401)
      checks.push({
        id: "hook",
        status: "fail",
        summary: `the bridge at ${url} refused the signature: it runs with another AUTH0_HOOK_SECRET`,
        fix: "use one AUTH0_HOOK_SECRET for every bridge process and the Action's BRIDGE_HOOK_SECRET",
      });
    else
      checks.push({
        id: "hook",
        status: "fail",
        summary: `${url} answered ${res.status} to a signed test event, not the bridge's hook`,
        fix: "check PUBLIC_URL and that `scim-bridge serve` runs there with AUTH0_HOOK_SECRET set",
      });
  } catch (err) {
    checks.push({
      id: "hook",
      status: "fail",
      summary: `post-login hook unreachable at ${url} (${message(err)}): the Action denies every login it cannot verify`,
      fix: "start `scim-bridge serve` and make PUBLIC_URL the address Auth0 reaches it at",
    });
  }
  return checks;
}

/**
 * Every organization with its active mapping. Parsed mappings are cached by organization and stored
 * version (and shared by identical documents), so a periodic re-check reads the organizations and
 * parses only what changed since the last one.
 */
async function mappedOrganizations(
  store: SqlStore,
): Promise<{ slug: string; mapping: MappingDocument; applied: boolean }[]> {
  return (await readActiveMappings(store)).map((a) => ({
    slug: a.slug,
    mapping: a.document,
    applied: a.version !== null,
  }));
}

/** Runs every check; never throws for an Auth0 problem (that is what it reports). */
export async function checkTenant(options: TenantCheckOptions): Promise<TenantReport> {
  const { auth0, store } = options;
  const timeoutMs = options.timeoutMs ?? 10_000;
  const now = options.now ?? Date.now;
  const fetcher = auth0.managementUrl ? redirectingFetch(auth0.domain, auth0.managementUrl) : fetch;
  const checks: TenantCheck[] = [];
  const report = (auth0State: Auth0Reachability, granted: string[] | null, missing: ScopeNeed[]): TenantReport => ({
    tenant: auth0.domain,
    checkedAt: new Date(now()).toISOString(),
    ok: checks.every((c) => c.status !== "fail"),
    auth0: auth0State,
    grantedScopes: granted,
    missingScopes: missing.map((m) => ({ scope: m.scope, breaks: m.breaks, organizations: m.organizations })),
    checks,
  });

  const token = await requestToken(auth0, fetcher, timeoutMs);
  checks.push(token.check);
  if (token.reachability !== "ok" || !token.token) return report(token.reachability, null, []);
  const granted = token.scopes;
  const has = (scope: string): boolean => granted === null || granted.includes(scope);
  const client = new ManagementClient({
    domain: auth0.domain,
    token: token.token,
    maxRetries: 0,
    timeoutInSeconds: Math.ceil(timeoutMs / 1000),
    fetch: fetcher,
  });

  // Connections first: their type decides each default mapping, and so the scopes it needs.
  const connectionNames = [...new Set((await mappedOrganizations(store)).map((o) => o.mapping.connection.name))];
  const found = new Map<string, TenantConnection | undefined>();
  const connectionErrors = new Map<string, string>();
  if (has("read:connections")) {
    for (const name of connectionNames) {
      try {
        const page = await client.connections.list({ name, take: 50 });
        const c = page.data.find((x) => x.name === name);
        found.set(
          name,
          c
            ? { name, strategy: c.strategy ?? "", options: (c as { options?: Record<string, unknown> }).options ?? {} }
            : undefined,
        );
        if (c) {
          const type = c.strategy === "auth0" ? "database" : "enterprise";
          const setting = (c as { options?: { set_user_root_attributes?: unknown } }).options?.set_user_root_attributes;
          const known: KnownConnection = { name, strategy: c.strategy ?? "", type, checkedAt: now() };
          if (type === "enterprise")
            known.setUserRootAttributes = typeof setting === "string" ? setting : "on_each_login";
          await store.write(recordConnection(known));
        }
      } catch (err) {
        connectionErrors.set(name, describeApiError(err).text);
      }
    }
  }
  const orgs = await mappedOrganizations(store);
  const { checks: scopeResults, missing } = scopeChecks(
    requiredScopes(orgs.map((o): MappedOrganization => ({ slug: o.slug, mapping: o.mapping }))),
    granted,
  );
  checks.push(...scopeResults);

  if (orgs.length === 0) {
    checks.push({
      id: "organizations",
      status: "warn",
      summary: "no organization yet: connections and roles are checked once one exists",
      fix: "scim-bridge org create <slug> --connection <name>",
    });
  }
  for (const name of connectionNames) {
    const users = orgs.filter((o) => o.mapping.connection.name === name);
    if (!has("read:connections"))
      checks.push({
        id: `connection:${name}`,
        status: "skipped",
        summary: `connection "${name}" not checked: the token lacks read:connections`,
      });
    else if (connectionErrors.has(name))
      checks.push({
        id: `connection:${name}`,
        status: "fail",
        summary: `connection "${name}" could not be read: ${connectionErrors.get(name)}`,
      });
    else checks.push(connectionCheck(name, found.get(name), users));
  }

  const roleNames = [
    ...new Set(orgs.flatMap((o) => [...o.mapping.roles.default, ...o.mapping.roles.rules.flatMap((r) => r.grant)])),
  ].sort();
  for (const role of roleNames) {
    if (!has("read:roles")) {
      checks.push({
        id: `role:${role}`,
        status: "skipped",
        summary: `role "${role}" not checked: the token lacks read:roles`,
      });
      continue;
    }
    try {
      const page = await client.roles.list({ name_filter: role, per_page: 50 });
      if (page.data.some((r) => r.name === role))
        checks.push({ id: `role:${role}`, status: "ok", summary: `role "${role}" exists` });
      else if (has("create:roles"))
        checks.push({
          id: `role:${role}`,
          status: "warn",
          summary: `role "${role}" does not exist: the bridge creates it (as a tenant role) when it first grants it`,
          fix: `create it in Auth0 (User Management → Roles) to give it a description and permissions`,
        });
      else
        checks.push({
          id: `role:${role}`,
          status: "fail",
          summary: `role "${role}" does not exist and the token lacks create:roles: users mapped to it get no roles`,
          fix: `create the role "${role}" in Auth0 (User Management → Roles)`,
        });
    } catch (err) {
      checks.push({
        id: `role:${role}`,
        status: "fail",
        summary: `role "${role}" could not be read: ${describeApiError(err).text}`,
      });
    }
  }

  checks.push(...(await hookCheck(options.publicUrl, options.hookSecret, fetcher, timeoutMs)));

  if (
    missing.every((m) => m.scope !== "delete:sessions" && m.scope !== "delete:refresh_tokens") &&
    orgs.some((o) =>
      [o.mapping.policies.deactivation, o.mapping.policies.deletion].some((p) => p.revokeSessions !== "never"),
    )
  ) {
    try {
      await client.users.revokeAccess(probeUserId, {});
      checks.push({
        id: "revocation",
        status: "ok",
        summary: "session and refresh-token revocation (revoke-access) is available",
      });
    } catch (err) {
      const e = describeApiError(err);
      if (e.status === 404)
        checks.push({
          id: "revocation",
          status: "ok",
          summary: "session and refresh-token revocation (revoke-access) is available",
        });
      else if (e.status === 403 && e.errorCode !== "insufficient_scope")
        checks.push({
          id: "revocation",
          status: "warn",
          summary: `session and refresh-token revocation is not available on this plan (${e.text}): deactivated users are blocked, but sessions and refresh tokens already issued live until they expire`,
          fix: "Auth0 offers session and refresh-token management on Enterprise plans; meanwhile keep access-token and session lifetimes short",
        });
      else checks.push({ id: "revocation", status: "warn", summary: `revocation could not be checked: ${e.text}` });
    }
  }

  return report("ok", granted, missing);
}

/** Human output: one ✓/✗/! line per check, its fix indented under it. */
export function formatReport(r: TenantReport): string {
  const mark: Record<CheckStatus, string> = { ok: "✓", warn: "!", fail: "✗", skipped: "-" };
  const lines = [`Auth0 tenant ${r.tenant} (checked ${r.checkedAt})`, ""];
  for (const c of r.checks) {
    lines.push(`${mark[c.status]} ${c.summary}`);
    if (c.fix && c.status !== "ok") lines.push(`    fix: ${c.fix}`);
  }
  const fails = r.checks.filter((c) => c.status === "fail").length;
  const warns = r.checks.filter((c) => c.status === "warn").length;
  lines.push(
    "",
    fails > 0
      ? `${fails} problem(s) to fix${warns ? `, ${warns} warning(s)` : ""}.`
      : warns > 0
        ? `Ready, with ${warns} warning(s).`
        : "Ready.",
  );
  return lines.join("\n");
}

/** What /readyz needs to know of the tenant: the last report, or that the first is under way. */
export interface TenantStatus {
  current(): TenantReport | undefined;
}

export interface TenantMonitorLog {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

export interface TenantMonitor extends TenantStatus {
  /** Settles with the first report (never rejects). */
  first: Promise<TenantReport>;
  stop(): void;
}

/**
 * `serve`'s background checks: once at start, then every `intervalMs` (sooner, `retryMs`, while
 * something is wrong). Each problem is logged when it appears or changes, at error for what is
 * required and warn for the rest, with its fix; a problem that clears is logged at info.
 */
export function monitorTenant(
  options: TenantCheckOptions & { log: TenantMonitorLog; intervalMs?: number; retryMs?: number },
): TenantMonitor {
  const intervalMs = options.intervalMs ?? 10 * 60_000;
  const retryMs = options.retryMs ?? 60_000;
  let last: TenantReport | undefined;
  let timer: NodeJS.Timeout | undefined;
  let stopped = false;
  const logged = new Map<string, string>();

  const logReport = (r: TenantReport): void => {
    const seen = new Set<string>();
    for (const c of r.checks) {
      if (c.status !== "fail" && c.status !== "warn") continue;
      seen.add(c.id);
      const key = `${c.status}:${c.summary}`;
      if (logged.get(c.id) === key) continue;
      logged.set(c.id, key);
      const entry = { tenant: r.tenant, check: c.id, fix: c.fix };
      if (c.status === "fail") options.log.error(entry, `Auth0 tenant check failed: ${c.summary}`);
      else options.log.warn(entry, `Auth0 tenant check: ${c.summary}`);
    }
    for (const id of [...logged.keys()]) {
      if (seen.has(id)) continue;
      logged.delete(id);
      options.log.info({ tenant: r.tenant, check: id }, `Auth0 tenant check ${id} passes now`);
    }
    if (r.ok && last === undefined)
      options.log.info(
        { tenant: r.tenant, warnings: r.checks.filter((c) => c.status === "warn").length },
        "Auth0 tenant checks passed",
      );
  };

  const run = async (): Promise<TenantReport> => {
    let r: TenantReport;
    try {
      r = await checkTenant(options);
    } catch (err) {
      // A bug or a database error in the checks themselves: reported like an unreachable tenant.
      r = {
        tenant: options.auth0.domain,
        checkedAt: new Date().toISOString(),
        ok: false,
        auth0: "unreachable",
        grantedScopes: null,
        missingScopes: [],
        checks: [{ id: "token", status: "fail", summary: `the tenant checks could not run: ${message(err)}` }],
      };
    }
    logReport(r);
    last = r;
    if (!stopped) {
      timer = setTimeout(() => void run(), r.ok ? intervalMs : retryMs);
      timer.unref();
    }
    return r;
  };

  return {
    first: run(),
    current: () => last,
    stop: () => {
      stopped = true;
      if (timer) clearTimeout(timer);
    },
  };
}

/** The tenant problems that make the bridge unable to sync: /readyz answers 503 on any of them. */
export function readinessProblems(r: TenantReport): string[] {
  const problems: string[] = [];
  if (r.auth0 !== "ok") {
    const token = r.checks.find((c) => c.id === "token");
    problems.push(`auth0: ${token?.summary ?? r.auth0}${token?.fix ? ` (fix: ${token.fix})` : ""}`);
    return problems;
  }
  if (r.missingScopes.length > 0) {
    problems.push(
      `auth0: missing scopes ${r.missingScopes.map((m) => m.scope).join(", ")} (grant them to the application on the Auth0 Management API; \`scim-bridge doctor\` says what each one breaks)`,
    );
  }
  for (const c of r.checks)
    if (c.id.startsWith("connection:") && c.status === "fail") problems.push(`auth0: ${c.summary}`);
  return problems;
}
