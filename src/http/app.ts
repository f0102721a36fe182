import express, { Router, type ErrorRequestHandler, type Express, type RequestHandler } from "express";
import { pino, type Logger } from "pino";
import type { SqlStore } from "../directory/sql.js";
import { scimBaseUrl } from "../directory/directories.js";
import { isBridgeError } from "../errors.js";
import type { QueryBudget } from "../scim/cost.js";
import { confirmsOwnCredential, scimRoutes, type ReadRunner } from "../scim/routes.js";
import { scimBearerAuth } from "./auth.js";
import { defaultBodyLimit, scimJsonBody } from "./body.js";
import { endpointNotFound, errorMiddleware } from "./errors.js";
import { parseQueryString } from "./query.js";
import {
  afterBody,
  concurrencyLimit,
  directoryKey,
  loopBudget,
  processEventLoopLag,
  requestMeter,
  scimConcurrencyDefault,
  scimRequestBudgetDefaultMs,
  tokenRateLimit,
  unauthenticatedLimit,
  unauthenticatedLimitDefaults,
} from "./rate-limit.js";
import { requestId } from "./request-id.js";

export interface AppDeps {
  /** The store SCIM requests read and write (token checks, reads, the write queue). */
  store: SqlStore;
  /** PUBLIC_URL: SCIM base URLs and meta.location are built from it, never from the Host header. */
  publicUrl: string;
  log?: Logger;
  /** Request body limit for SCIM, in bytes (default 1 MiB). */
  bodyLimit?: number;
  /**
   * Further parts of the product (admin API at /admin/v1, /hooks/auth0/post-login, /metrics,
   * /healthz), mounted after SCIM. Errors they pass to next() are rendered by the same middleware:
   * the admin JSON shape outside /scim/. They parse their own bodies (see jsonBody in ./body.js).
   */
  extraRouters?: { path: string; router: RequestHandler }[];
  /** App-wide middleware after the request id (metrics, request logging). */
  middleware?: RequestHandler[];
  /** SCIM middleware before authentication (the request log, which records authenticated requests only). */
  scimMiddleware?: RequestHandler[];
  /**
   * Requests per second per directory, after authentication (whichever of its tokens a request
   * carries), and requests of a directory served at once (default scimConcurrencyDefault; one while
   * the event loop is behind, unless shedWhenBehind is false); off when absent.
   */
  scimRateLimit?: {
    ratePerSecond: number;
    burst: number;
    concurrency?: number;
    shedWhenBehind?: boolean;
    /** The directory's share of the event loop (scimLoopBudgetDefaults); unlimited when absent. */
    loop?: { msPerSecond: number; burstMs: number };
  };
  /** Time budget of one SCIM request in ms (default scimRequestBudgetDefaultMs). */
  scimRequestBudgetMs?: number;
  /** Failed authentications per client address and directory URL (default unauthenticatedLimitDefaults). */
  unauthenticatedLimit?: { ratePerSecond: number; burst: number };
  /** Counts each unauthenticated refusal (metrics): "rejected" (401) or "limited" (429). */
  onUnauthenticated?: (outcome: "rejected" | "limited") => void;
  /** Per-directory budget for expensive filters and sorts (default: costLimits in src/scim/cost.ts). */
  queryBudget?: QueryBudget;
  /** Express's "trust proxy": whose X-Forwarded-For names the client (Config.trustProxy). Default none. */
  trustProxy?: false | number | string[];
  /** Where SCIM reads run (the read pool); absent: on the main thread. */
  readPool?: ReadRunner;
  /**
   * Store for bookkeeping writes that need no fsync of their own (a token's last use); on SQLite the
   * worker's synchronous=NORMAL connection in `serve`. Defaults to `store`.
   */
  bookkeeping?: SqlStore;
}

/**
 * A request whose cached token its read did not confirm (it failed or was refused before its read)
 * has the token checked against the store first: a token revoked meanwhile is answered 401, whatever
 * else went wrong.
 */
