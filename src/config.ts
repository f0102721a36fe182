/**
 * Configuration, parsed once at start into a frozen object. This is the only module that reads
 * process.env (through loadConfig's argument). Every problem is reported at once, naming the variables.
 */
import { isIP } from "node:net";
import { availableParallelism } from "node:os";

export interface Auth0Config {
  domain: string;
  clientId: string;
  clientSecret: string;
  /** Origin that replaces https://{domain} (the emulator in tests and sandbox mode). */
  managementUrl?: string;
  /** AUTH0_INVITATION_CLIENT_ID: the application whose login an invitation (password-change ticket) returns to. */
  invitationClientId?: string;
}

/** True for the URLs node-postgres accepts: `postgres://…` and `postgresql://…`. */
export function isPostgresUrl(url: string): boolean {
  return /^postgres(?:ql)?:\/\//.test(url);
}

export interface Config {
  port: number;
  publicUrl: string;
  /** PUBLIC_URL was set; otherwise the URL follows the port `serve` listens on (PORT=0 picks one). */
  publicUrlSet: boolean;
  databaseUrl: string;
  /**
   * TRUST_PROXY: which proxies' X-Forwarded-For names the client (Express's "trust proxy"), for the
   * per-address limits and audit entries: false (default: the socket's peer is the client), a number
   * of proxy hops, or the proxies' addresses, subnets and named ranges (loopback, linklocal, uniquelocal).
   */
  trustProxy: false | number | string[];
  /** DATABASE_URL was set; otherwise the sandbox keeps its own file apart from `serve`'s. */
  databaseUrlSet: boolean;
  /**
   * DATABASE_POOL_SIZE: connections of this instance's PostgreSQL pool (default 10); each instance
   * opens up to this many, plus one for job wake-ups and one for leadership. Unused on SQLite.
   */
  databasePoolSize: number;
  /** Absent: sandbox mode (emulator in-process). */
  auth0?: Auth0Config;
  /** Bootstrap operator token for the admin API. */
  adminToken?: string;
  /** Shared secret of the post-login Action (HMAC); the hook route is off without it, except in sandbox mode. */
  hookSecret?: string;
  /** Auth0 plan whose rate-limit buckets the limiter starts from (headers refine them). */
  auth0Plan: "free" | "essentials" | "enterprise";
  /** Multiplies the plan's refill rates (a tenant with raised limits; an emulator with --rate-scale). */
  auth0RateScale: number;
  /** Job lease: a crashed worker's jobs are taken over this long after its last heartbeat. */
  jobLeaseSeconds: number;
  /** Jobs the worker runs at once (different users; one job per user at a time). */
  syncConcurrency: number;
  /** Where invitation tickets are POSTed (signed) for the SaaS's mailer; unset: invitations are not sent. */
  invitationWebhook?: { url: string; secret: string };
  logLevel: "fatal" | "error" | "warn" | "info" | "debug" | "trace" | "silent";
  /** Hours between background drift scans of every organization; 0 turns them off. */
  driftScanHours: number;
  /** Per-directory SCIM rate limit; undefined when SCIM_RATE_LIMIT_PER_SECOND=0. */
  scimRateLimit?: { ratePerSecond: number; burst: number };
  /**
   * SQLite memory per connection (SQLITE_CACHE_MIB, SQLITE_MMAP_MIB); each unset one keeps the
   * store's default (a 32 MiB page cache, no mapping). See OpenOptions in directory/database.ts.
   */
  sqlite: { cacheMiB?: number; mmapMiB?: number };
  /** Per-directory share of the event loop; undefined when SCIM_LOOP_MS_PER_SECOND=0. */
  scimLoopBudget?: { msPerSecond: number; burstMs: number };
  /** Time budget of one SCIM request, ms (SCIM_REQUEST_BUDGET_MS). */
  scimRequestBudgetMs: number;
  /** SCIM_READ_WORKERS: threads of the SCIM read pool (default the number of cores); 0 reads on the main thread. */
  scimReadWorkers: number;
  /**
   * SYNC_WORKER_THREAD: "1" makes `serve` and `start` run the sync engine in a worker thread of its
   * own; "0" (default) keeps it on the main thread. Off by default because on SQLite the thread's
   * writes and the SCIM writes then take the file's write lock in turn, and a write that finds it
   * taken sleeps in SQLite's busy handler: measured slower (docs/design.md, "Concurrency").
   * createBridge runs it in-process unless asked.
   */
  syncWorkerThread: boolean;
  console: ConsoleConfig;
}

