import { and, asc, eq, inArray, isNull, sql, type SQL } from "drizzle-orm";
import { groupMembers, users } from "../../db/schema.js";
import { Lane, enqueueJob } from "../sync/queue.js";
import type { DbOrTx } from "./database.js";
import { chunks, type WriteContext } from "./write-context.js";

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

/** Ids among `ids` that are not live users of the directory. */
export function missingUsers(tx: DbOrTx, directoryId: string, ids: readonly string[]): string[] {
  const unique = [...new Set(ids)];
  const found = new Set<string>();
  for (const chunk of chunks(unique)) {
    const rows = tx
      .select({ id: users.id })
      .from(users)
      .where(and(eq(users.directoryId, directoryId), isNull(users.deletedAt), inArray(users.id, chunk)))
      .all();
    for (const r of rows) found.add(r.id);
  }
  return unique.filter((id) => !found.has(id));
}

/** Inserts new memberships, ignoring existing ones; returns the ids actually added. */
export function insertMembers(tx: DbOrTx, directoryId: string, groupId: string, members: readonly MemberInput[], now: number): string[] {
  const byId = new Map<string, MemberInput>();
  for (const m of members) if (!byId.has(m.value)) byId.set(m.value, m);
  const added: string[] = [];
  for (const chunk of chunks([...byId.values()])) {
    const rows = tx
      .insert(groupMembers)
      .values(
        chunk.map((m) => ({ groupId, memberId: m.value, directoryId, memberType: "User", display: m.display ?? null, addedAt: now })),
      )
      .onConflictDoNothing()
      .returning({ memberId: groupMembers.memberId })
      .all();
    for (const r of rows) added.push(r.memberId);
  }
  return added;
}

/** Deletes the listed memberships; ids that are not members are ignored. Returns the ids removed. */
export function deleteMembers(tx: DbOrTx, groupId: string, ids: readonly string[]): string[] {
  const removed: string[] = [];
  for (const chunk of chunks([...new Set(ids)])) {
    const rows = tx
      .delete(groupMembers)
      .where(and(eq(groupMembers.groupId, groupId), inArray(groupMembers.memberId, chunk)))
      .returning({ memberId: groupMembers.memberId })
      .all();
    for (const r of rows) removed.push(r.memberId);
  }
  return removed;
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
    .all<{ member_id: string }>(sql`SELECT gm.member_id FROM group_members gm WHERE gm.group_id = ${groupId} AND ${condition}`)
    .map((r) => r.member_id);
}

export function listMembers(db: DbOrTx, groupId: string): Pick<MemberRow, "memberId" | "display" | "memberType">[] {
  return db
    .select({ memberId: groupMembers.memberId, display: groupMembers.display, memberType: groupMembers.memberType })
    .from(groupMembers)
    .where(eq(groupMembers.groupId, groupId))
    .orderBy(asc(groupMembers.memberId))
    .all();
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
  for (const subjectId of userIds) {
    enqueueJob(tx, { organizationId: ctx.organizationId, directoryId: ctx.directoryId, kind: "user", subjectId, lane: Lane.provision, now });
  }
}
