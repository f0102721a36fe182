import { directoryGeneration } from "../directory/generations.js";
import { countGroups, getGroup, listGroups, type GroupRow } from "../directory/groups.js";
import { listMembers } from "../directory/members.js";
import { countUsers, getUser, getUserAtEpoch, listUsers, type ListQuery, type UserRow } from "../directory/users.js";
import { notFound } from "../errors.js";
import { userSyncStates } from "../sync/sync-state.js";
import type { ScimContext } from "./context.js";
import { queryCost, type QueryBudget } from "./cost.js";
import { filterToSql } from "./filter/sql.js";
import { groupsTarget, sortExpression, usersTarget } from "./filter/targets.js";
import { listResponse, type ListParams } from "./list.js";
import type { ScimDocument } from "./normalize.js";
import { resultSetKey, type PageAnchors } from "./paging.js";
import { parseProjection, project, requests, returns, type Projection } from "./projection.js";
import { etagOf, groupToScim, userToScim, withSyncState } from "./resource.js";
import { matchesNoneMatch } from "./respond.js";
import { groupSchema, resolveAttribute, syncStateUrn, userSchema, type ResourceSchema } from "./schema.js";
import type { SqlStore } from "../directory/sql.js";
import { dialect, type StoreOp } from "../directory/store-op.js";

/**
 * The store work of every SCIM read (GET by id, list, filter, paging, .search), as plain data in and
 * a serialized body out, so that it runs the same on the main thread and in a read-pool worker
 * (./read-pool.ts): a request is what the route parsed, a result is the status, ETag and JSON text.
 * Each read is one op (readOp), run in one read unit: by `store.read` on the main thread, or by a
 * pool worker on its own SQLite connection.
 */
export type ReadRequest =
  | {
      op: "user" | "group";
      ctx: ScimContext;
      id: string;
      attributes?: unknown;
      excludedAttributes?: unknown;
      /** The request's If-None-Match (RFC 7232 §3.2): a match answers 304. */
      ifNoneMatch?: string;
    }
  | { op: "users" | "groups" | "search"; ctx: ScimContext; params: ListParams };

export interface ReadResult {
  status: 200 | 304;
  etag?: string;
  /** The SCIM document as JSON text (absent for 304). */
  body?: string;
}

/** Runs a read: in a unit of the store on the main thread, or in the read pool. */
export type Reader = (request: ReadRequest) => Promise<ReadResult>;

const missing = (type: "User" | "Group", id: string) => notFound(`${type} ${id} not found`);

/** A user as the response shows it: the sync-state extension is read only when the projection names it. */
export function* renderUser(ctx: ScimContext, row: UserRow, projection: Projection): StoreOp<ScimDocument> {
  const state = requests(projection, syncStateUrn)
    ? (yield* userSyncStates(ctx.organizationId, [row.id])).get(row.id)
    : undefined;
  return project(withSyncState(userToScim(ctx, row), state), projection);
}

/**
 * A group as the response shows it. Members are loaded only when returned, so
 * `excludedAttributes=members` (Entra's habit) never touches a 50,000-member list.
 */
export function* renderGroup(ctx: ScimContext, row: GroupRow, projection: Projection): StoreOp<ScimDocument> {
  const members = returns(projection, "members") && row.memberCount > 0 ? yield* listMembers(row.id) : undefined;
  return project(groupToScim(ctx, row, members), projection);
}

/** What paging needs of a resource type: its filter target, count and list. */
interface Listable<Row> {
  type: "User" | "Group";
  schema: ResourceSchema;
  target: typeof usersTarget;
  count: typeof countUsers;
  list: (directoryId: string, query: ListQuery) => StoreOp<Row[]>;
}

const listableUsers: Listable<UserRow> = {
  type: "User",
  schema: userSchema,
  target: usersTarget,
  count: countUsers,
  list: listUsers,
};
const listableGroups: Listable<GroupRow> = {
  type: "Group",
  schema: groupSchema,
  target: groupsTarget,
  count: countGroups,
  list: listGroups,
};

