import { Router, type Request, type Response } from "express";
import { asc, desc } from "drizzle-orm";
import { users } from "../../db/schema.js";
import type { Db } from "../directory/database.js";
import { directoryGeneration } from "../directory/generations.js";
import type { WriteQueue } from "../directory/write-queue.js";
import {
  countUsers,
  createUser,
  deleteUser,
  getUser,
  listUsers,
  updateUser,
  type UserRow,
} from "../directory/users.js";
import { readSnapshot } from "../directory/statements.js";
import { notFound } from "../errors.js";
import type { QueryBudget } from "./cost.js";
import { scimContext, type ScimContext } from "./context.js";
import { filterToSql } from "./filter/sql.js";
import { sortExpression, usersTarget } from "./filter/targets.js";
import { listResponse, parseListParams, type ListParams } from "./list.js";
import { resultSetKey, type PageAnchors } from "./paging.js";
import { normalizeResource } from "./normalize.js";
import { applyToDocument, expandOperations } from "./patch/apply.js";
import { parsePatchRequest } from "./patch/message.js";
import { parseProjection, project, requests } from "./projection.js";
import { etagOf, locationOf, userToScim, withSyncState } from "./resource.js";
import { checkIfMatch, notModified, sendNoContent, sendNotModified, sendScim, writeContext } from "./respond.js";
import { syncStateUrn, userSchema } from "./schema.js";
import { syncStates } from "../sync/sync-state.js";
import { validateDocument } from "./validate.js";

/**
 * /Users (RFC 7644 §3). Each write (resource, audit entry, reconcile job) runs in its own savepoint
 * of a group-committed IMMEDIATE transaction, durable (synchronous=FULL) before the response.
 */

const missing = (id: string) => notFound(`User ${id} not found`);

/** A page of users: count and rows read in one transaction, so totalResults matches the page. */
export function searchUsers(
  db: Db,
  ctx: ScimContext,
  params: ListParams,
  offset = params.startIndex - 1,
  limit = params.count,
  budget?: QueryBudget,
  anchors?: PageAnchors,
) {
  // Priced before it runs: a statement cannot be interrupted once started (see ./cost.ts).
  budget?.charge(ctx.directoryId, userSchema, {
    filter: params.filter,
    sortBy: params.sortBy,
    rows: countUsers(db, ctx.directoryId),
  });
  const target = usersTarget(ctx.directoryId);
  const where = params.filter ? filterToSql(params.filter, target) : undefined;
  const orderBy = params.sortBy
    ? [
        params.descending ? desc(sortExpression(target, params.sortBy)) : asc(sortExpression(target, params.sortBy)),
        asc(users.createdAt),
        asc(users.id),
      ]
    : [asc(users.createdAt), asc(users.id)];
  const projection = parseProjection(userSchema, params.attributes, params.excludedAttributes);
  const key = anchors && !params.sortBy ? resultSetKey(ctx.directoryId, "User", where) : undefined;
  return readSnapshot(db, () => {
    const total = countUsers(db, ctx.directoryId, where);
    if (limit <= 0 || offset >= total) return { total, resources: [] };
    const generation = key ? directoryGeneration(db, ctx.directoryId) : 0;
    const after = key && offset > 0 ? anchors?.at(key, generation, offset + 1) : undefined;
    const rows = listUsers(db, ctx.directoryId, { where, orderBy, offset: after ? 0 : offset, limit, after });
    const last = rows[rows.length - 1];
    if (key && last && rows.length === limit) anchors?.remember(key, generation, offset + 1 + rows.length, last);
    const states = requests(projection, syncStateUrn)
      ? syncStates(
          db,
          ctx.organizationId,
          rows.map((r) => r.id),
        )
      : undefined;
    return {
      total,
      resources: rows.map((row) => project(withSyncState(userToScim(ctx, row), states?.get(row.id)), projection)),
    };
  });
}

