import { and, asc, eq, gt, inArray, isNull, or, sql, type SQL } from "drizzle-orm";
import { directories, groups, holds, users } from "../../db/schema.js";
import type { DbOrTx } from "../directory/database.js";
import type { HoldRow } from "../directory/holds.js";
import { syncStates } from "../sync/sync-state.js";
import type { JobRow } from "../sync/worker.js";
import { iso } from "./routes.js";
import { laneName } from "../directory/outbox.js";

/**
 * A customer admin's view of its users: who the IdP pushed, and where each stands in Auth0
 * (linked id, last applied, pending job, last error; from user_sync and jobs). Every query is scoped
 * by the organization's directories (docs/design.md, invariant 5).
 */
export type UserState = "active" | "inactive" | "held" | "error";
export type SyncFilter = "error" | "pending" | "unlinked";

function syncFilter(sync: SyncFilter | undefined): SQL | undefined {
  switch (sync) {
    case "error":
      return sql`EXISTS (SELECT 1 FROM user_sync s WHERE s.user_id = ${users.id} AND s.last_error IS NOT NULL)`;
    case "pending":
      // jobs_key_state_idx: one probe per candidate row.
      return sql`EXISTS (SELECT 1 FROM jobs j WHERE j.key = 'user:' || ${users.id} AND j.state IN ('pending', 'running'))`;
    case "unlinked":
      return sql`NOT EXISTS (SELECT 1 FROM user_sync s WHERE s.user_id = ${users.id} AND s.auth0_user_id IS NOT NULL)`;
    default:
      return undefined;
  }
}

export interface UserSearch {
  organizationId: string;
  directoryId?: string;
  /** Substring of userName, displayName, externalId or an email, case-insensitive. */
  q?: string;
  state?: UserState;
  /** Where the user stands in Auth0: a sync error, work still queued, or not linked to an Auth0 user yet. */
  sync?: SyncFilter;
  /** Only members of this group (a group id of the organization). */
  group?: string;
  limit: number;
  /** Keyset cursor: the last user id of the previous page. */
  after?: string;
}

type UserListRow = Pick<
  typeof users.$inferSelect,
  "id" | "directoryId" | "userName" | "displayName" | "externalId" | "active" | "resource" | "createdAt" | "modifiedAt"
>;

const likePattern = (q: string): string => `%${q.toLowerCase().replace(/[\\%_]/g, (c) => `\\${c}`)}%`;
const activeHold = sql`EXISTS (SELECT 1 FROM holds h WHERE h.user_id = ${users.id} AND h.released_at IS NULL)`;

function stateFilter(state: UserState | undefined): SQL | undefined {
  switch (state) {
    case "active":
      return and(eq(users.active, true), sql`NOT ${activeHold}`);
    case "inactive":
      return eq(users.active, false);
    case "held":
      return activeHold;
    case "error":
      return sql`EXISTS (SELECT 1 FROM user_sync s WHERE s.user_id = ${users.id} AND s.last_error IS NOT NULL)`;
    default:
      return undefined;
  }
}

/** The columns a user row of the admin views carries. */
const userListColumns = {
  id: users.id,
  directoryId: users.directoryId,
  userName: users.userName,
  displayName: users.displayName,
  externalId: users.externalId,
  active: users.active,
  resource: users.resource,
  createdAt: users.createdAt,
  modifiedAt: users.modifiedAt,
};

/**
 * Keyset page ordered by user id. One query per directory of the organization, each an index range
 * on (directory_id, id) that stops after `limit + 1` rows, merged here: a join across the
 * organization's directories would make SQLite sort every matching user first (130 ms at 100,000).
 */
export function searchUsers(db: DbOrTx, s: UserSearch): { users: UserListRow[]; next: string | null } {
  const pattern = s.q ? likePattern(s.q) : undefined;
  const directoryIds = s.directoryId
    ? db
        .select({ id: directories.id })
        .from(directories)
        .where(and(eq(directories.id, s.directoryId), eq(directories.organizationId, s.organizationId)))
        .all()
        .map((d) => d.id)
    : db
        .select({ id: directories.id })
        .from(directories)
        .where(eq(directories.organizationId, s.organizationId))
        .all()
        .map((d) => d.id);
  const rows = directoryIds.flatMap((directoryId) =>
    db
      .select(userListColumns)
      .from(users)
      .where(
        and(
          eq(users.directoryId, directoryId),
          isNull(users.deletedAt),
          s.after ? gt(users.id, s.after) : undefined,
          pattern
            ? or(
                sql`${users.userNameLower} LIKE ${pattern} ESCAPE '\\'`,
                sql`lower(${users.displayName}) LIKE ${pattern} ESCAPE '\\'`,
                sql`lower(${users.externalId}) LIKE ${pattern} ESCAPE '\\'`,
                sql`EXISTS (SELECT 1 FROM user_emails e WHERE e.user_id = ${users.id} AND e.value_lower LIKE ${pattern} ESCAPE '\\')`,
              )
            : undefined,
          stateFilter(s.state),
          syncFilter(s.sync),
          s.group
            ? sql`EXISTS (SELECT 1 FROM group_members gm WHERE gm.group_id = ${s.group} AND gm.member_id = ${users.id})`
            : undefined,
        ),
      )
      .orderBy(asc(users.id))
      .limit(s.limit + 1)
      .all(),
  );
  rows.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  const page = rows.slice(0, s.limit);
  return { users: page, next: rows.length > s.limit ? page[page.length - 1]!.id : null };
}