/**
 * Count and rows of one page of a resource type, for one snapshot (run it in one store.read), so
 * totalResults matches the page. A sequential walk in the default order resumes from
 * the previous page's last row (./paging.ts) when `anchors` are given.
 */
function* pageOf<Row extends { id: string; createdAt: number }>(
  kind: Listable<Row>,
  directoryId: string,
  params: Pick<ListParams, "filter" | "sortBy" | "descending">,
  offset: number,
  limit: number,
  anchors: PageAnchors | undefined,
): StoreOp<{ total: number; rows: Row[] }> {
  // Both built before any statement, so a bad filter or sortBy answers 400 even for an empty page.
  const target = kind.target(directoryId, yield* dialect());
  const condition = params.filter ? filterToSql(params.filter, target) : undefined;
  const sortBy = params.sortBy ? sortExpression(target, params.sortBy) : undefined;
  const where = condition && (() => condition);
  const total = yield* kind.count(directoryId, where);
  if (limit <= 0 || offset >= total) return { total, rows: [] };
  const key = anchors && !params.sortBy ? resultSetKey(directoryId, kind.type, params.filter) : undefined;
  const generation = key ? yield* directoryGeneration(directoryId) : 0;
  const after = key && offset > 0 ? anchors?.at(key, generation, offset + 1) : undefined;
  const rows = yield* kind.list(directoryId, {
    where,
    sortBy: sortBy && { expression: () => sortBy, descending: params.descending },
    offset: after ? 0 : offset,
    limit,
    after,
  });
  const last = rows[rows.length - 1];
  if (key && last && rows.length === limit) anchors?.remember(key, generation, offset + 1 + rows.length, last);
  return { total, rows };
}

/** A page of users as store rows (what GET /Users lists before rendering). */
export const usersPage = (
  directoryId: string,
  params: Pick<ListParams, "filter" | "sortBy" | "descending">,
  offset: number,
  limit: number,
  anchors?: PageAnchors,
): StoreOp<{ total: number; rows: UserRow[] }> => pageOf(listableUsers, directoryId, params, offset, limit, anchors);

/** A page of groups as store rows (what GET /Groups lists before rendering). */
export const groupsPage = (
  directoryId: string,
  params: Pick<ListParams, "filter" | "sortBy" | "descending">,
  offset: number,
  limit: number,
  anchors?: PageAnchors,
): StoreOp<{ total: number; rows: GroupRow[] }> => pageOf(listableGroups, directoryId, params, offset, limit, anchors);

/** A page read and rendered in the op's snapshot (rendering reads members and sync state). */
function* searchPage<Row extends { id: string; createdAt: number }>(
  kind: Listable<Row>,
  ctx: ScimContext,
  params: ListParams,
  offset: number,
  limit: number,
  anchors: PageAnchors | undefined,
  render: (rows: Row[], projection: Projection) => StoreOp<ScimDocument[]>,
): StoreOp<{ total: number; resources: ScimDocument[] }> {
  const projection = parseProjection(kind.schema, params.attributes, params.excludedAttributes);
  const { total, rows } = yield* pageOf(kind, ctx.directoryId, params, offset, limit, anchors);
  return { total, resources: yield* render(rows, projection) };
}

/** A page of users; the sync-state extension is read for the whole page at once when asked for. */
export function searchUsers(
  ctx: ScimContext,
  params: ListParams,
  offset = params.startIndex - 1,
  limit = params.count,
  anchors?: PageAnchors,
): StoreOp<{ total: number; resources: ScimDocument[] }> {
  return searchPage(listableUsers, ctx, params, offset, limit, anchors, function* (rows, projection) {
    const states = requests(projection, syncStateUrn)
      ? yield* userSyncStates(
          ctx.organizationId,
          rows.map((r) => r.id),
        )
      : undefined;
    return rows.map((row) => project(withSyncState(userToScim(ctx, row), states?.get(row.id)), projection));
  });
}

