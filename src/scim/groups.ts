import { Router, type Request, type Response } from "express";
import { asc, desc } from "drizzle-orm";
import { groups } from "../../db/schema.js";
import type { Db, DbOrTx } from "../directory/database.js";
import { directoryGeneration } from "../directory/generations.js";
import type { WriteQueue } from "../directory/write-queue.js";
import {
  countGroups,
  createGroup,
  deleteGroup,
  getGroup,
  listGroups,
  updateGroup,
  type GroupRow,
} from "../directory/groups.js";
import { listMembers } from "../directory/members.js";
import { readSnapshot } from "../directory/statements.js";
import { notFound } from "../errors.js";
import type { QueryBudget } from "./cost.js";
import { scimContext, type ScimContext } from "./context.js";
import { filterToSql } from "./filter/sql.js";
import { groupsTarget, sortExpression } from "./filter/targets.js";
import { listResponse, parseListParams, type ListParams } from "./list.js";
import { resultSetKey, type PageAnchors } from "./paging.js";
import { assertMemberCount } from "./limits.js";
import { memberOperations, parseMembers, targetsMembers } from "./members.js";
import { normalizeResource } from "./normalize.js";
import { applyToDocument, expandOperations } from "./patch/apply.js";
import { parsePatchRequest } from "./patch/message.js";
import { parseProjection, project, returns, type Projection } from "./projection.js";
import { etagOf, groupToScim, locationOf } from "./resource.js";
import { checkIfMatch, notModified, sendNoContent, sendNotModified, sendScim, writeContext } from "./respond.js";
import { groupSchema } from "./schema.js";
import { validateDocument } from "./validate.js";

/**
 * /Groups (RFC 7644 §3). Members are loaded only when the response returns them, so
 * `excludedAttributes=members` (Entra's habit) never touches a 50,000-member list, and PATCH answers
 * 204 without a body (docs/design.md, "Contract"; Entra advises against returning members).
 */
const missing = (id: string) => notFound(`Group ${id} not found`);
/** Members in a raw "members" value, counted before any of them is parsed. */
const rawCount = (value: unknown): number =>
  value === undefined || value === null ? 0 : Array.isArray(value) ? value.length : 1;

function render(db: DbOrTx, ctx: ScimContext, row: GroupRow, projection: Projection) {
  const members = returns(projection, "members") && row.memberCount > 0 ? listMembers(db, row.id) : undefined;
  return project(groupToScim(ctx, row, members), projection);
}

export function searchGroups(
  db: Db,
  ctx: ScimContext,
  params: ListParams,
  offset = params.startIndex - 1,
  limit = params.count,
  budget?: QueryBudget,
  anchors?: PageAnchors,
) {
  // Priced before it runs: a statement cannot be interrupted once started (see ./cost.ts).
  budget?.charge(ctx.directoryId, groupSchema, {
    filter: params.filter,
    sortBy: params.sortBy,
    rows: countGroups(db, ctx.directoryId),
  });
  const target = groupsTarget(ctx.directoryId);
  const where = params.filter ? filterToSql(params.filter, target) : undefined;
  const orderBy = params.sortBy
    ? [
        params.descending ? desc(sortExpression(target, params.sortBy)) : asc(sortExpression(target, params.sortBy)),
        asc(groups.createdAt),
        asc(groups.id),
      ]
    : [asc(groups.createdAt), asc(groups.id)];
  const projection = parseProjection(groupSchema, params.attributes, params.excludedAttributes);
  const key = anchors && !params.sortBy ? resultSetKey(ctx.directoryId, "Group", where) : undefined;
  return readSnapshot(db, () => {
    const total = countGroups(db, ctx.directoryId, where);
    if (limit <= 0 || offset >= total) return { total, resources: [] };
    const generation = key ? directoryGeneration(db, ctx.directoryId) : 0;
    const after = key && offset > 0 ? anchors?.at(key, generation, offset + 1) : undefined;
    const rows = listGroups(db, ctx.directoryId, { where, orderBy, offset: after ? 0 : offset, limit, after });
    const last = rows[rows.length - 1];
    if (key && last && rows.length === limit) anchors?.remember(key, generation, offset + 1 + rows.length, last);
    return { total, resources: rows.map((row) => render(db, ctx, row, projection)) };
  });
}

