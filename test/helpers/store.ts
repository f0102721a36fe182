import { many, one, value, type StoreOp } from "../../src/directory/store-op.js";
import type { SqlStore } from "../../src/directory/sql.js";

/**
 * Reads of stored state, so tests assert what was written and not only what was answered. Each runs
 * as one read of the store, the same SQL on SQLite and PostgreSQL, rows in SQLite's shape (1/0
 * booleans turned back into true/false here).
 */

interface UserRow {
  id: string;
  directoryId: string;
  userName: string;
  userNameLower: string;
  externalId: string | null;
  displayName: string | null;
  active: number | boolean;
  resource: string;
  version: number;
  createdAt: number;
  modifiedAt: number;
  deletedAt: number | null;
}

export async function storedUser(store: SqlStore, id: string) {
  const row = await store.read(
    one<UserRow>(
      `SELECT id, directory_id AS "directoryId", user_name AS "userName", user_name_lower AS "userNameLower",
              external_id AS "externalId", display_name AS "displayName", active, resource, version,
              created_at AS "createdAt", modified_at AS "modifiedAt", deleted_at AS "deletedAt"
         FROM users WHERE id = ?`,
      [id],
    ),
  );
  return row
    ? { ...row, active: Boolean(row.active), document: JSON.parse(row.resource) as Record<string, unknown> }
    : undefined;
}

interface GroupRow {
  id: string;
  directoryId: string;
  displayName: string;
  displayNameLower: string;
  externalId: string | null;
  resource: string;
  version: number;
  memberCount: number;
  createdAt: number;
  modifiedAt: number;
  deletedAt: number | null;
}

export async function storedGroup(store: SqlStore, id: string) {
  const row = await store.read(
    one<GroupRow>(
      `SELECT id, directory_id AS "directoryId", display_name AS "displayName",
              display_name_lower AS "displayNameLower", external_id AS "externalId", resource, version,
              member_count AS "memberCount", created_at AS "createdAt", modified_at AS "modifiedAt",
              deleted_at AS "deletedAt"
         FROM groups WHERE id = ?`,
      [id],
    ),
  );
  return row ? { ...row, document: JSON.parse(row.resource) as Record<string, unknown> } : undefined;
}

/** Member ids sorted by JavaScript's order (not the database collation's), so both dialects compare alike. */
export const memberIdsOf = async (store: SqlStore, groupId: string): Promise<string[]> =>
  (await store.read(many<{ id: string }>(`SELECT member_id AS "id" FROM group_members WHERE group_id = ?`, [groupId])))
    .map((r) => r.id)
    .sort();

export const emailIndexOf = async (store: SqlStore, userId: string) =>
  (
    await store.read(
      many<{
        userId: string;
        directoryId: string;
        position: number;
        valueLower: string;
        type: string | null;
        primary: number;
      }>(
        `SELECT user_id AS "userId", directory_id AS "directoryId", position, value_lower AS "valueLower", type,
                "primary" FROM user_emails WHERE user_id = ? ORDER BY position`,
        [userId],
      ),
    )
  ).map((r) => ({ ...r, primary: Boolean(r.primary) }));

interface JobRow {
  id: number;
  organizationId: string;
  directoryId: string | null;
  kind: string;
  key: string;
  subjectId: string;
  lane: number;
  state: string;
  attempts: number;
  runAfter: number;
}

export const pendingJob = (store: SqlStore, kind: string, subjectId: string): Promise<JobRow | undefined> =>
  store.read(
    one<JobRow>(
      `SELECT id, organization_id AS "organizationId", directory_id AS "directoryId", kind, key,
              subject_id AS "subjectId", lane, state, attempts, run_after AS "runAfter"
         FROM jobs WHERE key = ? AND state = 'pending'`,
      [`${kind}:${subjectId}`],
    ),
  );

/** An audit entry as the tests compare it (rows in SQLite's shape on both dialects). */
export interface AuditRow {
  id: number;
  at: number;
  actorType: string;
  actorId: string;
  organizationId: string | null;
  directoryId: string | null;
  action: string;
  targetType: string;
  targetId: string | null;
  before: string | null;
  after: string | null;
  requestId: string | null;
}

export const auditFor = (store: SqlStore, targetId: string): Promise<AuditRow[]> =>
  store.read(
    many<AuditRow>(
      `SELECT id, at, actor_type AS "actorType", actor_id AS "actorId", organization_id AS "organizationId",
              directory_id AS "directoryId", action, target_type AS "targetType", target_id AS "targetId",
              before, after, request_id AS "requestId"
         FROM audit_entries WHERE target_id = ? ORDER BY id`,
      [targetId],
    ),
  );

/** Sorted by id in JavaScript: the dialects' collations may order text differently. */
const versions = (rows: { id: string; v: number }[]) => rows.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));

function* footprint() {
  const count = (table: string): StoreOp<number | undefined> => value<number>(`SELECT count(*) FROM ${table}`);
  return {
    users: (yield* count("users")) ?? 0,
    groups: (yield* count("groups")) ?? 0,
    members: (yield* count("group_members")) ?? 0,
    jobs: (yield* count("jobs")) ?? 0,
    audit: (yield* count("audit_entries")) ?? 0,
    userVersions: versions(yield* many<{ id: string; v: number }>(`SELECT id, version AS "v" FROM users`)),
    groupVersions: versions(yield* many<{ id: string; v: number }>(`SELECT id, version AS "v" FROM groups`)),
  };
}

/** Totals that any write would move, read in one snapshot: a failed request must leave all of them alone. */
export const writeFootprint = (store: SqlStore) => store.read(footprint());