/** A page of groups. */
export function searchGroups(
  ctx: ScimContext,
  params: ListParams,
  offset = params.startIndex - 1,
  limit = params.count,
  anchors?: PageAnchors,
): StoreOp<{ total: number; resources: ScimDocument[] }> {
  return searchPage(listableGroups, ctx, params, offset, limit, anchors, function* (rows, projection) {
    const documents: ScimDocument[] = [];
    for (const row of rows) documents.push(yield* renderGroup(ctx, row, projection));
    return documents;
  });
}

/** A sortBy one type does not know orders that type by creation rather than failing a root search. */
const sortableFor = (params: ListParams, rs: ResourceSchema): ListParams =>
  params.sortBy && !resolveAttribute(rs, params.sortBy) ? { ...params, sortBy: undefined } : params;

/**
 * A read at or above this many units scans (./cost.ts meters only from here on): in the read pool,
 * such reads of one directory may hold all threads but one, so another directory always finds one.
 */
export const heavyReadUnits = 1_000;

/**
 * Prices a list or search against the directory's budget before it runs (./cost.ts): on the main
 * thread, whichever thread then runs it, so one directory's budget is one budget. Throws 400 or 429.
 * Returns whether the read is heavy (see heavyReadUnits); reads by id never are.
 */
export function* chargeRead(request: ReadRequest, budget: QueryBudget | undefined): StoreOp<{ heavy: boolean }> {
  if (!("params" in request)) return { heavy: false };
  const { ctx, params } = request;
  let units = 0;
  function* charge(rs: ResourceSchema, p: ListParams): StoreOp<void> {
    const shape = {
      filter: p.filter,
      sortBy: p.sortBy,
      rows: yield* rs === userSchema ? countUsers(ctx.directoryId) : countGroups(ctx.directoryId),
    };
    budget?.charge(ctx.directoryId, rs, shape);
    units += queryCost(rs, shape).units;
  }
  if (request.op === "users") yield* charge(userSchema, params);
  else if (request.op === "groups") yield* charge(groupSchema, params);
  else {
    yield* charge(userSchema, sortableFor(params, userSchema));
    yield* charge(groupSchema, sortableFor(params, groupSchema));
  }
  return { heavy: units >= heavyReadUnits };
}

const ok = (document: ScimDocument, etag?: string): ReadResult => ({
  status: 200,
  ...(etag ? { etag } : {}),
  body: JSON.stringify(document),
});

/** One read (already priced by chargeRead), to run in one read unit so its statements agree. */
export function* readOp(request: ReadRequest, anchors?: PageAnchors): StoreOp<ReadResult> {
  switch (request.op) {
    case "user":
    case "group": {
      const { ctx, id } = request;
      const row =
        request.op === "group"
          ? yield* getGroup(ctx.directoryId, id)
          : ctx.credentialEpoch === undefined
            ? yield* getUser(ctx.directoryId, id)
            : yield* getUserAtEpoch(ctx.directoryId, id, ctx.credentialEpoch);
      if (!row) throw missing(request.op === "user" ? "User" : "Group", id);
      const etag = etagOf(row.version);
      if (matchesNoneMatch(request.ifNoneMatch, row.version)) return { status: 304, etag };
      const rs = request.op === "user" ? userSchema : groupSchema;
      const projection = parseProjection(rs, request.attributes, request.excludedAttributes);
      const document =
        request.op === "user"
          ? yield* renderUser(ctx, row as UserRow, projection)
          : yield* renderGroup(ctx, row as GroupRow, projection);
      return ok(document, etag);
    }
    case "users":
    case "groups": {
      const { ctx, params } = request;
      const search = request.op === "users" ? searchUsers : searchGroups;
      const { total, resources } = yield* search(ctx, params, undefined, undefined, anchors);
      return ok(listResponse(total, params.startIndex, resources));
    }
    case "search": {
      // RFC 7644 §3.4.3 at the base URL: Users then Groups, each in its own stable order (sortBy
      // applies within each type); startIndex/count page through that concatenation.
      const { ctx, params } = request;
      const offset = params.startIndex - 1;
      const found = yield* searchUsers(ctx, sortableFor(params, userSchema), offset, params.count);
      const remaining = params.count - found.resources.length;
      const more = yield* searchGroups(
        ctx,
        sortableFor(params, groupSchema),
        Math.max(0, offset - found.total),
        remaining,
      );
      return ok(listResponse(found.total + more.total, params.startIndex, [...found.resources, ...more.resources]));
    }
  }
}

