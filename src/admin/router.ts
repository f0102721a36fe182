import express, { type RequestHandler, type Router } from "express";
import { adminBearerAuth } from "../http/admin-auth.js";
import { endpointNotFound, errorMiddleware } from "../http/errors.js";
import { jsonBody } from "../http/body.js";
import { adminRateLimitDefaults, bearerKey, tokenRateLimit } from "../http/rate-limit.js";
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
 * The admin API, self-contained: mount it at /admin/v1. In order: request id (unless the
 * app set one), per-token rate limit, the public OpenAPI document, bearer authentication, a JSON
 * body parser with a size limit (after authentication, so anonymous bodies are never parsed), the
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
  if (deps.rateLimit !== false) router.use(tokenRateLimit({ ...(deps.rateLimit ?? adminRateLimitDefaults), keyOf: bearerKey, now: deps.now }));

  let document: object | undefined;
  router.get("/openapi.json", (_req, res) => {
    res.json((document ??= openApiDocument(routes.defs)));
  });

  router.use(adminBearerAuth({ db: deps.db, bootstrapOperatorToken: deps.bootstrapOperatorToken, now: deps.now }));
  router.use(jsonBody(deps.bodyLimit ?? defaultAdminBodyLimit));

  const routes = registerAll(new AdminRoutes(router, deps), deps);

  router.use(endpointNotFound());
  router.use(errorMiddleware("admin", deps.log));
  return router;
}
