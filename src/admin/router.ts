import express, { type ErrorRequestHandler, type RequestHandler, type Router } from "express";
import { adminBearerAuth } from "../http/admin-auth.js";
import { endpointNotFound, errorMiddleware } from "../http/errors.js";
import { jsonBody } from "../http/body.js";
import { isBridgeError } from "../errors.js";
import { adminRateLimitDefaults, clientAddress, tokenRateLimit, unauthenticatedLimit, unauthenticatedLimitDefaults } from "../http/rate-limit.js";
import { requestId } from "../http/request-id.js";
import { auditRoutes } from "./audit.js";
import { directoryRoutes } from "./directories.js";
import { guardRoutes } from "./guard.js";
import { importRoutes } from "./imports.js";
import { jobRoutes } from "./jobs.js";
import { mappingRoutes } from "./mappings.js";
import { openApiDocument } from "./openapi.js";
import { organizationRoutes } from "./organizations.js";
import { AdminRoutes, type AdminDeps } from "./routes.js";
import { scimRequestRoutes } from "./scim-requests.js";
import { setupLinkRoutes } from "./setup-links.js";
import { adminTokenRoutes } from "./tokens.js";
import { userRoutes } from "./users.js";

export type { AdminDeps } from "./routes.js";

/** 256 KiB: the largest admin body is a mapping document, a few KiB. */
export const defaultAdminBodyLimit = 256 * 1024;

function registerAll(routes: AdminRoutes, deps: AdminDeps): AdminRoutes {
  adminTokenRoutes(routes);
  organizationRoutes(routes);
  directoryRoutes(routes);
  scimRequestRoutes(routes);
  userRoutes(routes);
  mappingRoutes(routes);
  jobRoutes(routes);
  guardRoutes(routes);
  auditRoutes(routes);
  setupLinkRoutes(routes);
  importRoutes(routes, deps.userImports);
  return routes;
}

/**
 * The admin API's routes without HTTP, for the web console: `invoke` applies each route's own access
 * rule, organization check and validation, so the console can never do more than the API would for
 * the same principal.
 */
export function adminService(deps: AdminDeps): Pick<AdminRoutes, "invoke" | "defs"> {
  return registerAll(new AdminRoutes(undefined, deps), deps);
}

/**
 * The admin API, self-contained: mount it at /admin/v1. In order: request id (unless the app set
 * one), the public OpenAPI document (rate limited per address), bearer authentication (failures
 * throttled per address), per-token rate limit, a JSON body parser with a size limit (after
 * authentication, so anonymous bodies are never parsed), the
 * routes, an admin-shaped 404, and the admin error middleware.
 */
export function adminRouter(deps: AdminDeps): Router {
  try {
    new URL(deps.publicUrl);
  } catch {
    throw new Error(`adminRouter: publicUrl is not a URL (got "${deps.publicUrl}")`);
  }
  const router = express.Router();
  const ensureRequestId = requestId();
  router.use(((req, res, next) => (res.locals.requestId ? next() : ensureRequestId(req, res, next))) as RequestHandler);
  const limits = deps.rateLimit === false ? undefined : (deps.rateLimit ?? adminRateLimitDefaults);

  let document: object | undefined;
  // Public and unauthenticated: metered per client address.
  const perAddress = limits ? [tokenRateLimit({ ...limits, keyOf: clientAddress, now: deps.now })] : [];
  router.get("/openapi.json", ...perAddress, (_req, res) => {
    res.json((document ??= openApiDocument(routes.defs)));
  });

  router.use(adminBearerAuth({ db: deps.db, bootstrapOperatorToken: deps.bootstrapOperatorToken, now: deps.now }));
  if (limits) {
    // As on SCIM: a valid token draws from its own bucket (by token id, whatever address it comes
    // from); failed authentications are throttled per client address, never keyed by the presented
    // secret, so a flood of random tokens is answered 429 after the limit instead of one fresh
    // bucket per guess.
    const failures = unauthenticatedLimit({ ...unauthenticatedLimitDefaults, now: deps.now });
    const countFailure: ErrorRequestHandler = (err, req, _res, next) => {
      next(isBridgeError(err) && err.kind === "unauthorized" ? (failures.failed(req) ?? err) : err);
    };
    router.use(countFailure);
    router.use(tokenRateLimit({ ...limits, keyOf: (_req, res) => (res.locals.admin ? `a:${res.locals.admin.tokenId}` : undefined), now: deps.now }));
  }
  router.use(jsonBody(deps.bodyLimit ?? defaultAdminBodyLimit));

  const routes = registerAll(new AdminRoutes(router, deps), deps);

  router.use(endpointNotFound());
  router.use(errorMiddleware("admin", deps.log));
  return router;
}