/**
 * Core attributes whose `eq` is one probe of an index, per resource type, and whether that index is
 * unique among live resources (at most one row matches, whatever the page asks for).
 */
const probes: Record<ResourceSchema["resourceType"], Record<string, boolean>> = {
  User: { id: true, userName: true, externalId: false },
  Group: { id: true, externalId: false, displayName: false },
};

/** A page of a non-unique probe runs on the main thread up to this many rows. */
export const inlineMaxRows = 10;

/** Whether the projection returns a group's members (an unreadable projection counts as yes: the pool answers it). */
function returnsMembers(attributes: unknown, excludedAttributes: unknown): boolean {
  try {
    return returns(parseProjection(groupSchema, attributes, excludedAttributes), "members");
  } catch {
    return true;
  }
}

/**
 * `attr eq "value"` on an indexed core attribute (see probes), without sortBy: one index probe. A
 * unique one reads at most one row at any paging; another only the first page of a few rows.
 */
function singleProbe(rs: ResourceSchema, params: ListParams): boolean {
  const f = params.filter;
  if (f?.kind !== "compare" || f.op !== "eq" || typeof f.value !== "string" || params.sortBy !== undefined)
    return false;
  const resolved = resolveAttribute(rs, f.path);
  if (!resolved || resolved.schema.extension || resolved.sub) return false;
  const unique = probes[rs.resourceType][resolved.attribute.name];
  if (unique === undefined) return false;
  return unique || (params.startIndex === 1 && params.count <= inlineMaxRows);
}

/**
 * Reads whose cost is bounded by one index lookup, which run on the main thread even when a read
 * pool exists (docs/design.md, "Concurrency"): posting them to a thread and back cost the main
 * thread more than the read itself. GET by id (a group only without its members, which may be
 * 50,000 rows) and a single-probe filter (see singleProbe). Everything else goes to the pool.
 */
export function runsInline(request: ReadRequest): boolean {
  switch (request.op) {
    case "user":
      return true;
    case "group":
      return !returnsMembers(request.attributes, request.excludedAttributes);
    case "users":
      return singleProbe(userSchema, request.params);
    case "groups":
      return (
        singleProbe(groupSchema, request.params) &&
        !returnsMembers(request.params.attributes, request.params.excludedAttributes)
      );
    case "search":
      return false;
  }
}

/**
 * The reader without a pool, and the one on PostgreSQL (where there is no pool: every read is a unit
 * of the store, and instances scale reads out): prices and runs each read in ONE read unit on the
 * calling (main) thread. A read that runsInline is not priced, since it costs under heavyReadUnits
 * (at most a page of index probes), which the budget never meters (that spares it the directory's
 * row count), and gets no page anchors, which speed up deep sequential pages only (that spares it
 * the result set's key and the directory's generation).
 */
export const storeReader =
  (store: SqlStore, budget?: QueryBudget, anchors?: PageAnchors): Reader =>
  (request) =>
    // A user by id is its row, then maybe its sync state (another table, not part of its version):
    // no snapshot needed, which on PostgreSQL saves the BEGIN and COMMIT round trips. A group's
    // members and a list's total must agree with their rows, so those keep one snapshot.
    request.op === "user"
      ? store.readCommitted(readOp(request))
      : runsInline(request)
        ? store.read(readOp(request))
        : store.read(pricedRead(request, budget, anchors));

function* pricedRead(
  request: ReadRequest,
  budget: QueryBudget | undefined,
  anchors?: PageAnchors,
): StoreOp<ReadResult> {
  yield* chargeRead(request, budget);
  return yield* readOp(request, anchors);
}
