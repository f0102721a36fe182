/**
 * The emulator's HTTP server (node:http). One request goes through, in order:
 *   /__emulator/*  → control plane
 *   /oauth/token   → outage, latency, token issue
 *   /api/v2/*      → outage → 429 storm → rate limit → latency → injected error → route (404) →
 *                    bearer check → scope check (403 insufficient_scope) → JSON body → handler
 * Every /api/v2 answer carries x-ratelimit-*; every error has Auth0's body. Nothing a client sends
 * can crash it: unexpected exceptions answer 500 with an Auth0-shaped body.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { handleControl, type ControlTarget } from "./control.js";
import { isMultipart, parseMultipart, registerImportJobRoutes } from "./import-jobs.js";
import { ApiError, routeNotFound } from "./errors.js";
import { Faults, type FaultsView } from "./faults.js";
import { simulateLogin } from "./login.js";
import { OidcProvider } from "./oidc.js";
import { RateLimiter } from "./rate-limit.js";
import { Router, type Reply, type TenantEnv } from "./router.js";
import { registerAccessRoutes } from "./routes/access.js";
import { registerConnectionRoutes } from "./routes/connections.js";
import { registerMemberRoutes } from "./routes/members.js";
import { authenticate, issueToken, parseTokenBody } from "./routes/oauth.js";
import { registerOrganizationRoutes } from "./routes/organizations.js";
import { registerRoleRoutes } from "./routes/roles.js";
import { registerUserRoutes } from "./routes/users.js";
import { ALL_SCOPES, ROUTE_SCOPES, checkScopes, extraScopes } from "./scopes.js";
import { EmulatorState } from "./state.js";
import type {
  CallLogEntry,
  Connection,
  ConnectionSpec,
  EmulatorOptions,
  FaultsInput,
  LoginRequest,
  LoginResult,
  Plan,
  PostLoginHookConfig,
} from "./types.js";
import { isPlainObject, sleep } from "./util.js";

/** Auth0's maximum payload, 1 MB (Auth0 Management API v2 reference, auth0.com/docs/api/management/v2). */
export const MAX_BODY_BYTES = 1024 * 1024;
const MAX_CALL_LOG = 10_000;
const API_PREFIX = "/api/v2";

class PayloadTooLarge extends Error {}

function buildRouter(): Router {
  const router = new Router();
  registerUserRoutes(router);
  registerAccessRoutes(router);
  registerOrganizationRoutes(router);
  registerMemberRoutes(router);
  registerRoleRoutes(router);
  registerConnectionRoutes(router);
  registerImportJobRoutes(router);
  return router;
}

let scopeRouter: Router | undefined;

/**
 * The scopes a Management API call needs, as the emulator enforces them: a list of requirements,
 * each met by any one of its scopes; undefined for a path the emulator does not serve. `path` may
 * carry the /api/v2 prefix and a query string (`fields=roles` on the members list adds a scope).
 */
export function requiredScopes(method: string, path: string): string[][] | undefined {
  const url = new URL(path, "http://emulator.invalid");
  const relative = url.pathname.startsWith(API_PREFIX) ? url.pathname.slice(API_PREFIX.length) : url.pathname;
  const match = (scopeRouter ??= buildRouter()).match(method.toUpperCase(), relative);
  if (!match) return undefined;
  return [...(ROUTE_SCOPES[match.label] ?? []), ...extraScopes(match.label, url.searchParams)].map((anyOf) => [
    ...anyOf,
  ]);
}

/** Labels ("METHOD /pattern") of every route the emulator serves. */
export function routeLabels(): string[] {
  return (scopeRouter ??= buildRouter()).labels();
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let tooLarge = false;
    req.on("data", (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_BODY_BYTES) tooLarge = true;
      else chunks.push(chunk);
    });
    req.on("end", () => (tooLarge ? reject(new PayloadTooLarge()) : resolve(Buffer.concat(chunks).toString("utf8"))));
    req.on("error", reject);
  });
}

function redact(body: unknown): unknown {
  if (isPlainObject(body) && "client_secret" in body) return { ...body, client_secret: "[redacted]" };
  return body;
}

export class EmulatorServer implements ControlTarget {
  readonly state: EmulatorState;
  readonly plan: Plan;
  private readonly router = buildRouter();
  private readonly limiter: RateLimiter;
  private readonly faults: Faults;
  private readonly log: CallLogEntry[] = [];
  private hook: PostLoginHookConfig | undefined;
  private baseUrl = "";
  /** The client grant; checked at request time, so a change applies to tokens already issued. */
  private grant: ReadonlySet<string>;
  readonly oidc: OidcProvider;
  readonly http: Server;

