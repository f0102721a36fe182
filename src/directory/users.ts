import { and, eq, isNull, sql, type SQL } from "drizzle-orm";
import { directories, groupMembers, groups, userEmails, users } from "../../db/schema.js";
import { invalidValue, uniqueness } from "../errors.js";
import { Lane, enqueueJob } from "../sync/queue.js";
import { recordAudit } from "./audit.js";
import type { DbOrTx } from "./database.js";
import { adjustDirectoryCounts } from "./directories.js";
import { newResourceId } from "./ids.js";
import { changedAttributes, isUniqueViolation, type WriteContext } from "./write-context.js";

/**
 * SCIM users as the IdP pushed them. Every write runs inside the caller's transaction and commits,
 * with it, its audit entry and a reconcile job for the user (DESIGN.md §4): deprovision lane when the
 * user goes from active to inactive or is deleted. `resource` is the validated SCIM document without
 * id and meta; the other columns are copies of it for filtering, sorting and uniqueness.
 */
export type UserRow = typeof users.$inferSelect;
export type UserResource = Record<string, unknown>;

interface Columns {
  userName: string;
  userNameLower: string;
  externalId: string | null;
  displayName: string | null;
  active: boolean;
}

function columns(resource: UserResource): Columns {
  const userName = resource.userName;
  if (typeof userName !== "string" || userName.trim() === "") throw invalidValue("userName is required and must not be empty");
  const text = (v: unknown): string | null => (typeof v === "string" ? v : null);
  return {
    userName,
    // RFC 7643 §4.1.1: userName is caseExact=false; uniqueness and `eq` ignore case (Okta's SPEC test).
    userNameLower: userName.toLowerCase(),
    externalId: text(resource.externalId),
    displayName: text(resource.displayName),
    // A user created without `active` is active: the IdP provisioned it.
    active: resource.active !== false,
  };
}

function emailRows(userId: string, directoryId: string, resource: UserResource): (typeof userEmails.$inferInsert)[] {
  const emails = Array.isArray(resource.emails) ? (resource.emails as Record<string, unknown>[]) : [];
  return emails
    .map((e, position) => ({ e, position }))
    .filter(({ e }) => typeof e.value === "string")
    .map(({ e, position }) => ({
      userId,
      directoryId,
      position,
      valueLower: (e.value as string).toLowerCase(),
      type: typeof e.type === "string" ? e.type : null,
      primary: e.primary === true,
    }));
}

function indexEmails(tx: DbOrTx, userId: string, directoryId: string, resource: UserResource): void {
  tx.delete(userEmails).where(eq(userEmails.userId, userId)).run();
  const rows = emailRows(userId, directoryId, resource);
  if (rows.length > 0) tx.insert(userEmails).values(rows).run();
}

const summary = (row: Pick<UserRow, "userName" | "externalId" | "active">) => ({
  userName: row.userName,
  externalId: row.externalId,
  active: row.active,
});

export function getUser(db: DbOrTx, directoryId: string, id: string): UserRow | undefined {
  return db
    .select()
    .from(users)
    .where(and(eq(users.id, id), eq(users.directoryId, directoryId), isNull(users.deletedAt)))
    .get();
}

function assertUserNameFree(tx: DbOrTx, directoryId: string, userNameLower: string, self?: string): void {
  const holder = tx
    .select({ id: users.id })
    .from(users)
    .where(and(eq(users.directoryId, directoryId), eq(users.userNameLower, userNameLower), isNull(users.deletedAt)))
    .get();
  if (holder && holder.id !== self) throw uniqueness("a user with this userName already exists in this directory");
}

export function createUser(tx: DbOrTx, ctx: WriteContext, resource: UserResource): UserRow {
  const now = ctx.now ?? Date.now();
  const cols = columns(resource);
  assertUserNameFree(tx, ctx.directoryId, cols.userNameLower);
  let row: UserRow;
  try {
    row = tx
      .insert(users)
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
  } catch (err) {
    // The partial unique index is the final arbiter (another process may have won the race).
    if (isUniqueViolation(err)) throw uniqueness("a user with this userName already exists in this directory");
    throw err;
  }
  indexEmails(tx, row.id, ctx.directoryId, resource);
  adjustDirectoryCounts(tx, ctx.directoryId, { users: 1 });
  recordAudit(tx, {
    actor: ctx.actor,
    organizationId: ctx.organizationId,
    directoryId: ctx.directoryId,
    action: "user.create",
    targetType: "user",
    targetId: row.id,
    after: summary(row),
    requestId: ctx.requestId,
    at: now,
  });
  enqueueJob(tx, { organizationId: ctx.organizationId, directoryId: ctx.directoryId, kind: "user", subjectId: row.id, lane: Lane.provision, now });
  return row;
}

