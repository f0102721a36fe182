import type { groups } from "../../db/schema.js";
import { invalidValue, notFound, uniqueness } from "../errors.js";
import { Lane, enqueueJob } from "./outbox.js";
import { recordAudit } from "./audit.js";
import { foldCase } from "./fold.js";
import { newResourceId } from "./ids.js";
import {
  deleteAllMembers,
  deleteMembers,
  deleteMembersExcept,
  enqueueMemberJobs,
  insertMembers,
  memberIdsWhere,
  missingUsers,
  type MemberCondition,
  type MemberInput,
} from "./members.js";
import { countLive, listLive, type ListQuery } from "./users.js";
import { recordDirectoryWrite, recordDirectoryWriteFirst } from "./generations.js";
import { changedAttributes, type WriteContext } from "./write-context.js";
import { dialect, exec, forUpdate, one, type StoreOp } from "./store-op.js";

/**
 * SCIM groups. `resource` is the document without id, meta and members; members are rows of
 * group_members. A write commits its audit entry and jobs with it: "user" jobs for exactly the
 * members that changed, a "group" job when the group's identity (displayName, externalId) changes
 * or it is deleted.
 *
 * Concurrency on PostgreSQL (several bridges over one database, READ COMMITTED): a change to an
 * existing group starts with lockGroup, so writes of one group (member lists read and rewritten,
 * version, ETag check) run one after another; locks are taken group row first, directory row
 * second, as every other writer of groups does. On SQLite write transactions are serialized anyway.
 */
export type GroupRow = typeof groups.$inferSelect;
export type GroupResource = Record<string, unknown>;

/** Membership edits, applied in order (RFC 7644 §3.5.2: the operations of one PATCH apply in sequence). */
export type MemberOperation =
  | { kind: "add"; members: MemberInput[] }
  | { kind: "remove"; ids: string[] }
  | { kind: "removeAll" }
  /** Members matching a condition over group_members aliased `gm` (from `members[value eq "…"]`). */
  | { kind: "removeWhere"; condition: MemberCondition }
  | { kind: "replace"; members: MemberInput[] };

const auditIdLimit = 1000;

function columns(resource: GroupResource): {
  displayName: string;
  displayNameLower: string;
  externalId: string | null;
} {
  const displayName = resource.displayName;
  if (typeof displayName !== "string" || displayName.trim() === "")
    throw invalidValue("displayName is required and must not be empty");
  return {
    displayName,
    displayNameLower: foldCase(displayName),
    externalId: typeof resource.externalId === "string" ? resource.externalId : null,
  };
}

const groupColumns = `id, directory_id AS "directoryId", display_name AS "displayName", display_name_lower AS "displayNameLower",
  external_id AS "externalId", resource, version, member_count AS "memberCount", created_at AS "createdAt",
  modified_at AS "modifiedAt", deleted_at AS "deletedAt"`;
const groupById = `SELECT ${groupColumns} FROM groups WHERE id = ? AND directory_id = ? AND deleted_at IS NULL`;

/** A live group of the directory (one fixed statement: every group read starts here). */
export function* getGroup(directoryId: string, id: string): StoreOp<GroupRow | undefined> {
  return yield* one<GroupRow>(groupById, [id, directoryId]);
}

/**
 * getGroup for a write that will change the group: on PostgreSQL the row stays locked until the
 * write commits, so a concurrent change of the same group (another instance's PATCH of its members)
 * waits and then reads this one's outcome instead of overwriting it from a stale read.
 */
export function* lockGroup(directoryId: string, id: string): StoreOp<GroupRow | undefined> {
  const lock = yield* forUpdate();
  return yield* one<GroupRow>(lock === "" ? groupById : `${groupById} ${lock}`, [id, directoryId]);
}

/**
 * getGroup for a PATCH of commuting member edits (commutingMemberEdits). On PostgreSQL the row is
 * held FOR KEY SHARE until the write commits: such PATCHes do not wait for each other (nor for the
 * member-count UPDATEs they end with), while a write that locks the group (lockGroup: a DELETE, a
 * replace of the list, a rename) waits for them, and they for it, after which a deleted group reads
 * as gone ("Explicit Locking", row-level lock modes).
 */
export function* shareGroup(directoryId: string, id: string): StoreOp<GroupRow | undefined> {
  const postgres = (yield* dialect()) === "postgres";
  return yield* one<GroupRow>(postgres ? `${groupById} FOR KEY SHARE` : groupById, [id, directoryId]);
}

/**
 * Entra matches groups by displayName (Microsoft Learn "Develop and plan provisioning for a SCIM
 * endpoint in Microsoft Entra ID"), so two live groups may not share one, ignoring case.
 *
 * There is no unique index on it: the check runs after the write has moved the directory's
 * generation, whose row lock (held to commit) makes every check-then-write of one directory's group
 * names run one at a time on PostgreSQL, and the second sees the first's committed name.
 */