export function userRoutes(db: Db, writes: WriteQueue, budget?: QueryBudget, anchors?: PageAnchors): Router {
  const router = Router({ mergeParams: true });

  const respondWithUser = (req: Request, res: Response, status: number, row: UserRow): void => {
    const ctx = scimContext(res);
    const projection = parseProjection(userSchema, req.query.attributes, req.query.excludedAttributes);
    const state = requests(projection, syncStateUrn)
      ? syncStates(db, ctx.organizationId, [row.id]).get(row.id)
      : undefined;
    const document = withSyncState(userToScim(ctx, row), state);
    if (status === 201) res.location(locationOf(document));
    sendScim(res, status, project(document, projection), etagOf(row.version));
  };

  router.get("/Users", (req, res) => {
    const params = parseListParams(req.query);
    const { total, resources } = searchUsers(db, scimContext(res), params, undefined, undefined, budget, anchors);
    sendScim(res, 200, listResponse(total, params.startIndex, resources));
  });

  router.post("/Users/.search", (req, res) => {
    const params = parseListParams(
      typeof req.body === "object" && req.body !== null ? (req.body as Record<string, unknown>) : {},
    );
    const { total, resources } = searchUsers(db, scimContext(res), params, undefined, undefined, budget, anchors);
    sendScim(res, 200, listResponse(total, params.startIndex, resources));
  });

  router.post("/Users", async (req, res) => {
    const ctx = scimContext(res);
    const { document } = normalizeResource(userSchema, req.body);
    const resource = validateDocument(userSchema, document);
    if (resource.active === undefined) resource.active = true;
    const row = await writes.run((tx) => createUser(tx, writeContext(ctx), resource));
    respondWithUser(req, res, 201, row);
  });

  router.get("/Users/:id", (req, res) => {
    const ctx = scimContext(res);
    const row = getUser(db, ctx.directoryId, req.params.id);
    if (!row) throw missing(req.params.id);
    if (notModified(req, row.version)) return sendNotModified(res, etagOf(row.version));
    respondWithUser(req, res, 200, row);
  });

  router.put("/Users/:id", async (req, res) => {
    const ctx = scimContext(res);
    const { document } = normalizeResource(userSchema, req.body);
    const resource = validateDocument(userSchema, document);
    const row = await writes.run((tx) => {
      const existing = getUser(tx, ctx.directoryId, req.params.id);
      if (!existing) throw missing(req.params.id);
      checkIfMatch(req, existing.version);
      // RFC 7644 §3.5.1 replaces every attribute; an omitted `active` keeps the status rather than
      // silently deactivating or reactivating the user.
      if (resource.active === undefined) resource.active = existing.active;
      return updateUser(tx, writeContext(ctx), existing, resource, "user.replace");
    });
    respondWithUser(req, res, 200, row);
  });

  router.patch("/Users/:id", async (req, res) => {
    const ctx = scimContext(res);
    const operations = expandOperations(userSchema, parsePatchRequest(req.body));
    const row = await writes.run((tx) => {
      const existing = getUser(tx, ctx.directoryId, req.params.id);
      if (!existing) throw missing(req.params.id);
      checkIfMatch(req, existing.version);
      const patched = applyToDocument(userSchema, JSON.parse(existing.resource) as Record<string, unknown>, operations);
      const resource = validateDocument(userSchema, patched);
      if (resource.active === undefined) resource.active = existing.active;
      return updateUser(tx, writeContext(ctx), existing, resource, "user.patch");
    });
    // docs/design.md, "Contract" / RFC 7644 §3.5.2: 204, or 200 with the resource when the request names attributes.
    if (req.query.attributes !== undefined || req.query.excludedAttributes !== undefined)
      return respondWithUser(req, res, 200, row);
    sendNoContent(res, etagOf(row.version));
  });

  router.delete("/Users/:id", async (req, res) => {
    const ctx = scimContext(res);
    await writes.run((tx) => {
      const existing = getUser(tx, ctx.directoryId, req.params.id);
      if (!existing) throw missing(req.params.id);
      checkIfMatch(req, existing.version);
      deleteUser(tx, writeContext(ctx), existing);
    });
    sendNoContent(res);
  });

  return router;
}
