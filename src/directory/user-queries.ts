/**
 * Read models of the admin API and the console over users and groups: a customer admin's search
 * of its users and the organization's groups. Every query is scoped by the organization's
 * directories (docs/design.md, invariant 5).
 */
import type { users } from "../../db/schema.js";
import { many, one, type SqlParam, type StoreOp } from "./store-op.js";

export type UserState = "active" | "inactive" | "held" | "error";
export type SyncFilter = "error" | "pending" | "unlinked";

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

export type UserListRow = Pick<
  typeof users.$inferSelect,
  "id" | "directoryId" | "userName" | "displayName" | "externalId" | "active" | "resource" | "createdAt" | "modifiedAt"
>;

/** The columns a user row of the admin views carries (active as stored: 1/0 on both dialects). */
const userListColumns = `u.id, u.directory_id AS "directoryId", u.user_name AS "userName", u.display_name AS "displayName",
  u.external_id AS "externalId", u.active, u.resource, u.created_at AS "createdAt", u.modified_at AS "modifiedAt"`;

type StoredUserListRow = Omit<UserListRow, "active"> & { active: number };
const toUserListRow = (r: StoredUserListRow): UserListRow => ({ ...r, active: r.active === 1 });

const likePattern = (q: string): string => `%${q.toLowerCase().replace(/[\\%_]/g, (c) => `\\${c}`)}%`;
const activeHold = "EXISTS (SELECT 1 FROM holds h WHERE h.user_id = u.id AND h.released_at IS NULL)";
const syncError = "EXISTS (SELECT 1 FROM user_sync s WHERE s.user_id = u.id AND s.last_error IS NOT NULL)";

const stateFilters: Record<UserState, string> = {
  active: `u.active = TRUE AND NOT ${activeHold}`,
  inactive: "u.active = FALSE",
  held: activeHold,
  error: syncError,
};

const syncFilters: Record<SyncFilter, string> = {
  error: syncError,
  // jobs_key_state_idx: one probe per candidate row.
  pending: "EXISTS (SELECT 1 FROM jobs j WHERE j.key = 'user:' || u.id AND j.state IN ('pending', 'running'))",
  unlinked: "NOT EXISTS (SELECT 1 FROM user_sync s WHERE s.user_id = u.id AND s.auth0_user_id IS NOT NULL)",
};

/**
 * Keyset page ordered by user id. One query per directory of the organization, each an index range
 * on (directory_id, id) that stops after `limit + 1` rows, merged here: a join across the
 * organization's directories would make SQLite sort every matching user first (130 ms at 100,000).
 * The statement text depends only on which filters are set, so it stays cached per combination.
 */
export function* searchUsers(s: UserSearch): StoreOp<{ users: UserListRow[]; next: string | null }> {
  const directoryIds = (
    s.directoryId
      ? yield* many<{ id: string }>("SELECT id FROM directories WHERE id = ? AND organization_id = ?", [
          s.directoryId,
          s.organizationId,
        ])
      : yield* many<{ id: string }>("SELECT id FROM directories WHERE organization_id = ? ORDER BY id", [
          s.organizationId,
        ])
  ).map((d) => d.id);
  const where = ["u.directory_id = ?", "u.deleted_at IS NULL"];
  const params: SqlParam[] = [];
  if (s.after) {
    where.push("u.id > ?");
    params.push(s.after);
  }
  if (s.q) {
    const pattern = likePattern(s.q);
    where.push(`(u.user_name_lower LIKE ? ESCAPE '\\' OR lower(u.display_name) LIKE ? ESCAPE '\\'
      OR lower(u.external_id) LIKE ? ESCAPE '\\'
      OR EXISTS (SELECT 1 FROM user_emails e WHERE e.user_id = u.id AND e.value_lower LIKE ? ESCAPE '\\'))`);
    params.push(pattern, pattern, pattern, pattern);
  }
  if (s.state) where.push(stateFilters[s.state]);
  if (s.sync) where.push(syncFilters[s.sync]);
  if (s.group) {
    where.push("EXISTS (SELECT 1 FROM group_members gm WHERE gm.group_id = ? AND gm.member_id = u.id)");
    params.push(s.group);
  }
  const text = `SELECT ${userListColumns} FROM users u WHERE ${where.join(" AND ")} ORDER BY u.id LIMIT ?`;
  const rows: UserListRow[] = [];
  for (const directoryId of directoryIds) {
    const page = yield* many<StoredUserListRow>(text, [directoryId, ...params, s.limit + 1]);
    for (const r of page) rows.push(toUserListRow(r));
  }
  rows.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  const page = rows.slice(0, s.limit);
  return { users: page, next: rows.length > s.limit ? page[page.length - 1]!.id : null };
}

/** A live user of the organization, or undefined. */
export function* findUser(organizationId: string, userId: string): StoreOp<UserListRow | undefined> {
  const row = yield* one<StoredUserListRow>(
    `SELECT ${userListColumns} FROM users u JOIN directories d ON d.id = u.directory_id
     WHERE u.id = ? AND d.organization_id = ? AND u.deleted_at IS NULL`,
    [userId, organizationId],
  );
  return row && toUserListRow(row);
}

export interface OrganizationGroup {
  id: string;
  directoryId: string;
  displayName: string;
  memberCount: number;
}

/** The organization's groups by name (for filters and a user's page), at most `limit`; optionally those of one member. */
export function* listOrganizationGroups(
  organizationId: string,
  limit: number,
  memberId?: string,
): StoreOp<OrganizationGroup[]> {
  const columns = `g.id, g.directory_id AS "directoryId", g.display_name AS "displayName", g.member_count AS "memberCount"`;
  return memberId
    ? yield* many<OrganizationGroup>(
        `SELECT ${columns} FROM groups g JOIN directories d ON d.id = g.directory_id
         WHERE d.organization_id = ? AND g.deleted_at IS NULL
           AND EXISTS (SELECT 1 FROM group_members gm WHERE gm.group_id = g.id AND gm.member_id = ?)
         ORDER BY g.display_name_lower, g.id LIMIT ?`,
        [organizationId, memberId, limit],
      )
    : yield* many<OrganizationGroup>(
        `SELECT ${columns} FROM groups g JOIN directories d ON d.id = g.directory_id
         WHERE d.organization_id = ? AND g.deleted_at IS NULL ORDER BY g.display_name_lower, g.id LIMIT ?`,
        [organizationId, limit],
      );
}
