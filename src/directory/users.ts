import { and, eq, sql, type SQL } from "drizzle-orm";
import { groupMembers, groups, userEmails, users } from "../../db/schema.js";
import { invalidValue, uniqueness } from "../errors.js";
import { Lane, enqueueJob } from "./outbox.js";
import { recordAudit } from "./audit.js";
import type { DbOrTx } from "./database.js";
import { adjustDirectoryCounts } from "./directories.js";
import { foldCase } from "./fold.js";
import { newResourceId } from "./ids.js";
import { bumpDirectoryGeneration } from "./generations.js";
import { prepared, selectAll, selectOne } from "./statements.js";
import { changedAttributes, isUniqueViolation, type WriteContext } from "./write-context.js";
import { runSync } from "./store-op.js";

/**
 * SCIM users as the IdP pushed them. Every write runs inside the caller's transaction and commits,
 * with it, its audit entry and a reconcile job for the user (docs/design.md, "Data flow"): deprovision lane when the
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

export function columns(resource: UserResource): Columns {
  const userName = resource.userName;
  if (typeof userName !== "string" || userName.trim() === "")
    throw invalidValue("userName is required and must not be empty");
  const text = (v: unknown): string | null => (typeof v === "string" ? v : null);
  return {
    userName,
    // RFC 7643 §4.1.1: userName is caseExact=false; uniqueness and `eq` ignore case (Okta's SPEC test),
    // Unicode-aware (RFC 7644 §7.8): see foldCase.
    userNameLower: foldCase(userName),
    externalId: text(resource.externalId),
    displayName: text(resource.displayName),
    // A user created without `active` is active: the IdP provisioned it.
    active: resource.active !== false,
  };
}

export function emailRows(
  userId: string,
  directoryId: string,
  resource: UserResource,
): (typeof userEmails.$inferInsert)[] {
  const emails = Array.isArray(resource.emails) ? (resource.emails as Record<string, unknown>[]) : [];
  return emails
    .map((e, position) => ({ e, position }))
    .filter(({ e }) => typeof e.value === "string")
    .map(({ e, position }) => ({
      userId,
      directoryId,
      position,
      valueLower: foldCase(e.value as string),
      type: typeof e.type === "string" ? e.type : null,
      primary: e.primary === true,
    }));
}

const emailInsertChunk = 500;
const insertEmail = `INSERT INTO user_emails (user_id, directory_id, position, value_lower, type, "primary") VALUES (?, ?, ?, ?, ?, ?)`;

function indexEmails(tx: DbOrTx, userId: string, directoryId: string, resource: UserResource): void {
  prepared(tx, "DELETE FROM user_emails WHERE user_id = ?").run(userId);
  const rows = emailRows(userId, directoryId, resource);
  // A user has one or a few emails: one cached statement a row, no SQL built per write.
  if (rows.length <= 8) {
    const insert = prepared(tx, insertEmail);
    for (const r of rows)
      insert.run(r.userId, r.directoryId, r.position, r.valueLower, r.type ?? null, r.primary ? 1 : 0);
    return;
  }
  // Chunked: one multi-row INSERT binds 6 variables a row, and SQLite refuses more than 32,766.
  for (let i = 0; i < rows.length; i += emailInsertChunk)
    tx.insert(userEmails)
      .values(rows.slice(i, i + emailInsertChunk))
      .run();
}

const summary = (row: Pick<UserRow, "userName" | "externalId" | "active">) => ({
  userName: row.userName,
  externalId: row.externalId,
  active: row.active,
});

const userColumns = `id, directory_id AS directoryId, user_name AS userName, user_name_lower AS userNameLower,
  external_id AS externalId, display_name AS displayName, active, resource, version, created_at AS createdAt,
  modified_at AS modifiedAt, deleted_at AS deletedAt`;
const userById = `SELECT ${userColumns} FROM users WHERE id = ? AND directory_id = ? AND deleted_at IS NULL`;
type RawUser = Omit<UserRow, "active"> & { active: number };
const toUser = (row: RawUser): UserRow => ({ ...row, active: row.active === 1 });

/** A live user of the directory (the hot path of every GET, PUT and PATCH: a cached statement). */
export function getUser(db: DbOrTx, directoryId: string, id: string): UserRow | undefined {
  const row = prepared(db, userById).get(id, directoryId) as RawUser | undefined;
  return row && toUser(row);
}

const userNameHolder = `SELECT id FROM users WHERE directory_id = ? AND user_name_lower = ? AND deleted_at IS NULL`;

function assertUserNameFree(tx: DbOrTx, directoryId: string, userNameLower: string, self?: string): void {
  const holder = prepared(tx, userNameHolder).get(directoryId, userNameLower) as { id: string } | undefined;
  if (holder && holder.id !== self) throw uniqueness("a user with this userName already exists in this directory");
}

const insertUser = `INSERT INTO users (id, directory_id, user_name, user_name_lower, external_id, display_name, active,
  resource, version, created_at, modified_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 1, ?, ?)`;