  constructor(private readonly options: EmulatorOptions) {
    this.plan = options.plan ?? "enterprise";
    this.state = new EmulatorState(
      this.plan,
      options.connections ?? [],
      options.searchConsistencyDelayMs ?? 0,
      options.asyncDelayMs ?? 0,
    );
    this.grant = new Set(options.scopes ?? ALL_SCOPES);
    const timing = options.importJobTiming ?? {};
    if (timing.baseMs !== undefined) this.state.importJobs.timing.baseMs = timing.baseMs;
    if (timing.perUserMs !== undefined) this.state.importJobs.timing.perUserMs = timing.perUserMs;
    this.limiter = new RateLimiter(this.plan, options.rateLimits !== false, options.rateScale ?? 1);
    this.faults = new Faults(options.seed ?? 1);
    this.hook = options.postLoginHook;
    this.oidc = new OidcProvider(
      this.state,
      options.oidcClients ?? [],
      options.roleClaimNamespace ?? "https://scim-bridge.dev",
      (r) => this.login(r),
      () => this.baseUrl,
    );
    this.http = createServer((req, res) => void this.handle(req, res));
  }

  setBaseUrl(url: string): void {
    this.baseUrl = url;
  }

  // --- ControlTarget -----------------------------------------------------------------------
  reset(): void {
    this.state.reset();
    this.limiter.reset();
    this.faults.clear();
    this.log.length = 0;
  }
  revokeTokens(): void {
    this.state.tokens.clear();
  }
  dump(): Record<string, unknown> {
    return this.state.dump();
  }
  calls(): CallLogEntry[] {
    return [...this.log];
  }
  clearCalls(): void {
    this.log.length = 0;
  }
  setFaults(faults: FaultsInput): void {
    this.faults.set(faults);
  }
  clearFaults(): void {
    this.faults.clear();
  }
  faultsView(): FaultsView {
    return this.faults.view();
  }
  addConnection(spec: ConnectionSpec): Connection {
    return this.state.addConnection(spec);
  }
  setPostLoginHook(hook: PostLoginHookConfig | undefined): void {
    this.hook = hook;
  }
  postLoginHook(): PostLoginHookConfig | undefined {
    return this.hook;
  }
  login(request: LoginRequest): Promise<LoginResult> {
    this.state.settle();
    return simulateLogin(this.state, this.hook, request);
  }
  setGrantScopes(scopes: string[] | undefined): void {
    this.grant = new Set(scopes ?? ALL_SCOPES);
  }
  grantScopes(): string[] {
    return [...this.grant].sort();
  }
  setAsyncDelay(ms: number): void {
    if (!Number.isFinite(ms) || ms < 0) throw new Error("the async delay is a number of milliseconds ≥ 0");
    this.state.asyncDelayMs = ms;
  }