const confirmBeforeError: ErrorRequestHandler = (err, _req, res, next) => {
  const confirm = res.locals.confirmCredential;
  if (!confirm) return next(err);
  res.locals.confirmCredential = undefined;
  confirm().then(() => next(err), next);
};

/**
 * The HTTP pipeline, in order: request id → SCIM (meter and time budget → bearer auth → failed-auth
 * throttle → per-directory concurrency, event-loop share and rate limit → body → routes → 404 → SCIM errors)
 * → extra routers → 404 → errors. Auth runs before the body is read: an unauthenticated client
 * cannot make us parse a megabyte.
 */
export function createApp(deps: AppDeps): Express {
  const publicUrl = new URL(deps.publicUrl).toString().replace(/\/+$/, "");
  const log = deps.log ?? pino({ level: "silent" });
  const app = express();
  app.disable("x-powered-by");
  // ETags are meta.version, set by the SCIM layer; Express's body hashes would contradict them.
  app.set("etag", false);
  app.set("query parser", parseQueryString);
  if (deps.trustProxy) app.set("trust proxy", deps.trustProxy);
  app.use(requestId());
  for (const m of deps.middleware ?? []) app.use(m);

  const scim = Router({ mergeParams: true });
  const loop = deps.scimRateLimit?.loop ? loopBudget({ ...deps.scimRateLimit.loop, keyOf: directoryKey }) : undefined;
  // First: every request's event-loop time is metered from here, and its time budget starts.
  scim.use(requestMeter(deps.scimRequestBudgetMs ?? scimRequestBudgetDefaultMs, loop?.charge));
  for (const m of deps.scimMiddleware ?? []) scim.use(m);
  const failures = unauthenticatedLimit({
    ...(deps.unauthenticatedLimit ?? unauthenticatedLimitDefaults),
    onRefused: deps.onUnauthenticated,
  });
  scim.use(
    scimBearerAuth(
      deps.store,
      (_req, res, principal) => {
        res.locals.scim = {
          directoryId: principal.directoryId,
          organizationId: principal.organizationId,
          baseUrl: scimBaseUrl(publicUrl, principal.directoryId),
          requestId: res.locals.requestId,
          actor: { type: "directory", id: principal.directoryId },
          ...(principal.cachedAt ? { credentialEpoch: principal.cachedAt.epoch } : {}),
        };
        res.locals.confirmCredential = principal.cachedAt?.confirm;
      },
      deps.bookkeeping,
      confirmsOwnCredential,
    ),
  );
  // Failed authentications are throttled per client address and directory: 401 up to the limit, then 429.
  const countFailure: ErrorRequestHandler = (err, req, _res, next) => {
    next(isBridgeError(err) && err.kind === "unauthorized" ? (failures.failed(req) ?? err) : err);
  };
  scim.use(countFailure);
  if (deps.scimRateLimit) {
    // Concurrency first: a request refused for it does not spend a token of the rate limit.
    const lag = deps.scimRateLimit.shedWhenBehind === false ? undefined : processEventLoopLag();
    scim.use(concurrencyLimit(deps.scimRateLimit.concurrency ?? scimConcurrencyDefault, directoryKey, lag?.overloaded));
    if (loop) scim.use(loop.gate);
    scim.use(tokenRateLimit({ ...deps.scimRateLimit, keyOf: directoryKey }));
  }
  scim.use(scimJsonBody(deps.bodyLimit ?? defaultBodyLimit));
  scim.use(afterBody());
  scim.use(...scimRoutes(deps.store, deps.queryBudget, deps.readPool));
  scim.use(endpointNotFound());
  scim.use(confirmBeforeError);
  scim.use(errorMiddleware("scim", log));
  app.use("/scim/v2/:directoryId", scim);

  for (const extra of deps.extraRouters ?? []) app.use(extra.path, extra.router);
  app.use(endpointNotFound());
  app.use(errorMiddleware("auto", log));
  return app;
}