/** Stores a new version of a user (PUT or PATCH). Unchanged documents are not written at all. */
export function updateUser(
  tx: DbOrTx,
  ctx: WriteContext,
  existing: UserRow,
  resource: UserResource,
  action: "user.replace" | "user.patch",
): UserRow {
  const text = JSON.stringify(resource);
  if (text === existing.resource) return existing;
  const now = ctx.now ?? Date.now();
  const cols = columns(resource);
  if (cols.userNameLower !== existing.userNameLower) assertUserNameFree(tx, ctx.directoryId, cols.userNameLower, existing.id);
  let row: UserRow;
  try {
    row = tx
      .update(users)
      .set({ ...cols, resource: text, version: existing.version + 1, modifiedAt: now })
      .where(eq(users.id, existing.id))
      .returning()
      .get();
  } catch (err) {
    if (isUniqueViolation(err)) throw uniqueness("a user with this userName already exists in this directory");
    throw err;
  }
  const before = JSON.parse(existing.resource) as UserResource;
  if (JSON.stringify(before.emails) !== JSON.stringify(resource.emails)) indexEmails(tx, row.id, ctx.directoryId, resource);
  const deactivated = existing.active && !row.active;
  recordAudit(tx, {
    actor: ctx.actor,
    organizationId: ctx.organizationId,
    directoryId: ctx.directoryId,
    action: deactivated ? "user.deactivate" : existing.active !== row.active ? "user.reactivate" : action,
    targetType: "user",
    targetId: row.id,
    before: summary(existing),
    after: { ...summary(row), changed: changedAttributes(before, resource) },
    requestId: ctx.requestId,
    at: now,
  });
  enqueueJob(tx, {
    organizationId: ctx.organizationId,
    directoryId: ctx.directoryId,
    kind: "user",
    subjectId: row.id,
    lane: deactivated ? Lane.deprovision : Lane.provision,
    now,
  });
  return row;
}

/**
 * SCIM DELETE: a tombstone (the sync engine needs it to deprovision), the user's memberships removed
 * (each group's version moves, so its ETag changes), then 404 for this id and the userName free again.
 */
export function deleteUser(tx: DbOrTx, ctx: WriteContext, existing: UserRow): void {
  const now = ctx.now ?? Date.now();
  tx.update(users).set({ deletedAt: now, modifiedAt: now, version: existing.version + 1 }).where(eq(users.id, existing.id)).run();
  tx.delete(userEmails).where(eq(userEmails.userId, existing.id)).run();
  const memberships = tx
    .delete(groupMembers)
    .where(and(eq(groupMembers.memberId, existing.id), eq(groupMembers.directoryId, ctx.directoryId)))
    .returning({ groupId: groupMembers.groupId })
    .all();
  for (const { groupId } of memberships) {
    tx.update(groups)
      .set({ memberCount: sql`${groups.memberCount} - 1`, version: sql`${groups.version} + 1`, modifiedAt: now })
      .where(eq(groups.id, groupId))
      .run();
  }
  adjustDirectoryCounts(tx, ctx.directoryId, { users: -1 });
  recordAudit(tx, {
    actor: ctx.actor,
    organizationId: ctx.organizationId,
    directoryId: ctx.directoryId,
    action: "user.delete",
    targetType: "user",
    targetId: existing.id,
    before: { ...summary(existing), groups: memberships.length },
    requestId: ctx.requestId,
    at: now,
  });
  enqueueJob(tx, { organizationId: ctx.organizationId, directoryId: ctx.directoryId, kind: "user", subjectId: existing.id, lane: Lane.deprovision, now });
}

export interface ListQuery {
  where?: SQL;
  orderBy: SQL[];
  offset: number;
  limit: number;
}

const liveUsers = (directoryId: string, where?: SQL): SQL | undefined =>
  and(eq(users.directoryId, directoryId), isNull(users.deletedAt), where);

/** totalResults: the maintained count when unfiltered (O(1)), else a count of the matches. */
export function countUsers(db: DbOrTx, directoryId: string, where?: SQL): number {
  if (!where) {
    return db.select({ n: directories.userCount }).from(directories).where(eq(directories.id, directoryId)).get()?.n ?? 0;
  }
  return db.select({ n: sql<number>`count(*)` }).from(users).where(liveUsers(directoryId, where)).get()?.n ?? 0;
}

export function listUsers(db: DbOrTx, directoryId: string, query: ListQuery): UserRow[] {
  if (query.limit <= 0) return [];
  return db
    .select()
    .from(users)
    .where(liveUsers(directoryId, query.where))
    .orderBy(...query.orderBy)
    .limit(query.limit)
    .offset(query.offset)
    .all();
}
