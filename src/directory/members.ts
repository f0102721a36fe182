import { eq, sql, type SQL } from "drizzle-orm";
import { groupMembers } from "../../db/schema.js";
import { Lane, enqueueJobs } from "./outbox.js";
import type { DbOrTx } from "./database.js";
import { prepared } from "./statements.js";
import type { WriteContext } from "./write-context.js";
import { many, runSync, type StoreOp } from "./store-op.js";

/**
 * Group membership, one row per member: adding or removing members touches only those rows, so a
 * change costs in proportion to the members it changes, never to the group's size (a 50,000-member
 * group is never loaded or rewritten to add one member).
 */
export type MemberRow = typeof groupMembers.$inferSelect;

export interface MemberInput {
  value: string;
  display?: string;
}

/*
 * Id lists travel as one JSON parameter expanded by json_each, so each statement below is prepared
 * once whatever the number of members, and a one-member change runs three cached statements.
 */

/** Ids among `ids` that are not live users of the directory. */
export function missingUsers(tx: DbOrTx, directoryId: string, ids: readonly string[]): string[] {
  if (ids.length === 0) return [];
  const unique = [...new Set(ids)];
  // CROSS JOIN keeps json_each as the outer loop: one primary-key probe per id, never a directory scan.
  const found = prepared(
    tx,
    "SELECT u.id FROM json_each(?) j CROSS JOIN users u ON u.id = j.value WHERE u.directory_id = ? AND u.deleted_at IS NULL",
  )
    .pluck()
    .all(JSON.stringify(unique), directoryId) as string[];
  const present = new Set(found);
  return unique.filter((id) => !present.has(id));
}

/** Inserts new memberships, ignoring existing ones; returns the ids actually added. */
export function insertMembers(
  tx: DbOrTx,
  directoryId: string,
  groupId: string,
  members: readonly MemberInput[],
  now: number,
): string[] {
  if (members.length === 0) return [];
  const byId = new Map<string, MemberInput>();
  for (const m of members) if (!byId.has(m.value)) byId.set(m.value, m);
  const rows = [...byId.values()].map((m) => ({ value: m.value, display: m.display ?? null }));
  return prepared(
    tx,
    `INSERT INTO group_members (group_id, member_id, directory_id, member_type, display, added_at)
     SELECT ?, json_extract(value, '$.value'), ?, 'User', json_extract(value, '$.display'), ? FROM json_each(?) WHERE true
     ON CONFLICT DO NOTHING RETURNING member_id`,
  )
    .pluck()
    .all(groupId, directoryId, now, JSON.stringify(rows)) as string[];
}

/** Deletes the listed memberships; ids that are not members are ignored. Returns the ids removed. */
export function deleteMembers(tx: DbOrTx, groupId: string, ids: readonly string[]): string[] {
  if (ids.length === 0) return [];
  return prepared(
    tx,
    "DELETE FROM group_members WHERE group_id = ? AND member_id IN (SELECT value FROM json_each(?)) RETURNING member_id",
  )
    .pluck()
    .all(groupId, JSON.stringify([...new Set(ids)])) as string[];
}

/** Deletes every membership of the group; returns the ids removed. */
export function deleteAllMembers(tx: DbOrTx, groupId: string): string[] {
  return tx
    .delete(groupMembers)
    .where(eq(groupMembers.groupId, groupId))
    .returning({ memberId: groupMembers.memberId })
    .all()
    .map((r) => r.memberId);
}

/** Member ids of the group satisfying `condition`, SQL over group_members aliased `gm` (the filter module's form). */
export function memberIdsWhere(tx: DbOrTx, groupId: string, condition: SQL): string[] {
  return tx
    .all<{ member_id: string }>(
      sql`SELECT gm.member_id FROM group_members gm WHERE gm.group_id = ${groupId} AND ${condition}`,
    )
    .map((r) => r.member_id);
}

const membersOf = `SELECT member_id AS "memberId", display, member_type AS "memberType" FROM group_members
  WHERE group_id = ? ORDER BY member_id`;

/** A group's members, by id (bytewise on both dialects: COLLATE "C" on PostgreSQL). */
export function listMembers(groupId: string): StoreOp<Pick<MemberRow, "memberId" | "display" | "memberType">[]> {
  return many(membersOf, [groupId]);
}

export function memberIds(db: DbOrTx, groupId: string): string[] {
  return db
    .select({ id: groupMembers.memberId })
    .from(groupMembers)
    .where(eq(groupMembers.groupId, groupId))
    .all()
    .map((r) => r.id);
}

/** Reconcile jobs for exactly the users whose membership changed. */
export function enqueueMemberJobs(tx: DbOrTx, ctx: WriteContext, userIds: Iterable<string>, now: number): void {
  runSync(
    tx,
    enqueueJobs(
      { organizationId: ctx.organizationId, directoryId: ctx.directoryId, kind: "user", lane: Lane.provision, now },
      userIds,
    ),
  );
}
