import { and, eq, isNull, sql, type SQL } from "drizzle-orm";
import { groups } from "../../db/schema.js";
import { invalidValue, uniqueness } from "../errors.js";
import { Lane, enqueueJob } from "./outbox.js";
import { recordAudit } from "./audit.js";
import type { DbOrTx } from "./database.js";
import { adjustDirectoryCounts } from "./directories.js";
import { foldCase } from "./fold.js";
import { newResourceId } from "./ids.js";
import { prepared } from "./statements.js";
import {
  deleteAllMembers,
  deleteMembers,
  enqueueMemberJobs,
  insertMembers,
  memberIds,
  memberIdsWhere,
  missingUsers,
  type MemberInput,
} from "./members.js";
import { countLive, listLive, type ListQuery } from "./users.js";
import { bumpDirectoryGeneration } from "./generations.js";
import { changedAttributes, type WriteContext } from "./write-context.js";
import { runSync, type StoreOp } from "./store-op.js";

/**
 * SCIM groups. `resource` is the document without id, meta and members; members are rows of
 * group_members. A write commits its audit entry and jobs with it: "user" jobs for exactly the
 * members that changed, a "group" job when the group's identity (displayName, externalId) changes
 * or it is deleted.
 */
export type GroupRow = typeof groups.$inferSelect;
export type GroupResource = Record<string, unknown>;

/** Membership edits, applied in order (RFC 7644 §3.5.2: the operations of one PATCH apply in sequence). */
export type MemberOperation =
  | { kind: "add"; members: MemberInput[] }
  | { kind: "remove"; ids: string[] }
  | { kind: "removeAll" }
  /** Members matching a condition over group_members aliased `gm` (from `members[value eq "…"]`). */
  | { kind: "removeWhere"; condition: SQL }
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

/** A live group of the directory (a cached statement: every group read and write starts here). */
export function getGroup(db: DbOrTx, directoryId: string, id: string): GroupRow | undefined {
  return prepared(db, groupById).get(id, directoryId) as GroupRow | undefined;
}

/**
 * Entra matches groups by displayName (Microsoft Learn "Develop and plan provisioning for a SCIM
 * endpoint in Microsoft Entra ID"), so two live groups may not share one, ignoring case.
 */
function assertDisplayNameFree(tx: DbOrTx, directoryId: string, displayNameLower: string, self?: string): void {
  const holder = tx
    .select({ id: groups.id })
    .from(groups)
    .where(
      and(eq(groups.directoryId, directoryId), eq(groups.displayNameLower, displayNameLower), isNull(groups.deletedAt)),
    )
    .get();
  if (holder && holder.id !== self) throw uniqueness("a group with this displayName already exists in this directory");
}

