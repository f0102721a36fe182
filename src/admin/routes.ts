import type { Request, Response, Router } from "express";
import type { Logger } from "pino";
import { z } from "zod";
import type { Actor } from "../directory/audit.js";
import type { AdminPrincipal } from "../directory/admin-tokens.js";
import type { SqlStore } from "../directory/sql.js";
import type { Change } from "../directory/write-context.js";
import { adminActor, adminPrincipal, assertOrganizationVisible } from "./access.js";
import { getOrganization, type OrganizationRow } from "../directory/organizations.js";
import { forbidden, invalidValue } from "../errors.js";
import { unstorableRefusal, unstorableText } from "../directory/text.js";
import type { ImportApi } from "../sync/import/client.js";
import type { ImportDeps } from "../sync/import/service.js";

/**
 * The admin API's route table. Each route is declared once with its access rule and its zod schemas;
 * the same declaration registers the Express handler and feeds the OpenAPI document (openapi.ts),
 * and test/admin checks that the router and the document agree.
 */
export interface AdminDeps {
  /** The main store (SCIM and admin writes). */
  store: SqlStore;
  /** PUBLIC_URL: SCIM base URLs in responses are built from it. */
  publicUrl: string;
  /** BRIDGE_ADMIN_TOKEN: compared by hash in constant time, never stored in clear. */
  bootstrapOperatorToken?: string;
  log: Logger;
  /** Revokes the user's sessions and refresh tokens now (composition root: Auth0 gateway, deprovision lane). */
  signOut(userId: string, actor: Actor, requestId: string): Promise<{ revoked: boolean; reason?: string }>;
  /** Wakes the job worker after a change enqueued work. */
  notifyWorker?(): void;
  /** User imports (Auth0 import jobs); without it only dry runs are possible. */
  userImports?: AdminImportDeps;
  now?: () => number;
  /** Per-token limit; false turns it off (tests of other things). Defaults: adminRateLimitDefaults. */
  rateLimit?: { ratePerSecond: number; burst: number } | false;
  /** JSON body limit (default 256 KiB: a mapping document is a few KiB). */
  bodyLimit?: number;
}

/** What user imports need: the bridge's Auth0 import-job client and the gateway. */
export interface AdminImportDeps {
  api: ImportApi;
  gateway: ImportDeps["gateway"];
}

/**
 * "operator": operator tokens only. "organization": an org-admin of the :org in the path, or an
 * operator. "authenticated": any valid admin token (nothing tenant-specific beyond the caller's own).
 */
export type Access = "operator" | "organization" | "authenticated";
export type Method = "get" | "post" | "patch" | "delete";

export interface RouteDef<B extends z.ZodType = z.ZodType, Q extends z.ZodObject = z.ZodObject> {
  method: Method;
  /** Express path below /admin/v1, e.g. "/organizations/:org/users". */
  path: string;
  access: Access;
  tag: string;
  summary: string;
  description?: string;
  body?: B;
  query?: Q;
  /** Status of a successful answer. */
  status: number;
  /** Error statuses this route can answer besides the common ones (400, 401, 403/404, 413, 429). */
  errors?: number[];
}

export interface RouteContext<B, Q> {
  req: Request;
  res: Response;
  deps: AdminDeps;
  principal: AdminPrincipal;
  actor: Actor;
  requestId: string;
  now: number;
  /** Actor, request id and time together, as every store write takes them. */
  change: Change;
  body: B;
  query: Q;
  /** The :org of the path, resolved and checked (404 for another tenant's); undefined on routes without :org. */
  organization: OrganizationRow;
  param(name: string): string;
}

/** A handler answers its result, or a promise of it (every handler that reads the store is async). */
export type RouteHandler<B, Q> = (ctx: RouteContext<B, Q>) => unknown;

/** The first problem of a zod error as "field: reason", so that a 400 names the field. */
export function describeZodError(error: z.ZodError, where: "body" | "query"): string {
  const issue = error.issues[0];
  if (!issue) return `invalid ${where}`;
  const path = issue.path.map(String).join(".");
  const field =
    path === ""
      ? where === "body"
        ? "request body"
        : "query"
      : `${where === "query" ? "query parameter " : ""}${path}`;
  return `${field}: ${issue.message}`;
}

export function parseWith<T extends z.ZodType>(schema: T, input: unknown, where: "body" | "query"): z.output<T> {
  const result = schema.safeParse(input);
  if (!result.success) throw invalidValue(describeZodError(result.error, where));
  return result.data;
}

/** One call of an admin route without HTTP: the console runs the API's own routes through this. */
export interface AdminCall {
  principal: AdminPrincipal;
  /** Overrides the principal's audit actor (e.g. a console user rather than a token id). */
  actor?: Actor;
  params?: Record<string, string>;
  query?: Record<string, unknown>;
  body?: unknown;
  requestId: string;
}

type Registered = { def: RouteDef; handler: RouteHandler<unknown, unknown>; pattern: RegExp; names: string[] };

export class AdminRoutes {
  readonly defs: RouteDef[] = [];
  private readonly registered: Registered[] = [];

