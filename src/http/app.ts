import express, { Router, type Express, type RequestHandler } from "express";
import { pino, type Logger } from "pino";
import type { Db } from "../directory/database.js";
import { scimBaseUrl } from "../directory/directories.js";
import { scimRoutes } from "../scim/routes.js";
import { scimBearerAuth } from "./auth.js";
import { defaultBodyLimit, scimJsonBody } from "./body.js";
import { endpointNotFound, errorMiddleware } from "./errors.js";
import { parseQueryString } from "./query.js";
import { requestId } from "./request-id.js";

export interface AppDeps {
  db: Db;
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
  /** SCIM middleware before authentication (request log, per-token rate limit), so refused requests count too. */
  scimMiddleware?: RequestHandler[];
  /** Called after a SCIM write answered 2xx: wakes the sync worker so deprovisioning starts at once. */
  onScimWrite?: () => void;
  /**
   * Connection for bookkeeping writes that need no fsync of their own (a token's last use); the
   * worker's synchronous=NORMAL connection in `serve`. Defaults to `db`.
   */
  bookkeepingDb?: Db;
}

/**
 * The HTTP pipeline, in order: request id → SCIM (bearer auth → body → routes → 404 → SCIM errors)
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
  app.use(requestId());
  for (const m of deps.middleware ?? []) app.use(m);

  const scim = Router({ mergeParams: true });
  // Before auth: failed logins are logged and rate-limited too.
  for (const m of deps.scimMiddleware ?? []) scim.use(m);
  scim.use(
    scimBearerAuth(deps.db, (_req, res, principal) => {
      res.locals.scim = {
        directoryId: principal.directoryId,
        organizationId: principal.organizationId,
        baseUrl: scimBaseUrl(publicUrl, principal.directoryId),
        requestId: res.locals.requestId,
        actor: { type: "directory", id: principal.directoryId },
      };
    }, deps.bookkeepingDb),
  );
  if (deps.onScimWrite) {
    // One wake per turn of the event loop however many writes a group commit answered, and after the
    // answers are on their way rather than between them.
    const onScimWrite = deps.onScimWrite;
    let waking = false;
    const wake = (): void => {
      if (waking) return;
      waking = true;
      setImmediate(() => {
        waking = false;
        onScimWrite();
      });
    };
    scim.use((req, res, next) => {
      if (req.method !== "GET") res.on("finish", () => res.statusCode < 300 && wake());
      next();
    });
  }
  scim.use(scimJsonBody(deps.bodyLimit ?? defaultBodyLimit));
  scim.use(scimRoutes(deps.db));
  scim.use(endpointNotFound());
  scim.use(errorMiddleware("scim", log));
  app.use("/scim/v2/:directoryId", scim);

  for (const extra of deps.extraRouters ?? []) app.use(extra.path, extra.router);
  app.use(endpointNotFound());
  app.use(errorMiddleware("auto", log));
  return app;
}
