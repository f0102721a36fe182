import { Router, type Request, type Response } from "express";
import type { WriteQueue } from "../directory/write-queue.js";
import type { StoreOp } from "../directory/store-op.js";
import { createUser, deleteUser, lockUser, updateUser, type UserResource, type UserRow } from "../directory/users.js";
import { notFound } from "../errors.js";
import { atCredentialEpoch, scimContext } from "./context.js";
import { parseListParams, parseSearchBody } from "./list.js";
import { normalizeResource, type ScimDocument } from "./normalize.js";
import { applyToDocument, expandOperations } from "./patch/apply.js";
import { parsePatchRequest } from "./patch/message.js";
import { parseProjection, type Projection } from "./projection.js";
import { renderUser, type Reader, type ReadRequest } from "./reads.js";
import { etagOf, locationOf } from "./resource.js";
import { readByIdRequest } from "./read-by-id.js";
import { checkIfMatch, sendNoContent, sendRead, sendScim, writeContext, writtenAndRendered } from "./respond.js";
import { userSchema } from "./schema.js";
import { validateDocument } from "./validate.js";

/**
 * /Users (RFC 7644 §3). Each write (resource, audit entry, reconcile job) is one op through the write
 * queue (on SQLite a savepoint of a group-committed IMMEDIATE transaction, durable with
 * synchronous=FULL; on PostgreSQL a transaction of its own) and durable before the response. Reads
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

export function userRoutes(writes: WriteQueue, read: Reader): Router {
  const router = Router({ mergeParams: true });

  // The response's projection is parsed before the write, so a bad one answers 400 with nothing written.
  const projectionOf = (req: Request): Projection =>
    parseProjection(userSchema, req.query.attributes, req.query.excludedAttributes);

  /**
   * Runs the write and renders its user in the same op (rendering may read the sync state). `write`
   * makes a fresh op per attempt: on PostgreSQL a write that lost a deadlock runs again.
   */
  const writeAndRender = (res: Response, projection: Projection, write: () => StoreOp<UserRow>) =>
    writes.run(() => writtenAndRendered(write(), (row) => renderUser(scimContext(res), row, projection)));

  const respondWithUser = (
    res: Response,
    status: number,
    { row, document }: { row: UserRow; document: ScimDocument },
  ): void => {
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
    // A token taken from the cache is confirmed by the insert's own statement (createUser).
    const created = await atCredentialEpoch(res, ctx, (at) =>
      writeAndRender(res, projectionOf(req), () => createUser(writeContext(at), resource)),
    );
    respondWithUser(res, 201, created);
  });

  router.get("/Users/:id", (req, res) => answer(res, readByIdRequest("user", req, res, req.params.id)));

  router.put("/Users/:id", async (req, res) => {
    const { document } = normalizeResource(userSchema, req.body);
    const resource = validateDocument(userSchema, document);
    const written = await writeAndRender(res, projectionOf(req), () =>
      changeUser(req, res, "user.replace", (existing) =>
        // RFC 7644 §3.5.1 replaces every attribute; an omitted `active` keeps the status rather than
        // silently deactivating or reactivating the user. A copy: a retried write reads `existing` anew.
        resource.active === undefined ? { ...resource, active: existing.active } : resource,
      ),
    );
    respondWithUser(res, 200, written);
  });

  router.patch("/Users/:id", async (req, res) => {
    const operations = expandOperations(userSchema, parsePatchRequest(req.body));
    const patch = () =>
      changeUser(req, res, "user.patch", (existing) => {
        const document = JSON.parse(existing.resource) as Record<string, unknown>;
        const resource = validateDocument(userSchema, applyToDocument(userSchema, document, operations));
        if (resource.active === undefined) resource.active = existing.active;
        return resource;
      });
    // docs/design.md, "Contract" / RFC 7644 §3.5.2: 204, or 200 with the resource when the request names attributes.
    if (req.query.attributes !== undefined || req.query.excludedAttributes !== undefined) {
      return respondWithUser(res, 200, await writeAndRender(res, projectionOf(req), patch));
    }
    const row = await writes.run(patch);
    sendNoContent(res, etagOf(row.version));
  });

  router.delete("/Users/:id", async (req, res) => {
    await writes.run(() => removeUser(req, res));
    sendNoContent(res);
  });

  return router;
}
