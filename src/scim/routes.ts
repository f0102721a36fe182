import type { Request, RequestHandler, Response } from "express";
import { registerFold } from "../directory/fold.js";
import { sqliteConnectionOf, type SqlStore } from "../directory/sql.js";
import { notFound } from "../errors.js";
import { atCredentialEpoch } from "./context.js";
import { createWriteQueue } from "../directory/write-queue.js";
import { QueryBudget, meteredWrites } from "./cost.js";
import { discoveryRoutes } from "./discovery.js";
import { groupRoutes } from "./groups.js";
import { PageAnchors } from "./paging.js";
import {
  chargeRead,
  readOp,
  runsInline,
  storeReader,
  type ReadRequest,
  type ReadResult,
  type Reader,
} from "./reads.js";
import { readByIdRequest } from "./read-by-id.js";
import { sendRead } from "./respond.js";
import { rootSearchRoutes } from "./search.js";
import { userRoutes } from "./users.js";

/** Where reads run when not on this thread: the read pool (./read-pool.ts). */
export interface ReadRunner {
  /** `heavy`: a scan (see heavyReadUnits in ./reads.ts). */
  run(request: ReadRequest, heavy: boolean): Promise<ReadResult>;
}

/**
 * Every SCIM endpoint of one directory, mounted under `/scim/v2/:directoryId` after authentication.
 * Resource names match case-insensitively (Express's default; the Microsoft suite GETs /users).
 * With `pool` (SQLite only: worker threads with read-only connections of their own), reads run in
 * its threads, except those bounded by one index lookup; all are priced here, against one budget per
 * directory (docs/design.md, "Concurrency"). Without one, and always on PostgreSQL, each read is one
 * `store.read` on this thread.
 */
export function scimRoutes(
  store: SqlStore,
  budget: QueryBudget = new QueryBudget(),
  pool?: ReadRunner,
): RequestHandler[] {
  // Filters and sorts on caseExact=false attributes call scim_fold (Unicode case folding) in SQL;
  // PostgreSQL's filters use its own functions.
  const sqlite = sqliteConnectionOf(store);
  if (sqlite) registerFold(sqlite);
  // One write queue for every SCIM write of this app (group commit on SQLite, see
  // src/directory/write-queue.ts), each write timed on its request's meter and refused past its
  // request's deadline (./cost.ts).
  const writes = meteredWrites(createWriteQueue(store));
  // Reads bounded by one index lookup stay here (see runsInline); the rest go to the pool. Page
  // anchors of this app's store only (see ./paging.ts); each pool worker keeps its own.
  const read: Reader =
    pool && store.dialect === "sqlite"
      ? async (request) =>
          runsInline(request)
            ? store.read(readOp(request))
            : pool.run(request, (await store.read(chargeRead(request, budget))).heavy)
      : storeReader(store, budget, new PageAnchors());
  // Mounted side by side rather than under one more router (each level re-parses the URL and re-merges
  // params), the busiest first: their paths do not overlap, so the order changes only what a request
  // walks past before its route.
  return [
    unstorableIds,
    readsById(read),
    userRoutes(writes, read),
    groupRoutes(writes, read),
    rootSearchRoutes(read),
    discoveryRoutes(),
  ];
}

/**
 * GET or HEAD `/Users/{id}` or `/Groups/{id}` as Express's route `/Users/:id` matches it: resource name
 * in any case, an optional trailing slash, the query after `?`. An id holding `%` is left to Express
 * (its percent-decoding, and the 400 of a malformed one), like every other path.
 */
const byIdPath = /^\/(?:(users)|groups)\/([^/?%]+)\/?(?:\?|$)/i;

/** A GET or HEAD of a user by id that readsById answers: its read can confirm a cached token (readAtEpoch). */
export const confirmsOwnCredential = (req: Request): boolean =>
  req.method === "POST"
    ? createsUser.test(req.url)
    : (req.method === "GET" || req.method === "HEAD") && byIdPath.exec(req.url)?.[1] !== undefined;
const createsUser = /^\/users\/?(?:\?|$)/i;

/**
 * The busiest SCIM requests, GET by id, answered before the resource routers: the same route
 * templates, parameters and read (readOp through `read`) as `GET /Users/:id` in ./users.ts, without
 * Express's per-router dispatch and parameter merging, and with the query string parsed once (Express 5
 * parses it again on every `req.query`). Any other request passes on unchanged.
 */
const resourcePath = /^\/(?:(users)|groups)\/([^/]+)\/?$/i;

/**
 * No id the bridge issues holds U+0000, and PostgreSQL text cannot hold one ("Character Types"), so a
 * query for it would fail there: a resource path naming such an id answers 404 as any unknown id does,
 * before any query, on either store.
 */
const unstorableIds: RequestHandler = (req, _res, next) => {
  const m = req.path.includes("%00") ? resourcePath.exec(req.path) : null;
  if (!m) return next();
  let id: string;
  try {
    id = decodeURIComponent(m[2]!);
  } catch {
    return next();
  }
  if (!id.includes("\0")) return next();
  next(notFound(`${m[1] === undefined ? "Group" : "User"} ${id} not found`));
};

function readsById(read: Reader): RequestHandler {
  const userRoute = { path: "/Users/:id" };
  const groupRoute = { path: "/Groups/:id" };
  const send = (res: Response, result: Promise<ReadResult>): Promise<void> => result.then((r) => sendRead(res, r));
  return (req: Request, res, next) => {
    if (req.method !== "GET" && req.method !== "HEAD") return next();
    const m = byIdPath.exec(req.url);
    if (!m) return next();
    const id = m[2]!;
    const user = m[1] !== undefined;
    req.params = { ...req.params, id };
    // Names the route for the request log and metrics (src/logging.ts, trackRoute), as Express would.
    (req as { route?: unknown }).route = user ? userRoute : groupRoute;
    const request = readByIdRequest(user ? "user" : "group", req, res, id);
    return send(res, readAtEpoch(read, request, res));
  };
}

/**
 * A read whose token came from the cache (ScimContext.credentialEpoch): its statement confirms the
 * epoch. When the epoch moved (any token's revocation, expiry or deletion, anywhere), the token is
 * checked against the store, then read as usual; a token that no longer holds is refused (401).
 */
function readAtEpoch(read: Reader, request: ReadRequest, res: Response): Promise<ReadResult> {
  return atCredentialEpoch(res, request.ctx, (ctx) => read({ ...request, ctx }));
}