/** The web console at /console. */
export interface ConsoleConfig {
  /** The Auth0 Regular Web Application the console signs people in with; without it, only admin tokens and setup links work. */
  oidc?: { clientId: string; clientSecret: string; issuer: string };
  /** Namespace of the roles claim the post-login Action adds: `${ns}/roles`. */
  roleClaimNamespace: string;
  /** The organization role that makes a member an administrator. */
  adminRole: string;
  /** Auth0 organization id (org_…) of the SaaS company's own staff: its administrators are operators. */
  operatorOrganization?: string;
  /** HMAC key of stored session ids; without it a random one is used and sessions end at restart. */
  sessionSecret?: string;
}

/**
 * SCIM, per directory: flood protection, not pacing. Microsoft's "Develop and plan provisioning for a
 * SCIM endpoint in Microsoft Entra ID" asks gallery apps to sustain at least 25 requests per second
 * per tenant, and "Find out when a specific user will be able to access an app in Microsoft Entra
 * Application Provisioning" says only connectors Microsoft built slow down for a target's limits: a
 * custom app's cycle runs as fast as the endpoint answers. Okta documents no push rate, and "Handle SCIM server rate limiting" (Okta's
 * SCIM concepts) pauses the whole task on a 429, for minutes when Retry-After is absent, doubling up to
 * ten times before it fails the task: a 429 to an IdP at its natural pace is costly. So the default sits
 * far above those rates: 200 req/s sustained (eight times Entra's floor) with a burst of 1,000, enough
 * for a complete third-party conformance run or the start of a cycle at full speed, while a client
 * looping at thousands of requests per second is held to 200.
 */
export const scimRateLimitDefaults = { ratePerSecond: 200, burst: 1_000 } as const;

/**
 * A directory's share of the event loop: the event-loop time its SCIM requests took, a token
 * bucket of milliseconds per second (src/http/rate-limit.ts, loopBudget). The request rate limit
 * counts requests whatever they cost; this counts what they cost, so a directory sending the most
 * expensive requests the per-request maximums allow gets no more of the process than one sending
 * many cheap ones. 250 ms per second is a quarter of the one JavaScript thread. Metered on a loaded
 * 2-core machine, a GET by id took about 0.6 ms and a one-email POST or a one-operation PATCH about
 * 2 ms: a directory reading at the full request rate (200/s) or writing 100 times a second stays
 * within it, and three directories at their share still leave room for logins and /healthz. The burst lets an idle directory spend a second at once (the
 * start of a provisioning cycle) before it is paced. Enforced only while another directory is being
 * served: one alone in the process may use all of it.
 */
export const scimLoopBudgetDefaults = { msPerSecond: 250, burstMs: 1_000 } as const;

/**
 * Time budget of one SCIM request, from its arrival: a request still waiting for its directory's turn
 * when it is spent is answered 503 with Retry-After without running, and a write past it is rolled
 * back and answered the same, so a late request never half-applies. Entra and Okta retry a 503;
 * five seconds is far beyond what any single request takes when the process is not overloaded.
 */
export const scimRequestBudgetDefaultMs = 5_000;

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`invalid configuration:\n  - ${problems.join("\n  - ")}`);
    this.name = "ConfigError";
  }
}

const logLevels = new Set(["fatal", "error", "warn", "info", "debug", "trace", "silent"]);

/** The process's configuration: the one read of process.env. */
export const loadProcessConfig = (): Readonly<Config> => loadConfig(process.env);

