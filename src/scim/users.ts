import { Router, type Request, type Response } from "express";
import type { WriteQueue } from "../directory/write-queue.js";
import { runSync, type StoreOp } from "../directory/store-op.js";
import { createUser, deleteUser, lockUser, updateUser, type UserResource, type UserRow } from "../directory/users.js";
import type { Db } from "../directory/database.js";
import { notFound } from "../errors.js";
import { scimContext } from "./context.js";
import { parseListParams, parseSearchBody } from "./list.js";
import { normalizeResource } from "./normalize.js";
import { applyToDocument, expandOperations } from "./patch/apply.js";
import { parsePatchRequest } from "./patch/message.js";
import { parseProjection } from "./projection.js";
import { renderUser, type Reader, type ReadRequest } from "./reads.js";
import { etagOf, locationOf } from "./resource.js";
import { readByIdRequest } from "./read-by-id.js";
import { checkIfMatch, sendNoContent, sendRead, sendScim, writeContext } from "./respond.js";
import { userSchema } from "./schema.js";
import { validateDocument } from "./validate.js";

/**
 * /Users (RFC 7644 §3). Each write (resource, audit entry, reconcile job) runs in its own savepoint
 * of a group-committed IMMEDIATE transaction, durable (synchronous=FULL) before the response. Reads
 * go through `read` (./reads.ts): on this thread or in the read pool (docs/design.md, "Concurrency").
 */

const missing = (id: string) => notFound(`User ${id} not found`);

/**
 * The user a PUT, PATCH or DELETE names, locked (lockUser) so that If-Match compares, and the new
 * version follows, the version this write replaces, also when another instance writes it meanwhile.
 */
function* lockedUser(req: Request<{ id: string }>, res: Response): StoreOp<UserRow> {
  const existing = yield* lockUser(scimContext(res).directoryId, req.params.id);
  if (!existing) throw missing(req.params.id);
  checkIfMatch(req, existing.version);
  return existing;
}

/** PUT and PATCH: the new document is built from the locked current one. */
function* changeUser(
  req: Request<{ id: string }>,
  res: Response,
  action: "user.replace" | "user.patch",
  build: (existing: UserRow) => UserResource,
): StoreOp<UserRow> {
  const existing = yield* lockedUser(req, res);
  return yield* updateUser(writeContext(scimContext(res)), existing, build(existing), action);
}

function* removeUser(req: Request<{ id: string }>, res: Response): StoreOp<void> {
  yield* deleteUser(writeContext(scimContext(res)), yield* lockedUser(req, res));
}

export function userRoutes(db: Db, writes: WriteQueue, read: Reader): Router {
  const router = Router({ mergeParams: true });

  const respondWithUser = (req: Request, res: Response, status: number, row: UserRow): void => {
    const projection = parseProjection(userSchema, req.query.attributes, req.query.excludedAttributes);
    const document = renderUser(db, scimContext(res), row, projection);
    if (status === 201) res.location(locationOf(document));
    sendScim(res, status, document, etagOf(row.version));
  };

  const answer = async (res: Response, request: ReadRequest) => sendRead(res, await read(request));

  router.get("/Users", (req, res) =>
    answer(res, { op: "users", ctx: scimContext(res), params: parseListParams(req.query) }),
  );

  router.post("/Users/.search", (req, res) =>
    answer(res, {
      op: "users",
      ctx: scimContext(res),
      params: parseSearchBody(req.body),
    }),
  );

  router.post("/Users", async (req, res) => {
    const ctx = scimContext(res);
    const { document } = normalizeResource(userSchema, req.body);
    const resource = validateDocument(userSchema, document);
    if (resource.active === undefined) resource.active = true;
    const row = await writes.run((tx) => runSync(tx, createUser(writeContext(ctx), resource)));
    respondWithUser(req, res, 201, row);
  });

  router.get("/Users/:id", (req, res) => answer(res, readByIdRequest("user", req, res, req.params.id)));

  router.put("/Users/:id", async (req, res) => {
    const { document } = normalizeResource(userSchema, req.body);
    const resource = validateDocument(userSchema, document);
    const row = await writes.run((tx) =>
      runSync(
        tx,
        changeUser(req, res, "user.replace", (existing) => {
          // RFC 7644 §3.5.1 replaces every attribute; an omitted `active` keeps the status rather than
          // silently deactivating or reactivating the user.
          if (resource.active === undefined) resource.active = existing.active;
          return resource;
        }),
      ),
    );
    respondWithUser(req, res, 200, row);
  });

  router.patch("/Users/:id", async (req, res) => {
    const operations = expandOperations(userSchema, parsePatchRequest(req.body));
    const row = await writes.run((tx) =>
      runSync(
        tx,
        changeUser(req, res, "user.patch", (existing) => {
          const document = JSON.parse(existing.resource) as Record<string, unknown>;
          const resource = validateDocument(userSchema, applyToDocument(userSchema, document, operations));
          if (resource.active === undefined) resource.active = existing.active;
          return resource;
        }),
      ),
    );
    // docs/design.md, "Contract" / RFC 7644 §3.5.2: 204, or 200 with the resource when the request names attributes.
    if (req.query.attributes !== undefined || req.query.excludedAttributes !== undefined)
      return respondWithUser(req, res, 200, row);
    sendNoContent(res, etagOf(row.version));
  });

  router.delete("/Users/:id", async (req, res) => {
    await writes.run((tx) => runSync(tx, removeUser(req, res)));
    sendNoContent(res);
  });

  return router;
}