export function createUser(tx: DbOrTx, ctx: WriteContext, resource: UserResource): UserRow {
  const now = ctx.at;
  const cols = columns(resource);
  // A person a migration already brought in: the IdP's create adopts that user (and its Auth0 account).
  if (ctx.actor.type === "directory") {
    const claimed = claimMigratedUser(tx, ctx, resource);
    if (claimed) return claimed;
  }
  assertUserNameFree(tx, ctx.directoryId, cols.userNameLower);
  // Cached statements, not drizzle's builder: this is every POST /Users.
  const row: UserRow = {
    id: newResourceId(),
    directoryId: ctx.directoryId,
    ...cols,
    resource: JSON.stringify(resource),
    version: 1,
    createdAt: now,
    modifiedAt: now,
    deletedAt: null,
  };
  try {
    prepared(tx, insertUser).run(
      row.id,
      row.directoryId,
      row.userName,
      row.userNameLower,
      row.externalId,
      row.displayName,
      row.active ? 1 : 0,
      row.resource,
      row.createdAt,
      row.modifiedAt,
    );
  } catch (err) {
    // The partial unique index is the final arbiter (another process may have won the race).
    if (isUniqueViolation(err)) throw uniqueness("a user with this userName already exists in this directory");
    throw err;
  }
  indexEmails(tx, row.id, ctx.directoryId, resource);
  runSync(tx, adjustDirectoryCounts(ctx.directoryId, { users: 1 }));
  runSync(tx, bumpDirectoryGeneration(ctx.directoryId));
  runSync(
    tx,
    recordAudit({
      actor: ctx.actor,
      organizationId: ctx.organizationId,
      directoryId: ctx.directoryId,
      action: "user.create",
      targetType: "user",
      targetId: row.id,
      after: summary(row),
      requestId: ctx.requestId,
      at: now,
    }),
  );
  runSync(
    tx,
    enqueueJob({
      organizationId: ctx.organizationId,
      directoryId: ctx.directoryId,
      kind: "user",
      subjectId: row.id,
      lane: Lane.provision,
      now,
    }),
  );
  return row;
}

const updateUserRow = `UPDATE users SET user_name = ?, user_name_lower = ?, external_id = ?, display_name = ?,
  active = ?, resource = ?, version = ?, modified_at = ? WHERE id = ?`;

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
  const now = ctx.at;
  const cols = columns(resource);
  if (cols.userNameLower !== existing.userNameLower)
    assertUserNameFree(tx, ctx.directoryId, cols.userNameLower, existing.id);
  // A cached statement, not drizzle's builder: this is every PATCH and PUT of a user.
  const row: UserRow = { ...existing, ...cols, resource: text, version: existing.version + 1, modifiedAt: now };
  try {
    prepared(tx, updateUserRow).run(
      row.userName,
      row.userNameLower,
      row.externalId,
      row.displayName,
      row.active ? 1 : 0,
      row.resource,
      row.version,
      row.modifiedAt,
      row.id,
    );
  } catch (err) {
    if (isUniqueViolation(err)) throw uniqueness("a user with this userName already exists in this directory");
    throw err;
  }
  runSync(tx, bumpDirectoryGeneration(ctx.directoryId));
  const before = JSON.parse(existing.resource) as UserResource;
  if (JSON.stringify(before.emails) !== JSON.stringify(resource.emails))
    indexEmails(tx, row.id, ctx.directoryId, resource);
  const deactivated = existing.active && !row.active;
  runSync(
    tx,
    recordAudit({
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
    }),
  );
  runSync(
    tx,
    enqueueJob({
      organizationId: ctx.organizationId,
      directoryId: ctx.directoryId,
      kind: "user",
      subjectId: row.id,
      lane: deactivated ? Lane.deprovision : Lane.provision,
      now,
    }),
  );
  return row;
}

/**
 * SCIM DELETE: a tombstone (the sync engine needs it to deprovision), the user's memberships removed
 * (each group's version moves, so its ETag changes), then 404 for this id and the userName free again.
 */
export function deleteUser(tx: DbOrTx, ctx: WriteContext, existing: UserRow): void {
  const now = ctx.at;
  tx.update(users)
    .set({ deletedAt: now, modifiedAt: now, version: existing.version + 1 })
    .where(eq(users.id, existing.id))
    .run();
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
  runSync(tx, adjustDirectoryCounts(ctx.directoryId, { users: -1 }));
  runSync(tx, bumpDirectoryGeneration(ctx.directoryId));
  runSync(
    tx,
    recordAudit({
      actor: ctx.actor,
      organizationId: ctx.organizationId,
      directoryId: ctx.directoryId,
      action: "user.delete",
      targetType: "user",
      targetId: existing.id,
      before: { ...summary(existing), groups: memberships.length },
      requestId: ctx.requestId,
      at: now,
    }),
  );
  runSync(
    tx,
    enqueueJob({
      organizationId: ctx.organizationId,
      directoryId: ctx.directoryId,
      kind: "user",
      subjectId: existing.id,
      lane: Lane.deprovision,
      now,
    }),
  );
}

