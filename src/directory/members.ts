import type { SQL } from "drizzle-orm";
import { SQLiteSyncDialect } from "drizzle-orm/sqlite-core";
import type { groupMembers } from "../../db/schema.js";
import { Lane, enqueueJobs } from "./outbox.js";
import { dialect, jsonTextList, many, type Dialect, type SqlParam, type StoreOp } from "./store-op.js";
import type { WriteContext } from "./write-context.js";

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
 * Id lists travel as one JSON parameter (jsonTextList), so each statement below is prepared once
 * whatever the number of members, and a one-member change runs three cached statements. The
 * callers hold the group's row lock (lockGroup) while they change its members.
 */

// CROSS JOIN keeps the id list as SQLite's outer loop: one primary-key probe per id, never a
// directory scan (PostgreSQL plans the join itself; CROSS JOIN with WHERE is plain SQL on both).
const missingUsersSql = (list: string) =>
  `SELECT u.id FROM (${list}) j CROSS JOIN users u WHERE u.id = j.value AND u.directory_id = ? AND u.deleted_at IS NULL`;

/** Ids among `ids` that are not live users of the directory (a user of another directory is one of them). */
export function* missingUsers(directoryId: string, ids: readonly string[]): StoreOp<string[]> {
  if (ids.length === 0) return [];
  const unique = [...new Set(ids)];
  const found = yield* many<{ id: string }>(missingUsersSql(yield* jsonTextList()), [
    JSON.stringify(unique),
    directoryId,
  ]);
  const present = new Set(found.map((r) => r.id));
  return unique.filter((id) => !present.has(id));
}

// The members travel as one JSON array of {value, display} objects; only the way to unpack it differs.
const insertMembersSql = {
  sqlite: `INSERT INTO group_members (group_id, member_id, directory_id, member_type, display, added_at)
     SELECT ?, json_extract(value, '$.value'), ?, 'User', json_extract(value, '$.display'), ? FROM json_each(?) WHERE true
     ON CONFLICT DO NOTHING RETURNING member_id AS "memberId"`,
  postgres: `INSERT INTO group_members (group_id, member_id, directory_id, member_type, display, added_at)
     SELECT ?, m ->> 'value', ?, 'User', m ->> 'display', ? FROM json_array_elements(CAST(? AS json)) AS m
     ON CONFLICT DO NOTHING RETURNING member_id AS "memberId"`,
};

/** Inserts new memberships, ignoring existing ones; returns the ids actually added. */
export function* insertMembers(
  directoryId: string,
  groupId: string,
  members: readonly MemberInput[],
  now: number,
): StoreOp<string[]> {
  if (members.length === 0) return [];
  const byId = new Map<string, MemberInput>();
  for (const m of members) if (!byId.has(m.value)) byId.set(m.value, m);
  const rows = [...byId.values()].map((m) => ({ value: m.value, display: m.display ?? null }));
  const added = yield* many<{ memberId: string }>(insertMembersSql[yield* dialect()], [
    groupId,
    directoryId,
    now,
    JSON.stringify(rows),
  ]);
  return added.map((r) => r.memberId);
}

const deleteMembersSql = (list: string) =>
  `DELETE FROM group_members WHERE group_id = ? AND member_id IN (${list}) RETURNING member_id AS "memberId"`;

/** Deletes the listed memberships; ids that are not members are ignored. Returns the ids removed. */
export function* deleteMembers(groupId: string, ids: readonly string[]): StoreOp<string[]> {
  if (ids.length === 0) return [];
  const removed = yield* many<{ memberId: string }>(deleteMembersSql(yield* jsonTextList()), [
    groupId,
    JSON.stringify([...new Set(ids)]),
  ]);
  return removed.map((r) => r.memberId);
}

const deleteMembersExceptSql = (list: string) =>
  `DELETE FROM group_members WHERE group_id = ? AND member_id NOT IN (${list}) RETURNING member_id AS "memberId"`;

/**
 * Deletes every membership of the group except the listed ones (a full push keeps these); returns
 * the ids removed. One statement: the group's current members never travel to the process.
 */
export function* deleteMembersExcept(groupId: string, keep: readonly string[]): StoreOp<string[]> {
  const removed = yield* many<{ memberId: string }>(deleteMembersExceptSql(yield* jsonTextList()), [
    groupId,
    JSON.stringify([...new Set(keep)]),
  ]);
  return removed.map((r) => r.memberId);
}

/** Deletes every membership of the group; returns the ids removed. */
export function* deleteAllMembers(groupId: string): StoreOp<string[]> {
  const removed = yield* many<{ memberId: string }>(
    `DELETE FROM group_members WHERE group_id = ? RETURNING member_id AS "memberId"`,
    [groupId],
  );
  return removed.map((r) => r.memberId);
}

/**
 * A condition over group_members aliased `gm` (the filter module's form), built for the dialect the
 * op runs on: the two differ in truth values and string functions.
 */
export type MemberCondition = (dialect: Dialect) => SQL;

// Renders drizzle SQL with `?` placeholders (the store's form on both dialects): only the condition's
// raw text and bound values matter here, never a dialect-specific column mapping.
const renderer = new SQLiteSyncDialect();

/** Member ids of the group satisfying `condition`. */
export function* memberIdsWhere(groupId: string, condition: MemberCondition): StoreOp<string[]> {
  const { sql: text, params } = renderer.sqlToQuery(condition(yield* dialect()));
  const rows = yield* many<{ memberId: string }>(
    `SELECT gm.member_id AS "memberId" FROM group_members gm WHERE gm.group_id = ? AND ${text}`,
    [groupId, ...(params as SqlParam[])],
  );
  return rows.map((r) => r.memberId);
}

const membersOf = `SELECT member_id AS "memberId", display, member_type AS "memberType" FROM group_members
  WHERE group_id = ? ORDER BY member_id`;

/** A group's members, by id (bytewise on both dialects: COLLATE "C" on PostgreSQL). */
export function listMembers(groupId: string): StoreOp<Pick<MemberRow, "memberId" | "display" | "memberType">[]> {
  return many(membersOf, [groupId]);
}

/** Reconcile jobs for exactly the users whose membership changed: one statement whatever their number. */
export function* enqueueMemberJobs(ctx: WriteContext, userIds: Iterable<string>, now: number): StoreOp<void> {
  yield* enqueueJobs(
    { organizationId: ctx.organizationId, directoryId: ctx.directoryId, kind: "user", lane: Lane.provision, now },
    userIds,
  );
}