/** Runs membership edits; returns the net change (an id added then removed in one request is no change). */
function applyMemberOperations(
  tx: DbOrTx,
  ctx: WriteContext,
  groupId: string,
  operations: readonly MemberOperation[],
  now: number,
) {
  const wanted = operations.flatMap((op) =>
    op.kind === "add" || op.kind === "replace" ? op.members.map((m) => m.value) : [],
  );
  const missing = missingUsers(tx, ctx.directoryId, wanted);
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
        insertMembers(tx, ctx.directoryId, groupId, op.members, now).forEach(onAdded);
        break;
      case "remove":
        deleteMembers(tx, groupId, op.ids).forEach(onRemoved);
        break;
      case "removeAll":
        deleteAllMembers(tx, groupId).forEach(onRemoved);
        break;
      case "removeWhere":
        deleteMembers(tx, groupId, memberIdsWhere(tx, groupId, op.condition)).forEach(onRemoved);
        break;
      case "replace": {
        // A full push (Okta PUT, PATCH replace members): O(group size) by nature, but only changes are written.
        const next = new Set(op.members.map((m) => m.value));
        deleteMembers(
          tx,
          groupId,
          memberIds(tx, groupId).filter((id) => !next.has(id)),
        ).forEach(onRemoved);
        insertMembers(tx, ctx.directoryId, groupId, op.members, now).forEach(onAdded);
        break;
      }
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

export function createGroup(tx: DbOrTx, ctx: WriteContext, resource: GroupResource, members: MemberInput[]): GroupRow {
  const now = ctx.at;
  const cols = columns(resource);
  assertDisplayNameFree(tx, ctx.directoryId, cols.displayNameLower);
  const row = tx
    .insert(groups)
    .values({
      id: newResourceId(),
      directoryId: ctx.directoryId,
      ...cols,
      resource: JSON.stringify(resource),
      version: 1,
      createdAt: now,
      modifiedAt: now,
    })
    .returning()
    .get();
  const change = applyMemberOperations(tx, ctx, row.id, members.length > 0 ? [{ kind: "add", members }] : [], now);
  const created =
    change.added.length > 0
      ? tx.update(groups).set({ memberCount: change.added.length }).where(eq(groups.id, row.id)).returning().get()
      : row;
  runSync(tx, adjustDirectoryCounts(ctx.directoryId, { groups: 1 }));
  runSync(tx, bumpDirectoryGeneration(ctx.directoryId));
  runSync(
    tx,
    recordAudit({
      actor: ctx.actor,
      organizationId: ctx.organizationId,
      directoryId: ctx.directoryId,
      action: "group.create",
      targetType: "group",
      targetId: row.id,
      after: { displayName: row.displayName, externalId: row.externalId, members: membersAudit(change) },
      requestId: ctx.requestId,
      at: now,
    }),
  );
  enqueueMemberJobs(tx, ctx, change.added, now);
  return created;
}

/** Stores a PUT or PATCH: the new document (undefined: unchanged) and membership edits, as one new version. */
export function updateGroup(
  tx: DbOrTx,
  ctx: WriteContext,
  existing: GroupRow,
  resource: GroupResource | undefined,
  operations: readonly MemberOperation[],
  action: "group.replace" | "group.patch",
): GroupRow {
  const now = ctx.at;
  const text = resource === undefined ? existing.resource : JSON.stringify(resource);
  const cols = resource === undefined ? undefined : columns(resource);
  if (cols && cols.displayNameLower !== existing.displayNameLower)
    assertDisplayNameFree(tx, ctx.directoryId, cols.displayNameLower, existing.id);
  const change = applyMemberOperations(tx, ctx, existing.id, operations, now);
  const documentChanged = text !== existing.resource;
  if (!documentChanged && change.added.length === 0 && change.removed.length === 0) return existing;
  runSync(tx, bumpDirectoryGeneration(ctx.directoryId));
  const delta = change.added.length - change.removed.length;
  const row =
    documentChanged && cols
      ? tx
          .update(groups)
          .set({
            ...cols,
            resource: text,
            memberCount: sql`${groups.memberCount} + ${delta}`,
            version: existing.version + 1,
            modifiedAt: now,
          })
          .where(eq(groups.id, existing.id))
          .returning()
          .get()
      : // Membership only (the hot path of group pushes): a cached statement.
        (prepared(
          tx,
          `UPDATE groups SET member_count = member_count + ?, version = version + 1, modified_at = ? WHERE id = ? RETURNING ${groupColumns}`,
        ).get(delta, now, existing.id) as GroupRow);
  const before = JSON.parse(existing.resource) as GroupResource;
  runSync(
    tx,
    recordAudit({
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
    }),
  );
  if (row.displayName !== existing.displayName || row.externalId !== existing.externalId) {
    runSync(
      tx,
      enqueueJob({
        organizationId: ctx.organizationId,
        directoryId: ctx.directoryId,
        kind: "group",
        subjectId: row.id,
        lane: Lane.provision,
        now,
      }),
    );
  }
  enqueueMemberJobs(tx, ctx, [...change.added, ...change.removed], now);
  return row;
}

/**
 * SCIM DELETE of a group: tombstone, memberships removed, and a "user" job for each former member
 * (the group job alone could not fan out: the memberships are gone).
 */
export function deleteGroup(tx: DbOrTx, ctx: WriteContext, existing: GroupRow): void {
  const now = ctx.at;
  const removed = deleteAllMembers(tx, existing.id);
  tx.update(groups)
    .set({ deletedAt: now, modifiedAt: now, memberCount: 0, version: existing.version + 1 })
    .where(eq(groups.id, existing.id))
    .run();
  runSync(tx, adjustDirectoryCounts(ctx.directoryId, { groups: -1 }));
  runSync(tx, bumpDirectoryGeneration(ctx.directoryId));
  runSync(
    tx,
    recordAudit({
      actor: ctx.actor,
      organizationId: ctx.organizationId,
      directoryId: ctx.directoryId,
      action: "group.delete",
      targetType: "group",
      targetId: existing.id,
      before: { displayName: existing.displayName, externalId: existing.externalId, members: removed.length },
      requestId: ctx.requestId,
      at: now,
    }),
  );
  runSync(
    tx,
    enqueueJob({
      organizationId: ctx.organizationId,
      directoryId: ctx.directoryId,
      kind: "group",
      subjectId: existing.id,
      lane: Lane.provision,
      now,
    }),
  );
  enqueueMemberJobs(tx, ctx, removed, now);
}

export const countGroups = (directoryId: string, where?: ListQuery["where"]): StoreOp<number> =>
  countLive("groups", directoryId, where);

/** A page of the directory's live groups (SCIM GET /Groups); members are read apart (listMembers). */
export const listGroups = (directoryId: string, query: ListQuery): StoreOp<GroupRow[]> =>
  listLive<GroupRow>("groups", groupColumns, directoryId, query);
