import { Router, type Request, type Response } from "express";
import type { WriteQueue } from "../directory/write-queue.js";
import {
  commutingMemberEdits,
  createGroup,
  deleteGroup,
  lockGroup,
  shareGroup,
  updateGroup,
  type GroupRow,
} from "../directory/groups.js";
import type { StoreOp } from "../directory/store-op.js";
import { notFound } from "../errors.js";
import { scimContext } from "./context.js";
import { parseListParams, parseSearchBody } from "./list.js";
import { assertMemberCount } from "./limits.js";
import { memberOperations, parseMembers, targetsMembers } from "./members.js";
import { normalizeResource } from "./normalize.js";
import { applyToDocument, expandOperations } from "./patch/apply.js";
import { parsePatchRequest } from "./patch/message.js";
import { parseProjection } from "./projection.js";
import { renderGroup, type Reader, type ReadRequest } from "./reads.js";
import { etagOf, locationOf } from "./resource.js";
import { readByIdRequest } from "./read-by-id.js";
import { checkIfMatch, sendNoContent, sendRead, sendScim, writeContext, writtenAndRendered } from "./respond.js";
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

/**
 * The group a write names, after the request's If-Match check. "update" locks it for a rewrite (FOR
 * UPDATE on PostgreSQL); "share" (member adds and removals, which commute) only keeps it from being
 * deleted or rewritten meanwhile (FOR KEY SHARE).
 */
function* writtenGroup(req: Request<{ id: string }>, res: Response, lock: "update" | "share"): StoreOp<GroupRow> {
  const directoryId = scimContext(res).directoryId;
  const existing = yield* (lock === "update" ? lockGroup : shareGroup)(directoryId, req.params.id);
  if (!existing) throw missing(req.params.id);
  checkIfMatch(req, existing.version);
  return existing;
}

function* removeGroup(req: Request<{ id: string }>, res: Response): StoreOp<void> {
  yield* deleteGroup(writeContext(scimContext(res)), yield* writtenGroup(req, res, "update"));
}

export function groupRoutes(writes: WriteQueue, read: Reader): Router {
  const router = Router({ mergeParams: true });

  /**
   * Runs the write and renders its group in the same op (rendering reads the members it returns).
   * The projection is parsed before the write, so a bad one answers 400 with nothing written.
   */
  const writeAndRespond = async (req: Request, res: Response, status: 200 | 201, write: () => StoreOp<GroupRow>) => {
    const projection = parseProjection(groupSchema, req.query.attributes, req.query.excludedAttributes);
    // A fresh op per attempt: on PostgreSQL a write that lost a deadlock runs again.
    const { row, document } = await writes.run(() =>
      writtenAndRendered(write(), (row) => renderGroup(scimContext(res), row, projection)),
    );
    if (status === 201) res.location(locationOf(document));
    sendScim(res, status, document, etagOf(row.version));
  };

  const answer = async (res: Response, request: ReadRequest) => sendRead(res, await read(request));

  router.get("/Groups", (req, res) =>
    answer(res, { op: "groups", ctx: scimContext(res), params: parseListParams(req.query) }),
  );

  router.post("/Groups/.search", (req, res) =>
    answer(res, {
      op: "groups",
      ctx: scimContext(res),
      params: parseSearchBody(req.body),
    }),
  );

  router.post("/Groups", async (req, res) => {
    const ctx = scimContext(res);
    const { document, kept } = normalizeResource(groupSchema, req.body, ["members"]);
    assertMemberCount(rawCount(kept.get("members")));
    const members = parseMembers(kept.get("members"), "members");
    const resource = validateDocument(groupSchema, document);
    await writeAndRespond(req, res, 201, () => createGroup(writeContext(ctx), resource, members));
  });

  router.get("/Groups/:id", (req, res) => answer(res, readByIdRequest("group", req, res, req.params.id)));

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
    await writeAndRespond(req, res, 200, function* () {
      const existing = yield* writtenGroup(req, res, "update");
      return yield* updateGroup(writeContext(ctx), existing, resource, operations, "group.replace");
    });
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
    // Member adds and removals (how Entra and Okta push groups) share the group's row and lock it
    // only at their last UPDATE (shareGroup, updateGroup); anything that reads the group to rewrite
    // it locks it first.
    const commuting = documentOps.length === 0 && commutingMemberEdits(memberEdits) && !req.get("if-match");
    const row = await writes.run(function* () {
      const existing = yield* writtenGroup(req, res, commuting ? "share" : "update");
      const resource =
        documentOps.length > 0
          ? validateDocument(
              groupSchema,
              applyToDocument(groupSchema, JSON.parse(existing.resource) as Record<string, unknown>, documentOps),
            )
          : undefined;
      return yield* updateGroup(writeContext(ctx), existing, resource, memberEdits, "group.patch");
    });
    sendNoContent(res, etagOf(row.version));
  });

  router.delete("/Groups/:id", async (req, res) => {
    await writes.run(() => removeGroup(req, res));
    sendNoContent(res);
  });

  return router;
}