export function loadConfig(rawEnv: NodeJS.ProcessEnv): Readonly<Config> {
  // A variable set to the empty string counts as unset (`FOO= cmd`, compose files with blank values).
  const env: NodeJS.ProcessEnv = Object.fromEntries(
    Object.entries(rawEnv).filter(([, v]) => v !== undefined && v !== ""),
  );
  const problems: string[] = [];

  const portText = env.PORT ?? "8787";
  const port = Number(portText);
  if (!Number.isInteger(port) || port < 0 || port > 65535)
    problems.push(`PORT must be an integer from 0 to 65535 (got "${portText}")`);

  const publicUrl = (env.PUBLIC_URL ?? `http://localhost:${portText}`).replace(/\/+$/, "");
  try {
    const u = new URL(publicUrl);
    if (u.protocol !== "http:" && u.protocol !== "https:") problems.push("PUBLIC_URL must be an http(s) URL");
  } catch {
    problems.push(`PUBLIC_URL is not a URL (got "${publicUrl}")`);
  }

  const databaseUrl = env.DATABASE_URL ?? "sqlite:./data/bridge.db";
  if (!databaseUrl.startsWith("sqlite:") && !isPostgresUrl(databaseUrl))
    problems.push(
      `DATABASE_URL must be "sqlite:<path>" or "postgres://user:password@host:port/database" (got "${databaseUrl.split(":")[0]}:…")`,
    );
  const poolText = env.DATABASE_POOL_SIZE ?? "10";
  const databasePoolSize = Number(poolText);
  if (!Number.isInteger(databasePoolSize) || databasePoolSize < 1 || databasePoolSize > 1000)
    problems.push(`DATABASE_POOL_SIZE must be a whole number of connections from 1 to 1000 (got "${poolText}")`);

  const trustProxy = parseTrustProxy(env.TRUST_PROXY, problems);

  const auth0Vars = ["AUTH0_DOMAIN", "AUTH0_CLIENT_ID", "AUTH0_CLIENT_SECRET"] as const;
  const present = auth0Vars.filter((k) => env[k]);
  let auth0: Auth0Config | undefined;
  if (present.length > 0 && present.length < auth0Vars.length) {
    problems.push(
      `set all of ${auth0Vars.join(", ")} or none (sandbox mode); missing: ${auth0Vars.filter((k) => !env[k]).join(", ")}`,
    );
  } else if (present.length === auth0Vars.length) {
    const domain = env.AUTH0_DOMAIN!;
    if (/[/?#:]/.test(domain))
      problems.push(`AUTH0_DOMAIN must be a bare host name such as tenant.eu.auth0.com (got "${domain}")`);
    auth0 = { domain, clientId: env.AUTH0_CLIENT_ID!, clientSecret: env.AUTH0_CLIENT_SECRET! };
    if (env.AUTH0_MANAGEMENT_URL) auth0.managementUrl = env.AUTH0_MANAGEMENT_URL.replace(/\/+$/, "");
    if (env.AUTH0_INVITATION_CLIENT_ID) auth0.invitationClientId = env.AUTH0_INVITATION_CLIENT_ID;
  } else if (env.AUTH0_MANAGEMENT_URL) {
    problems.push("AUTH0_MANAGEMENT_URL needs AUTH0_DOMAIN, AUTH0_CLIENT_ID and AUTH0_CLIENT_SECRET");
  }

  const logLevel = (env.LOG_LEVEL ?? "info") as Config["logLevel"];
  if (!logLevels.has(logLevel)) problems.push(`LOG_LEVEL must be one of ${[...logLevels].join(", ")}`);

  const adminToken = env.BRIDGE_ADMIN_TOKEN || undefined;
  if (adminToken !== undefined && adminToken.length < 32)
    problems.push("BRIDGE_ADMIN_TOKEN must be at least 32 characters");

  const hookSecret = env.AUTH0_HOOK_SECRET || undefined;
  if (hookSecret !== undefined && hookSecret.length < 32)
    problems.push("AUTH0_HOOK_SECRET must be at least 32 characters");

  const auth0Plan = (env.AUTH0_PLAN ?? "essentials") as Config["auth0Plan"];
  if (!["free", "essentials", "enterprise"].includes(auth0Plan))
    problems.push('AUTH0_PLAN must be "free", "essentials" or "enterprise"');

  const scaleText = env.AUTH0_RATE_SCALE ?? "1";
  const auth0RateScale = Number(scaleText);
  if (!Number.isFinite(auth0RateScale) || auth0RateScale <= 0)
    problems.push(`AUTH0_RATE_SCALE must be a positive number (got "${scaleText}")`);

  const leaseText = env.JOB_LEASE_SECONDS ?? "30";
  const jobLeaseSeconds = Number(leaseText);
  if (!Number.isFinite(jobLeaseSeconds) || jobLeaseSeconds < 1 || jobLeaseSeconds > 60)
    problems.push(`JOB_LEASE_SECONDS must be 1 to 60 (got "${leaseText}")`);

  const concurrencyText = env.SYNC_CONCURRENCY ?? "16";
  const syncConcurrency = Number(concurrencyText);
  if (!Number.isInteger(syncConcurrency) || syncConcurrency < 1 || syncConcurrency > 256)
    problems.push(`SYNC_CONCURRENCY must be a whole number from 1 to 256 (got "${concurrencyText}")`);

  let invitationWebhook: Config["invitationWebhook"];
  if (env.INVITATION_WEBHOOK_URL) {
    const secret = env.INVITATION_WEBHOOK_SECRET ?? "";
    if (!/^https?:\/\//.test(env.INVITATION_WEBHOOK_URL))
      problems.push("INVITATION_WEBHOOK_URL must be an http(s) URL");
    if (secret.length < 32)
      problems.push("INVITATION_WEBHOOK_URL needs INVITATION_WEBHOOK_SECRET of at least 32 characters");
    invitationWebhook = { url: env.INVITATION_WEBHOOK_URL, secret };
  } else if (env.INVITATION_WEBHOOK_SECRET) {
    problems.push("INVITATION_WEBHOOK_SECRET is set but INVITATION_WEBHOOK_URL is not");
  }

  const driftText = env.DRIFT_SCAN_INTERVAL_HOURS ?? "24";
  const driftScanHours = Number(driftText);
  if (!Number.isFinite(driftScanHours) || driftScanHours < 0)
    problems.push(`DRIFT_SCAN_INTERVAL_HOURS must be a number of hours, 0 to turn scans off (got "${driftText}")`);

  // Flood protection well above the IdPs' documented push rates (see scimRateLimitDefaults); the burst is
  // five seconds' worth, so a conformance run or a cycle's start at full speed is never refused.
  const rateText = env.SCIM_RATE_LIMIT_PER_SECOND ?? String(scimRateLimitDefaults.ratePerSecond);
  const rate = Number(rateText);
  if (!Number.isFinite(rate) || rate < 0)
    problems.push(`SCIM_RATE_LIMIT_PER_SECOND must be a number, 0 to turn the limit off (got "${rateText}")`);
  const scimRateLimit =
    rate > 0
      ? {
          ratePerSecond: rate,
          burst: Math.max(1, Math.round(rate * (scimRateLimitDefaults.burst / scimRateLimitDefaults.ratePerSecond))),
        }
      : undefined;

  const sqlite: Config["sqlite"] = {};
  for (const [name, key, min] of [
    ["SQLITE_CACHE_MIB", "cacheMiB", 1],
    ["SQLITE_MMAP_MIB", "mmapMiB", 0],
  ] as const) {
    const text = env[name];
    if (text === undefined) continue;
    const mib = Number(text);
    if (text.trim() === "" || !Number.isInteger(mib) || mib < min || mib > 1_048_576)
      problems.push(`${name} must be a whole number of MiB from ${min} to 1048576 (got "${text}")`);
    else sqlite[key] = mib;
  }
  // The read pool (docs/design.md, "Concurrency"): WAL lets every core read at once.
  const workersText = env.SCIM_READ_WORKERS ?? String(Math.max(1, availableParallelism()));
  const scimReadWorkers = Number(workersText);
  if (!Number.isInteger(scimReadWorkers) || scimReadWorkers < 0 || scimReadWorkers > 64)
    problems.push(
      `SCIM_READ_WORKERS must be a whole number from 0 (reads on the main thread) to 64 (got "${workersText}")`,
    );

  const threadText = env.SYNC_WORKER_THREAD ?? "0";
  if (threadText !== "0" && threadText !== "1")
    problems.push(`SYNC_WORKER_THREAD must be 1 (the sync worker in a thread of its own) or 0 (got "${threadText}")`);
  const syncWorkerThread = threadText !== "0";

  const loopText = env.SCIM_LOOP_MS_PER_SECOND ?? String(scimLoopBudgetDefaults.msPerSecond);
  const loopMs = Number(loopText);
  if (!Number.isFinite(loopMs) || loopMs < 0 || loopMs > 1000)
    problems.push(
      `SCIM_LOOP_MS_PER_SECOND must be a number of ms from 0 to 1000, 0 to turn it off (got "${loopText}")`,
    );
  const scimLoopBudget =
    loopMs > 0
      ? {
          msPerSecond: loopMs,
          burstMs: loopMs * (scimLoopBudgetDefaults.burstMs / scimLoopBudgetDefaults.msPerSecond),
        }
      : undefined;
  const budgetText = env.SCIM_REQUEST_BUDGET_MS ?? String(scimRequestBudgetDefaultMs);
  const scimRequestBudgetMs = Number(budgetText);
  if (!Number.isFinite(scimRequestBudgetMs) || scimRequestBudgetMs < 100)
    problems.push(`SCIM_REQUEST_BUDGET_MS must be a number of ms, at least 100 (got "${budgetText}")`);

  const consoleConfig: ConsoleConfig = {
    roleClaimNamespace: (env.CONSOLE_ROLE_CLAIM_NAMESPACE ?? "https://scim-bridge.dev").replace(/\/+$/, ""),
    adminRole: env.CONSOLE_ADMIN_ROLE ?? "org_admin",
  };
  // Auth0 restricts non-namespaced custom claims ("Create Custom Claims"): the namespace must be a URL.
  if (!/^https?:\/\/[^\s/]+/.test(consoleConfig.roleClaimNamespace))
    problems.push("CONSOLE_ROLE_CLAIM_NAMESPACE must be an http(s) URL such as https://console.example.com");
  if (!/^[\w:.-]{1,100}$/.test(consoleConfig.adminRole))
    problems.push("CONSOLE_ADMIN_ROLE must be a role name (letters, digits, _ : . -)");
  if (env.CONSOLE_CLIENT_ID || env.CONSOLE_CLIENT_SECRET) {
    if (!env.CONSOLE_CLIENT_ID || !env.CONSOLE_CLIENT_SECRET)
      problems.push("set both CONSOLE_CLIENT_ID and CONSOLE_CLIENT_SECRET, or neither");
    else if (!auth0) problems.push("CONSOLE_CLIENT_ID needs AUTH0_DOMAIN, AUTH0_CLIENT_ID and AUTH0_CLIENT_SECRET");
    else
      consoleConfig.oidc = {
        clientId: env.CONSOLE_CLIENT_ID,
        clientSecret: env.CONSOLE_CLIENT_SECRET,
        issuer: auth0.managementUrl ? `${auth0.managementUrl}/` : `https://${auth0.domain}/`,
      };
  }
  if (env.CONSOLE_OPERATOR_ORGANIZATION) {
    if (!/^org_[A-Za-z0-9]+$/.test(env.CONSOLE_OPERATOR_ORGANIZATION))
      problems.push("CONSOLE_OPERATOR_ORGANIZATION must be an Auth0 organization id (org_…)");
    consoleConfig.operatorOrganization = env.CONSOLE_OPERATOR_ORGANIZATION;
  }
  if (env.CONSOLE_SESSION_SECRET) {
    if (env.CONSOLE_SESSION_SECRET.length < 32) problems.push("CONSOLE_SESSION_SECRET must be at least 32 characters");
    consoleConfig.sessionSecret = env.CONSOLE_SESSION_SECRET;
  }

  if (problems.length > 0) throw new ConfigError(problems);
  return Object.freeze({
    console: Object.freeze(consoleConfig),
    port,
    publicUrl,
    publicUrlSet: env.PUBLIC_URL !== undefined,
    databaseUrl,
    trustProxy,
    databaseUrlSet: env.DATABASE_URL !== undefined,
    databasePoolSize,
    auth0,
    adminToken,
    hookSecret,
    auth0Plan,
    auth0RateScale,
    jobLeaseSeconds,
    syncConcurrency,
    invitationWebhook,
    logLevel,
    driftScanHours,
    scimRateLimit,
    sqlite: Object.freeze(sqlite),
    scimLoopBudget,
    scimRequestBudgetMs,
    scimReadWorkers,
    syncWorkerThread,
  });
}

const namedRanges = new Set(["loopback", "linklocal", "uniquelocal"]);

/**
 * TRUST_PROXY: unset, "false" or "0" trusts no proxy. "true" (every sender) is refused: any client
 * could then name itself by X-Forwarded-For and walk around the per-address limits.
 */
function parseTrustProxy(text: string | undefined, problems: string[]): Config["trustProxy"] {
  const value = (text ?? "").trim();
  if (value === "" || value === "false" || value === "0") return false;
  if (/^\d+$/.test(value)) {
    const hops = Number(value);
    if (hops <= 10) return hops;
  }
  const entries = value.split(",").map((e) => e.trim());
  const valid = (entry: string): boolean => {
    if (namedRanges.has(entry)) return true;
    const [address, prefix, ...rest] = entry.split("/");
    const family = isIP(address ?? "");
    if (family === 0 || rest.length > 0) return false;
    if (prefix === undefined) return true;
    return /^\d+$/.test(prefix) && Number(prefix) <= (family === 4 ? 32 : 128);
  };
  const invalid = entries.filter((e) => !valid(e));
  if (invalid.length > 0 || entries.length === 0) {
    problems.push(
      `TRUST_PROXY must be a number of proxy hops from 1 to 10, or a comma-separated list of proxy addresses, subnets (10.0.0.0/8) or loopback, linklocal, uniquelocal (got "${value}")`,
    );
    return false;
  }
  return entries;
}
