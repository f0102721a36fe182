import express, { type ErrorRequestHandler, type RequestHandler, type Router } from "express";
import { registerAdminRoutes } from "../admin/router.js";
import { openApiDocument } from "../admin/openapi.js";
import { AdminRoutes, type AdminDeps } from "../admin/routes.js";
import { isBridgeError } from "../errors.js";
import { adminBearerAuth } from "./admin-auth.js";
import { jsonBody } from "./body.js";
import { endpointNotFound, errorMiddleware } from "./errors.js";
import {
  adminRateLimitDefaults,
  clientAddress,
  tokenRateLimit,
  unauthenticatedLimit,
  unauthenticatedLimitDefaults,
} from "./rate-limit.js";
import { requestId } from "./request-id.js";

/** 256 KiB: the largest admin body is a mapping document, a few KiB. */
export const defaultAdminBodyLimit = 256 * 1024;

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

  router.use(
    adminBearerAuth({ store: deps.store, bootstrapOperatorToken: deps.bootstrapOperatorToken, now: deps.now }),
  );
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
    router.use(
      tokenRateLimit({
        ...limits,
        keyOf: (_req, res) => (res.locals.admin ? `a:${res.locals.admin.tokenId}` : undefined),
        now: deps.now,
      }),
    );
  }
  router.use(jsonBody(deps.bodyLimit ?? defaultAdminBodyLimit));

  const routes = registerAdminRoutes(new AdminRoutes(router, deps), deps);

  router.use(endpointNotFound());
  router.use(errorMiddleware("admin", deps.log));
  return router;
}