  // --- HTTP --------------------------------------------------------------------------------
  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const started = Date.now();
    const method = (req.method ?? "GET").toUpperCase();
    const url = new URL(req.url ?? "/", "http://emulator.invalid");
    const path = url.pathname;
    const entry: CallLogEntry = {
      method,
      path,
      query: url.search.replace(/^\?/, ""),
      status: 0,
      time: new Date(started).toISOString(),
      durationMs: 0,
    };
    let reply: Reply;
    let rateHeaders: Record<string, string> = {};
    const isControl = path === "/__emulator" || path.startsWith("/__emulator/");
    try {
      const raw = await readBody(req);
      const contentType = String(req.headers["content-type"] ?? "");
      if (!isControl && this.oidc.handles(method, path)) {
        this.oidc.handle(method, url, raw, res, req);
        return; // OIDC pages and redirects are not Management API calls: not logged, not rate limited
      }
      if (isControl) {
        reply = await handleControl(this, method, path, raw ? this.parseJson(raw, contentType) : undefined);
      } else if (path === "/oauth/token" && method === "POST") {
        const params = parseTokenBody(raw, contentType);
        entry.body = redact(params);
        reply = await this.token(params, req.headers.authorization);
      } else if (path === API_PREFIX || path.startsWith(`${API_PREFIX}/`)) {
        const result = await this.api(
          method,
          path,
          url.searchParams,
          req.headers.authorization,
          raw,
          contentType,
          entry,
        );
        reply = result.reply;
        rateHeaders = result.rateHeaders;
      } else {
        throw routeNotFound();
      }
    } catch (err) {
      if (err instanceof PayloadTooLarge)
        reply = {
          status: 413,
          body: new ApiError(413, "Payload content length greater than maximum allowed: 1048576").toBody(),
        };
      else if (err instanceof ApiError) reply = { status: err.statusCode, body: err.toBody(), headers: err.headers };
      else reply = { status: 500, body: new ApiError(500, "An internal server error occurred").toBody() };
    }
    let sent: Record<string, string> = {};
    try {
      sent = this.send(res, reply, rateHeaders);
    } catch {
      res.destroy(); // the client went away mid-request; nothing to answer
    }
    if (!isControl) {
      if (sent["x-ratelimit-limit"] !== undefined) {
        entry.rateLimit = {
          limit: Number(sent["x-ratelimit-limit"]),
          remaining: Number(sent["x-ratelimit-remaining"]),
          reset: Number(sent["x-ratelimit-reset"]),
        };
      }
      entry.status = reply.status;
      entry.durationMs = Date.now() - started;
      this.log.push(entry);
      if (this.log.length > MAX_CALL_LOG) this.log.splice(0, this.log.length - MAX_CALL_LOG);
      this.options.onCall?.(entry);
    }
  }

  private parseJson(raw: string, contentType: string): unknown {
    if (isMultipart(contentType)) return parseMultipart(raw, contentType);
    if (contentType && !contentType.includes("json")) throw new ApiError(415, "Unsupported Media Type");
    try {
      return JSON.parse(raw) as unknown;
    } catch {
      throw new ApiError(400, "Invalid request payload JSON format", "invalid_body");
    }
  }

  private async token(params: Record<string, string>, authorization: string | undefined): Promise<Reply> {
    const outage = this.faults.outageError();
    if (outage) throw outage;
    const delay = this.faults.latencyFor("POST", "/oauth/token");
    if (delay) await sleep(delay);
    const injected = this.faults.injectedError("POST", "/oauth/token");
    if (injected) throw injected;
    return issueToken(this.state, this.options, params, this.grantScopes(), (p) =>
      this.oidc.exchangeCode(p, authorization),
    );
  }

  private async api(
    method: string,
    path: string,
    query: URLSearchParams,
    authorization: string | undefined,
    raw: string,
    contentType: string,
    entry: CallLogEntry,
  ): Promise<{ reply: Reply; rateHeaders: Record<string, string> }> {
    const outage = this.faults.outageError();
    if (outage) throw outage;
    const storm = this.faults.stormError(path);
    if (storm) throw storm;
    const match = this.router.match(method, path.slice(API_PREFIX.length));
    const decision = this.limiter.take(match?.category ?? "other");
    entry.bucket = decision.bucket;
    let rateHeaders = decision.headers;
    try {
      if (!decision.allowed) {
        rateHeaders = {};
        throw new ApiError(
          429,
          "Too many requests. Check the X-RateLimit-Limit, X-RateLimit-Remaining and X-RateLimit-Reset headers.",
          "too_many_requests",
          decision.headers,
        );
      }
      const delay = this.faults.latencyFor(method, path);
      if (delay) await sleep(delay);
      const injected = this.faults.injectedError(method, path);
      if (injected) throw injected;
      if (!match) throw routeNotFound();
      const clientId = authenticate(this.state, authorization);
      checkScopes([...(ROUTE_SCOPES[match.label] ?? []), ...extraScopes(match.label, query)], this.grant);
      this.state.settle();
      const body = raw ? this.parseJson(raw, contentType) : undefined;
      entry.body = body;
      const env: TenantEnv = { plan: this.plan, baseUrl: this.baseUrl };
      const reply = await match.handler({
        method,
        params: match.params,
        query,
        body,
        state: this.state,
        env,
        clientId,
      });
      return { reply, rateHeaders };
    } catch (err) {
      if (err instanceof ApiError)
        return { reply: { status: err.statusCode, body: err.toBody(), headers: err.headers }, rateHeaders };
      throw err;
    }
  }

  private send(res: ServerResponse, reply: Reply, rateHeaders: Record<string, string>): Record<string, string> {
    const headers: Record<string, string> = { ...rateHeaders, ...(reply.headers ?? {}) };
    if (reply.body !== undefined && reply.status !== 204) {
      const payload = JSON.stringify(reply.body);
      headers["content-type"] = "application/json; charset=utf-8";
      headers["content-length"] = String(Buffer.byteLength(payload));
      res.writeHead(reply.status, headers).end(payload);
    } else {
      res.writeHead(reply.status, headers).end();
    }
    return headers;
  }
}