export interface ListQuery {
  where?: SQL;
  orderBy: SQL[];
  offset: number;
  limit: number;
  /** Keyset: only rows after this (created_at, id), in the default order; offset then counts from it. */
  after?: { createdAt: number; id: string };
}

/** The keyset condition of ListQuery.after. */
export const afterCondition = (after: ListQuery["after"]): SQL =>
  after ? sql`(created_at, id) > (${after.createdAt}, ${after.id})` : sql`1`;

/**
 * totalResults: the maintained count when unfiltered (O(1)), else a count of the matches. The
 * directory condition is a plain equality so that SQLite's planner (which has no statistics) can use
 * it with the filter on a composite (directory_id, …) index: `externalId eq` and `displayName eq`
 * then probe one index entry instead of scanning the table.
 */
export const countUsers = (db: DbOrTx, directoryId: string, where?: SQL): number =>
  countLive(db, "users", directoryId, where);

/** countUsers for either resource table (the directory row keeps `user_count` and `group_count`). */
export function countLive(db: DbOrTx, table: "users" | "groups", directoryId: string, where?: SQL): number {
  const counter = table === "users" ? "user_count" : "group_count";
  if (!where)
    return (
      (
        prepared(db, `SELECT ${counter} AS n FROM directories WHERE id = ?`).get(directoryId) as
          { n: number } | undefined
      )?.n ?? 0
    );
  return (
    selectOne<{ n: number }>(
      db,
      sql`SELECT count(*) AS n FROM ${sql.raw(table)} WHERE directory_id = ${directoryId} AND deleted_at IS NULL AND ${where}`,
    )?.n ?? 0
  );
}

/**
 * ORDER BY of a list query. Filtered, each term is prefixed with unary plus, which keeps SQLite from
 * reading an index in sort order (SQLite documentation, "The SQLite Query Optimizer Overview",
 * disqualifying indexes): without statistics it would rather walk the whole directory in creation
 * order than sort the few rows an indexed filter finds. The order itself is unchanged; unfiltered
 * pages still read the creation-order index and stop after one page.
 */
export const orderTerms = (query: Pick<ListQuery, "where" | "orderBy">): SQL =>
  sql.join(query.where ? query.orderBy.map((term) => sql`+${term}`) : query.orderBy, sql`, `);

export function listUsers(db: DbOrTx, directoryId: string, query: ListQuery): UserRow[] {
  if (query.limit <= 0) return [];
  return selectAll<RawUser>(
    db,
    sql`SELECT ${sql.raw(userColumns)} FROM users WHERE directory_id = ${directoryId} AND deleted_at IS NULL AND ${query.where ?? sql`1`} AND ${afterCondition(query.after)}
      ORDER BY ${orderTerms(query)} LIMIT ${query.limit} OFFSET ${query.offset}`,
  ).map(toUser);
}

/**
 * Users a migration put into a directory before any IdP pushed them. The first SCIM create of the
 * same person (externalId when both sides have one, else email) takes the migrated user over, with
 * its Auth0 link and history, instead of creating a second user and a second Auth0 account.
 */
function emailsOf(resource: UserResource): string[] {
  const out = new Set<string>();
  if (typeof resource.userName === "string" && resource.userName.includes("@"))
    out.add(resource.userName.toLowerCase());
  const emails = Array.isArray(resource.emails) ? (resource.emails as Record<string, unknown>[]) : [];
  for (const e of emails) if (typeof e?.value === "string") out.add(e.value.toLowerCase());
  return [...out];
}

/** The SCIM create of a migrated person: replaces the migrated user's document and returns it; undefined when none matches. */
const unclaimedMigrated = `SELECT user_id AS userId, external_id AS externalId, email_lower AS emailLower
  FROM migrated_users WHERE directory_id = @dir AND claimed_at IS NULL
  AND ((@ext IS NOT NULL AND external_id = @ext) OR email_lower IN (SELECT value FROM json_each(@emails)))`;

export function claimMigratedUser(tx: DbOrTx, ctx: WriteContext, resource: UserResource): UserRow | undefined {
  const externalId = typeof resource.externalId === "string" ? resource.externalId : null;
  const emails = emailsOf(resource);
  if (!externalId && emails.length === 0) return undefined;
  // Every create from an IdP asks this; a cached statement (emails as a JSON list) keeps it cheap.
  const candidates = prepared(tx, unclaimedMigrated).all({
    dir: ctx.directoryId,
    ext: externalId,
    emails: JSON.stringify(emails),
  }) as {
    userId: string;
    externalId: string | null;
    emailLower: string;
  }[];
  // An externalId match wins; an email match is refused when both sides carry different externalIds.
  const match =
    candidates.find((c) => externalId !== null && c.externalId === externalId) ??
    candidates.find((c) => emails.includes(c.emailLower) && (c.externalId === null || externalId === null));
  if (!match) return undefined;
  const existing = getUser(tx, ctx.directoryId, match.userId);
  if (!existing) return undefined;
  prepared(tx, "UPDATE migrated_users SET claimed_at = ? WHERE user_id = ?").run(ctx.at, match.userId);
  return updateUser(tx, ctx, existing, resource, "user.replace");
}