export function groupRoutes(db: Db, writes: WriteQueue, budget?: QueryBudget, anchors?: PageAnchors): Router {
  const router = Router({ mergeParams: true });

  const respondWithGroup = (req: Request, res: Response, status: number, row: GroupRow): void => {
    const ctx = scimContext(res);
    const document = render(
      db,
      ctx,
      row,
      parseProjection(groupSchema, req.query.attributes, req.query.excludedAttributes),
    );
    if (status === 201) res.location(locationOf(document));
    sendScim(res, status, document, etagOf(row.version));
  };

  router.get("/Groups", (req, res) => {
    const params = parseListParams(req.query);
    const { total, resources } = searchGroups(db, scimContext(res), params, undefined, undefined, budget, anchors);
    sendScim(res, 200, listResponse(total, params.startIndex, resources));
  });

  router.post("/Groups/.search", (req, res) => {
    const params = parseListParams(
      typeof req.body === "object" && req.body !== null ? (req.body as Record<string, unknown>) : {},
    );
    const { total, resources } = searchGroups(db, scimContext(res), params, undefined, undefined, budget, anchors);
    sendScim(res, 200, listResponse(total, params.startIndex, resources));
  });

  router.post("/Groups", async (req, res) => {
    const ctx = scimContext(res);
    const { document, kept } = normalizeResource(groupSchema, req.body, ["members"]);
    assertMemberCount(rawCount(kept.get("members")));
    const members = parseMembers(kept.get("members"), "members");
    const resource = validateDocument(groupSchema, document);
    const row = await writes.run((tx) => createGroup(tx, writeContext(ctx), resource, members));
    respondWithGroup(req, res, 201, row);
  });

  router.get("/Groups/:id", (req, res) => {
    const ctx = scimContext(res);
    const row = getGroup(db, ctx.directoryId, req.params.id);
    if (!row) throw missing(req.params.id);
    if (notModified(req, row.version)) return sendNotModified(res, etagOf(row.version));
    respondWithGroup(req, res, 200, row);
  });

  router.put("/Groups/:id", async (req, res) => {
    const ctx = scimContext(res);
    const { document, kept } = normalizeResource(groupSchema, req.body, ["members"]);
    const resource = validateDocument(groupSchema, document);
    // RFC 7644 §3.5.1 lets omitted readWrite attributes stand: a PUT without "members" keeps them
    // (a rename must not empty the group); "members": [] empties it; a list replaces it (Okta AIW).
    assertMemberCount(rawCount(kept.get("members")));
    const operations = kept.has("members")
      ? [{ kind: "replace" as const, members: parseMembers(kept.get("members"), "members") }]
      : [];
    const row = await writes.run((tx) => {
      const existing = getGroup(tx, ctx.directoryId, req.params.id);
      if (!existing) throw missing(req.params.id);
      checkIfMatch(req, existing.version);
      return updateGroup(tx, writeContext(ctx), existing, resource, operations, "group.replace");
    });
    respondWithGroup(req, res, 200, row);
  });

  router.patch("/Groups/:id", async (req, res) => {
    const ctx = scimContext(res);
    const operations = expandOperations(groupSchema, parsePatchRequest(req.body));
    const memberEdits = operations.filter(targetsMembers).flatMap(memberOperations);
    assertMemberCount(
      memberEdits.reduce(
        (n, e) =>
          n + (e.kind === "add" || e.kind === "replace" ? e.members.length : e.kind === "remove" ? e.ids.length : 0),
        0,
      ),
    );
    const documentOps = operations.filter((op) => !targetsMembers(op));
    const row = await writes.run((tx) => {
      const existing = getGroup(tx, ctx.directoryId, req.params.id);
      if (!existing) throw missing(req.params.id);
      checkIfMatch(req, existing.version);
      const resource =
        documentOps.length > 0
          ? validateDocument(
              groupSchema,
              applyToDocument(groupSchema, JSON.parse(existing.resource) as Record<string, unknown>, documentOps),
            )
          : undefined;
      return updateGroup(tx, writeContext(ctx), existing, resource, memberEdits, "group.patch");
    });
    sendNoContent(res, etagOf(row.version));
  });

  router.delete("/Groups/:id", async (req, res) => {
    const ctx = scimContext(res);
    await writes.run((tx) => {
      const existing = getGroup(tx, ctx.directoryId, req.params.id);
      if (!existing) throw missing(req.params.id);
      checkIfMatch(req, existing.version);
      deleteGroup(tx, writeContext(ctx), existing);
    });
    sendNoContent(res);
  });

  return router;
}