  /** Without a router the table is still complete: invoke() runs its routes in-process. */
  constructor(
    private readonly router: Router | undefined,
    private readonly deps: AdminDeps,
  ) {}

  add<B extends z.ZodType = z.ZodUndefined, Q extends z.ZodObject = z.ZodObject<Record<string, never>>>(
    def: RouteDef<B, Q>,
    handler: RouteHandler<z.output<B>, z.output<Q>>,
  ): void {
    // Fail at construction: an organization-scoped route must name the organization it is scoped to.
    if (def.access === "organization" && !def.path.includes(":org"))
      throw new Error(`route ${def.path}: "organization" access needs :org in the path`);
    this.defs.push(def as unknown as RouteDef);
    const names: string[] = [];
    const pattern = new RegExp(`^${def.path.replace(/:(\w+)/g, (_m, n: string) => (names.push(n), "([^/]+)"))}$`);
    this.registered.push({
      def: def as unknown as RouteDef,
      handler: handler as RouteHandler<unknown, unknown>,
      pattern,
      names,
    });
    this.router?.[def.method](def.path, async (req, res) => {
      const result = await this.run(def as unknown as RouteDef, handler as RouteHandler<unknown, unknown>, {
        principal: adminPrincipal(res),
        params: req.params as Record<string, string>,
        query: (req.query ?? {}) as Record<string, unknown>,
        body: req.body,
        requestId: res.locals.requestId,
        req,
        res,
      });
      if (res.headersSent) return;
      if (def.status === 204) res.status(204).end();
      else res.status(def.status).json(result);
    });
  }

  /**
   * Runs the route `method path` (a concrete path such as "/organizations/acme/users") for a principal,
   * with the same access rule, organization check, validation and handler as over HTTP, so a caller
   * in-process can never do more than the API allows that principal.
   */
  async invoke(method: Method, path: string, call: AdminCall): Promise<unknown> {
    for (const r of this.registered) {
      if (r.def.method !== method) continue;
      const m = r.pattern.exec(path);
      if (!m) continue;
      const params: Record<string, string> = { ...call.params };
      r.names.forEach((n, i) => (params[n] = decodeURIComponent(m[i + 1]!)));
      return this.run(r.def, r.handler, { ...call, params, query: call.query ?? {} });
    }
    throw new Error(`no admin route ${method.toUpperCase()} ${path}`);
  }

  private async run(
    def: RouteDef,
    handler: RouteHandler<unknown, unknown>,
    call: AdminCall & { req?: Request; res?: Response },
  ): Promise<unknown> {
    const deps = this.deps;
    const { principal } = call;
    // Function-level authorization first, before any lookup, so a 403 reveals nothing.
    if (def.access === "operator" && principal.scope !== "operator")
      throw forbidden("this route needs an operator token");
    const params = call.params ?? {};
    // Before any lookup: PostgreSQL refuses U+0000 and an unpaired surrogate as a parameter (a 503
    // there), and no stored id, slug or name holds one, so both dialects refuse them alike (400).
    for (const v of [...Object.values(params), ...Object.values(call.query ?? {}).flat()])
      if (typeof v === "string" && unstorableText.test(v))
        throw invalidValue(unstorableRefusal("path and query parameters"));
    const param = (name: string): string => {
      const v = params[name];
      if (v === undefined) throw new Error(`route ${def.path} has no :${name}`);
      return v;
    };
    let organization: OrganizationRow | undefined;
    if (params.org !== undefined)
      organization = assertOrganizationVisible(
        principal,
        await deps.store.read(getOrganization(params.org)),
        params.org,
      );
    const query = def.query ? parseWith(def.query, call.query ?? {}, "query") : {};
    const body = def.body ? parseWith(def.body, call.body ?? {}, "body") : undefined;
    const actor = call.actor ?? adminActor(principal);
    const now = (deps.now ?? Date.now)();
    const ctx: RouteContext<unknown, unknown> = {
      req: call.req as Request,
      res: call.res as Response,
      deps,
      principal,
      actor,
      requestId: call.requestId,
      now,
      change: { actor, requestId: call.requestId, at: now },
      body,
      query,
      organization: organization as OrganizationRow,
      param,
    };
    return handler(ctx);
  }
}

/** Query helpers shared by the route modules. */
export const limitParam = (max: number, fallback: number) => z.coerce.number().int().min(1).max(max).default(fallback);

export function intParam(value: string, name: string): number {
  if (!/^[1-9]\d{0,15}$/.test(value)) throw invalidValue(`${name} must be a positive whole number`);
  return Number(value);
}

/** Epoch ms as ISO 8601 (UTC, as NIST AU-8 asks), null stays null. */
export const iso = (ms: number | null | undefined): string | null =>
  ms === null || ms === undefined ? null : new Date(ms).toISOString();

/** A time filter given as ISO 8601 or epoch milliseconds. */
export const timeParam = z.string().transform((v, ctx) => {
  const ms = /^\d+$/.test(v) ? Number(v) : Date.parse(v);
  if (!Number.isFinite(ms)) {
    ctx.addIssue({ code: "custom", message: "must be an ISO 8601 time or epoch milliseconds" });
    return z.NEVER;
  }
  return ms;
});
