import { and, asc, eq, sql } from "drizzle-orm";
import type { SQLiteTable } from "drizzle-orm/sqlite-core";
import { auditEntries, groupMembers, groups, jobs, userEmails, users } from "../../db/schema.js";
import type { Db } from "../../src/directory/database.js";

/** Reads of stored state, so tests assert what was written and not only what was answered. */
export function storedUser(db: Db, id: string) {
  const row = db.select().from(users).where(eq(users.id, id)).get();
  return row ? { ...row, document: JSON.parse(row.resource) as Record<string, unknown> } : undefined;
}

export function storedGroup(db: Db, id: string) {
  const row = db.select().from(groups).where(eq(groups.id, id)).get();
  return row ? { ...row, document: JSON.parse(row.resource) as Record<string, unknown> } : undefined;
}

export const memberIdsOf = (db: Db, groupId: string): string[] =>
  db
    .select({ id: groupMembers.memberId })
    .from(groupMembers)
    .where(eq(groupMembers.groupId, groupId))
    .orderBy(asc(groupMembers.memberId))
    .all()
    .map((r) => r.id)
    .sort();

export const emailIndexOf = (db: Db, userId: string) =>
  db.select().from(userEmails).where(eq(userEmails.userId, userId)).orderBy(asc(userEmails.position)).all();

export const pendingJob = (db: Db, kind: string, subjectId: string) =>
  db
    .select()
    .from(jobs)
    .where(and(eq(jobs.key, `${kind}:${subjectId}`), eq(jobs.state, "pending")))
    .get();

export const auditFor = (db: Db, targetId: string) =>
  db.select().from(auditEntries).where(eq(auditEntries.targetId, targetId)).orderBy(asc(auditEntries.id)).all();

/** Totals that any write would move: a failed request must leave all of them alone. */
export function writeFootprint(db: Db) {
  // $count() answers a query builder, not a number; count(*) gives values that compare.
  const count = (table: SQLiteTable) =>
    db
      .select({ n: sql<number>`count(*)` })
      .from(table)
      .get()?.n ?? 0;
  return {
    users: count(users),
    groups: count(groups),
    members: count(groupMembers),
    jobs: count(jobs),
    audit: count(auditEntries),
    userVersions: db.select({ id: users.id, v: users.version }).from(users).all(),
    groupVersions: db.select({ id: groups.id, v: groups.version }).from(groups).all(),
  };
}