function* assertDisplayNameFree(directoryId: string, displayNameLower: string, self?: string): StoreOp<void> {
  const holder = yield* one<{ id: string }>(
    "SELECT id FROM groups WHERE directory_id = ? AND display_name_lower = ? AND deleted_at IS NULL AND id <> ?",
    [directoryId, displayNameLower, self ?? ""],
  );
  if (holder) throw uniqueness("a group with this displayName already exists in this directory");
}

/** Runs membership edits; returns the net change (an id added then removed in one request is no change). */
function* applyMemberOperations(
  ctx: WriteContext,
  groupId: string,
  operations: readonly MemberOperation[],
  now: number,
): StoreOp<{ added: string[]; removed: string[] }> {
  const wanted = operations.flatMap((op) =>
    op.kind === "add" || op.kind === "replace" ? op.members.map((m) => m.value) : [],
  );
  const missing = yield* missingUsers(ctx.directoryId, wanted);
  if (missing.length > 0) {
    throw invalidValue(
      `members must be users of this directory; unknown: ${missing.slice(0, 10).join(", ")}${missing.length > 10 ? ", …" : ""}`,
    );
  }
  const added = new Set<string>();
  const removed = new Set<string>();
  const onAdded = (id: string) => void (removed.delete(id) || added.add(id));
  const onRemoved = (id: string) => void (added.delete(id) || removed.add(id));
  for (const op of operations) {
    switch (op.kind) {
      case "add":
        (yield* insertMembers(ctx.directoryId, groupId, op.members, now)).forEach(onAdded);
        break;
      case "remove":
        (yield* deleteMembers(groupId, op.ids)).forEach(onRemoved);
        break;
      case "removeAll":
        (yield* deleteAllMembers(groupId)).forEach(onRemoved);
        break;
      case "removeWhere":
        (yield* deleteMembers(groupId, yield* memberIdsWhere(groupId, op.condition))).forEach(onRemoved);
        break;
      case "replace":
        // A full push (Okta PUT, PATCH replace members): O(group size) by nature, but only changes are written.
        (yield* deleteMembersExcept(
          groupId,
          op.members.map((m) => m.value),
        )).forEach(onRemoved);
        (yield* insertMembers(ctx.directoryId, groupId, op.members, now)).forEach(onAdded);
        break;
    }
  }
  return { added: [...added], removed: [...removed] };
}

const membersAudit = (change: { added: string[]; removed: string[] }) => ({
  added: change.added.length,
  removed: change.removed.length,
  addedIds: change.added.slice(0, auditIdLimit),
  removedIds: change.removed.slice(0, auditIdLimit),
});

const insertGroup = `INSERT INTO groups
  (id, directory_id, display_name, display_name_lower, external_id, resource, version, member_count, created_at, modified_at)
  VALUES (?, ?, ?, ?, ?, ?, 1, 0, ?, ?) RETURNING ${groupColumns}`;

export function* createGroup(ctx: WriteContext, resource: GroupResource, members: MemberInput[]): StoreOp<GroupRow> {
  const now = ctx.at;
  const cols = columns(resource);
  // First: its row lock orders this name check after any other in the directory (assertDisplayNameFree),
  // and it finds out whether the directory is still there.
  yield* recordDirectoryWriteFirst(ctx.directoryId, { groups: 1 });
  yield* assertDisplayNameFree(ctx.directoryId, cols.displayNameLower);
  const row = (yield* one<GroupRow>(insertGroup, [
    newResourceId(),
    ctx.directoryId,
    cols.displayName,
    cols.displayNameLower,
    cols.externalId,
    JSON.stringify(resource),
    now,
    now,
  ]))!;
  const change = yield* applyMemberOperations(ctx, row.id, members.length > 0 ? [{ kind: "add", members }] : [], now);
  const created =
    change.added.length > 0
      ? (yield* one<GroupRow>(`UPDATE groups SET member_count = ? WHERE id = ? RETURNING ${groupColumns}`, [
          change.added.length,
          row.id,
        ]))!
      : row;
  yield* recordAudit({
    actor: ctx.actor,
    organizationId: ctx.organizationId,
    directoryId: ctx.directoryId,
    action: "group.create",
    targetType: "group",
    targetId: row.id,
    after: { displayName: row.displayName, externalId: row.externalId, members: membersAudit(change) },
    requestId: ctx.requestId,
    at: now,
  });
  yield* enqueueMemberJobs(ctx, change.added, now);
  return created;
}

const updateDocument = `UPDATE groups SET display_name = ?, display_name_lower = ?, external_id = ?, resource = ?,
  member_count = member_count + ?, version = version + 1, modified_at = ? WHERE id = ? RETURNING ${groupColumns}`;
// Membership only (the hot path of group pushes). A live group only: shareGroup already keeps a
// DELETE out; the condition keeps any other path honest.
const updateMembership = `UPDATE groups SET member_count = member_count + ?, version = version + 1, modified_at = ?
  WHERE id = ? AND deleted_at IS NULL RETURNING ${groupColumns}`;

