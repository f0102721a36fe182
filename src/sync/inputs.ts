import { and, eq, isNull, ne, sql } from "drizzle-orm";
import { directories, groupMembers, groups, holds, organizations, users, userSync } from "../../db/schema.js";
import type { DbOrTx } from "../directory/database.js";
import { initialApplied, type AppliedState, type DirectoryGroup, type DirectoryUser, type Hold } from "../mapping/index.js";

export type OrganizationRow = typeof organizations.$inferSelect;
export type UserRow = typeof users.$inferSelect;

/** Everything desired() needs for one user, plus what was applied: read in one place for the worker and the login hook. */
export interface UserInputs {
  row: UserRow;
  organization: OrganizationRow;
  user: DirectoryUser;
  groups: DirectoryGroup[];
  holds: Hold[];
  applied: AppliedState;
  lastError: string | null;
}

/** The SCIM document as the server returns it (id and externalId included), for mapping paths. */
export function directoryUserOf(row: UserRow): DirectoryUser {
  const resource = { ...(JSON.parse(row.resource) as Record<string, unknown>), id: row.id };
  return { id: row.id, directoryId: row.directoryId, active: row.active, deleted: row.deletedAt !== null, resource };
}

export function activeHolds(db: DbOrTx, userId: string): Hold[] {
  return db
    .select({ id: holds.id, reason: holds.reason })
    .from(holds)
    .where(and(eq(holds.userId, userId), isNull(holds.releasedAt)))
    .all();
}

export function groupsOfUser(db: DbOrTx, userId: string): DirectoryGroup[] {
  return db
    .select({ id: groups.id, displayName: groups.displayName, externalId: groups.externalId })
    .from(groupMembers)
    .innerJoin(groups, eq(groups.id, groupMembers.groupId))
    .where(and(eq(groupMembers.memberId, userId), isNull(groups.deletedAt)))
    .all();
}

export function loadUserInputs(db: DbOrTx, userId: string): UserInputs | undefined {
  const found = db
    .select({ row: users, organization: organizations })
    .from(users)
    .innerJoin(directories, eq(directories.id, users.directoryId))
    .innerJoin(organizations, eq(organizations.id, directories.organizationId))
    .where(eq(users.id, userId))
    .get();
  if (!found) return undefined;
  const sync = db.select().from(userSync).where(eq(userSync.userId, userId)).get();
  return {
    row: found.row,
    organization: found.organization,
    user: directoryUserOf(found.row),
    groups: groupsOfUser(db, userId),
    holds: activeHolds(db, userId),
    applied: sync?.applied ? (JSON.parse(sync.applied) as AppliedState) : initialApplied(),
    lastError: sync?.lastError ?? null,
  };
}

/**
 * Whether another organization still holds this Auth0 user (shared user model): a live, active,
 * un-held directory user of another organization linked to the same Auth0 id.
 */
export function memberOfOtherOrganizations(db: DbOrTx, auth0UserId: string | null, organizationId: string): boolean {
  if (!auth0UserId) return false;
  const other = db
    .select({ userId: userSync.userId })
    .from(userSync)
    .innerJoin(users, eq(users.id, userSync.userId))
    .where(
      and(
        eq(userSync.auth0UserId, auth0UserId),
        ne(userSync.organizationId, organizationId),
        isNull(users.deletedAt),
        eq(users.active, true),
        sql`NOT EXISTS (SELECT 1 FROM holds h WHERE h.user_id = ${users.id} AND h.released_at IS NULL)`,
      ),
    )
    .get();
  return other !== undefined;
}

/** Records what was applied (after every successful operation) and the last error, if any. */
export function saveApplied(db: DbOrTx, inputs: Pick<UserInputs, "row" | "organization">, applied: AppliedState, now = Date.now()): void {
  const values = {
    userId: inputs.row.id,
    directoryId: inputs.row.directoryId,
    organizationId: inputs.organization.id,
    auth0UserId: applied.auth0UserId,
    applied: JSON.stringify(applied),
    appliedAt: now,
  };
  db.insert(userSync).values(values).onConflictDoUpdate({ target: userSync.userId, set: values }).run();
}

export function saveSyncError(db: DbOrTx, inputs: Pick<UserInputs, "row" | "organization">, error: string | null, now = Date.now()): void {
  db.insert(userSync)
    .values({ userId: inputs.row.id, directoryId: inputs.row.directoryId, organizationId: inputs.organization.id, lastError: error, lastErrorAt: error ? now : null })
    .onConflictDoUpdate({ target: userSync.userId, set: { lastError: error, lastErrorAt: error ? now : null } })
    .run();
}