export function findUser(db: DbOrTx, organizationId: string, userId: string): UserListRow | undefined {
  return db
    .select(userListColumns)
    .from(users)
    .innerJoin(directories, eq(directories.id, users.directoryId))
    .where(and(eq(users.id, userId), eq(directories.organizationId, organizationId), isNull(users.deletedAt)))
    .get();
}

const jobBrief = (j: JobRow | undefined) =>
  j
    ? {
        id: j.id,
        state: j.state,
        lane: laneName(j.lane),
        attempts: j.attempts,
        runAfter: iso(j.runAfter),
        lastError: j.lastError,
      }
    : null;

function primaryEmail(resource: string): string | null {
  const emails = (JSON.parse(resource) as { emails?: unknown }).emails;
  if (!Array.isArray(emails)) return null;
  const list = emails.filter(
    (e): e is { value: string; primary?: unknown } =>
      typeof e === "object" && e !== null && typeof (e as { value?: unknown }).value === "string",
  );
  return (list.find((e) => e.primary === true) ?? list[0])?.value ?? null;
}

/** Users with their holds and sync state, in three queries for the whole page (no query per user). */
export function usersWithSyncState(db: DbOrTx, organizationId: string, rows: readonly UserListRow[]) {
  const ids = rows.map((r) => r.id);
  const states = syncStates(db, organizationId, ids);
  const holdRows: HoldRow[] =
    ids.length === 0
      ? []
      : db
          .select()
          .from(holds)
          .where(and(eq(holds.organizationId, organizationId), inArray(holds.userId, ids), isNull(holds.releasedAt)))
          .all();
  return rows.map((u) => {
    const s = states.get(u.id)!;
    const applied = s.applied;
    const userHolds = holdRows.filter((h) => h.userId === u.id);
    return {
      id: u.id,
      directoryId: u.directoryId,
      userName: u.userName,
      displayName: u.displayName,
      externalId: u.externalId,
      email: primaryEmail(u.resource),
      active: u.active,
      held: userHolds.length > 0,
      holds: userHolds.map((h) => ({ id: h.id, reason: h.reason, placedBy: h.placedBy, placedAt: iso(h.placedAt) })),
      createdAt: iso(u.createdAt),
      modifiedAt: iso(u.modifiedAt),
      sync: {
        status: s.status,
        auth0UserId: s.auth0UserId,
        lastAppliedAt: iso(s.appliedAt),
        applied: applied
          ? {
              exists: applied.exists,
              member: applied.member,
              blocked: applied.blocked,
              roles: applied.roles,
              accessRevoked: applied.accessRevoked,
              deleted: applied.deleted,
            }
          : null,
        lastError: s.lastError,
        lastErrorAt: iso(s.lastErrorAt),
        pendingJob: jobBrief(s.openJob),
        deadJob: jobBrief(s.deadJob),
      },
    };
  });
}

export type UserView = ReturnType<typeof usersWithSyncState>[number];

/** The organization's groups by name (for filters and a user's page), at most `limit`. */
export function listOrganizationGroups(db: DbOrTx, organizationId: string, limit: number, memberId?: string) {
  return db
    .select({
      id: groups.id,
      directoryId: groups.directoryId,
      displayName: groups.displayName,
      memberCount: groups.memberCount,
    })
    .from(groups)
    .innerJoin(directories, eq(directories.id, groups.directoryId))
    .where(
      and(
        eq(directories.organizationId, organizationId),
        isNull(groups.deletedAt),
        memberId
          ? sql`EXISTS (SELECT 1 FROM group_members gm WHERE gm.group_id = ${groups.id} AND gm.member_id = ${memberId})`
          : undefined,
      ),
    )
    .orderBy(asc(groups.displayNameLower), asc(groups.id))
    .limit(limit)
    .all();
}