/**
 * Member edits that commute with each other: each adds or removes rows of its own, counted as it
 * changes them, so two of them need not hold the group against each other while they run. A replace
 * of the whole list (or a removal of every member) reads the list it rewrites, and locks the group.
 */
export const commutingMemberEdits = (operations: readonly MemberOperation[]): boolean =>
  operations.every((op) => op.kind === "add" || op.kind === "remove" || op.kind === "removeWhere");

/**
 * Stores a PUT or PATCH: the new document (undefined: unchanged) and membership edits, as one new
 * version. `existing` comes from lockGroup in the same transaction, or, for a PATCH of commuting
 * member edits only (commutingMemberEdits), from shareGroup: the group's row is then locked for
 * update by the last UPDATE only, so concurrent member PATCHes of one big group on PostgreSQL queue
 * for each other's commit alone, not for each other's whole transaction.
 */
export function* updateGroup(
  ctx: WriteContext,
  existing: GroupRow,
  resource: GroupResource | undefined,
  operations: readonly MemberOperation[],
  action: "group.replace" | "group.patch",
): StoreOp<GroupRow> {
  const now = ctx.at;
  const text = resource === undefined ? existing.resource : JSON.stringify(resource);
  const cols = resource === undefined ? undefined : columns(resource);
  const renamed = cols !== undefined && cols.displayNameLower !== existing.displayNameLower;
  if (renamed) {
    // First: its row lock orders the name check (see createGroup).
    yield* recordDirectoryWriteFirst(ctx.directoryId);
    yield* assertDisplayNameFree(ctx.directoryId, cols.displayNameLower, existing.id);
  }
  const change = yield* applyMemberOperations(ctx, existing.id, operations, now);
  const documentChanged = text !== existing.resource;
  if (!documentChanged && change.added.length === 0 && change.removed.length === 0) return existing;
  const delta = change.added.length - change.removed.length;
  const row =
    documentChanged && cols
      ? yield* one<GroupRow>(updateDocument, [
          cols.displayName,
          cols.displayNameLower,
          cols.externalId,
          text,
          delta,
          now,
          existing.id,
        ])
      : yield* one<GroupRow>(updateMembership, [delta, now, existing.id]);
  if (!row) throw notFound(`Group ${existing.id} not found`);
  const before = JSON.parse(existing.resource) as GroupResource;
  yield* recordAudit({
    actor: ctx.actor,
    organizationId: ctx.organizationId,
    directoryId: ctx.directoryId,
    action,
    targetType: "group",
    targetId: row.id,
    before: { displayName: existing.displayName, externalId: existing.externalId },
    after: {
      displayName: row.displayName,
      externalId: row.externalId,
      changed: documentChanged ? changedAttributes(before, resource ?? before) : [],
      members: membersAudit(change),
    },
    requestId: ctx.requestId,
    at: now,
  });
  if (row.displayName !== existing.displayName || row.externalId !== existing.externalId) {
    yield* enqueueJob({
      organizationId: ctx.organizationId,
      directoryId: ctx.directoryId,
      kind: "group",
      subjectId: row.id,
      lane: Lane.provision,
      now,
    });
  }
  yield* enqueueMemberJobs(ctx, [...change.added, ...change.removed], now);
  if (!renamed) yield* recordDirectoryWrite(ctx.directoryId);
  return row;
}

/**
 * SCIM DELETE of a group: tombstone, memberships removed, and a "user" job for each former member
 * (the group job alone could not fan out: the memberships are gone). `existing` comes from lockGroup.
 */
export function* deleteGroup(ctx: WriteContext, existing: GroupRow): StoreOp<void> {
  const now = ctx.at;
  const removed = yield* deleteAllMembers(existing.id);
  yield* exec(
    "UPDATE groups SET deleted_at = ?, modified_at = ?, member_count = 0, version = version + 1 WHERE id = ?",
    [now, now, existing.id],
  );
  yield* recordAudit({
    actor: ctx.actor,
    organizationId: ctx.organizationId,
    directoryId: ctx.directoryId,
    action: "group.delete",
    targetType: "group",
    targetId: existing.id,
    before: { displayName: existing.displayName, externalId: existing.externalId, members: removed.length },
    requestId: ctx.requestId,
    at: now,
  });
  yield* enqueueJob({
    organizationId: ctx.organizationId,
    directoryId: ctx.directoryId,
    kind: "group",
    subjectId: existing.id,
    lane: Lane.provision,
    now,
  });
  yield* enqueueMemberJobs(ctx, removed, now);
  yield* recordDirectoryWrite(ctx.directoryId, { groups: -1 });
}

export const countGroups = (directoryId: string, where?: ListQuery["where"]): StoreOp<number> =>
  countLive("groups", directoryId, where);

/** A page of the directory's live groups (SCIM GET /Groups); members are read apart (listMembers). */
export const listGroups = (directoryId: string, query: ListQuery): StoreOp<GroupRow[]> =>
  listLive<GroupRow>("groups", groupColumns, directoryId, query);
