import { and, eq, sql, type SQL } from "drizzle-orm";
import { SQLiteSyncDialect } from "drizzle-orm/sqlite-core";
import { groupMembers, groups, userEmails, users } from "../../db/schema.js";
import { invalidValue, uniqueness } from "../errors.js";
import { Lane, enqueueJob } from "./outbox.js";
import { recordAudit } from "./audit.js";
import type { DbOrTx } from "./database.js";
import { adjustDirectoryCounts } from "./directories.js";
import { foldCase } from "./fold.js";
import { newResourceId } from "./ids.js";
import { bumpDirectoryGeneration } from "./generations.js";
import { prepared } from "./statements.js";
import { changedAttributes, isUniqueViolation, type WriteContext } from "./write-context.js";
import { dialect, many, one, runSync, type Dialect, type SqlParam, type StoreOp } from "./store-op.js";

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

const userColumns = `id, directory_id AS "directoryId", user_name AS "userName", user_name_lower AS "userNameLower",
  external_id AS "externalId", display_name AS "displayName", active, resource, version, created_at AS "createdAt",
  modified_at AS "modifiedAt", deleted_at AS "deletedAt"`;
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
  /**
   * The filter, as a condition over the resource table in the SQL of the dialect the op runs on
   * (src/scim/filter/ builds it; drizzle `sql` with every value a bound parameter).
   */
  where?: (dialect: Dialect) => SQL;
  /** sortBy (RFC 7644 §3.4.2.3): its expression in the dialect's SQL; creation order breaks ties. */
  sortBy?: { expression: (dialect: Dialect) => SQL; descending: boolean };
  offset: number;
  limit: number;
  /** Keyset: only rows after this (created_at, id), in the default order; offset then counts from it. */
  after?: { createdAt: number; id: string };
}

const fragments = new SQLiteSyncDialect();

/**
 * A drizzle fragment as `?` text and parameters, which both dialects run (the PostgreSQL driver
 * numbers the placeholders). Column references come out as `"users"."id"`, valid on both.
 */
function fragment(condition: SQL): { text: string; params: SqlParam[] } {
  const { sql: text, params } = fragments.sqlToQuery(condition);
  return { text, params: params as SqlParam[] };
}

/**
 * totalResults: the maintained count when unfiltered (O(1)), else a count of the matches. The
 * directory condition is a plain equality so that SQLite's planner (which has no statistics) can use
 * it with the filter on a composite (directory_id, …) index: `externalId eq` and `displayName eq`
 * then probe one index entry instead of scanning the table.
 */
export const countUsers = (directoryId: string, where?: ListQuery["where"]): StoreOp<number> =>
  countLive("users", directoryId, where);

const liveCount = {
  users: "SELECT user_count AS n FROM directories WHERE id = ?",
  groups: "SELECT group_count AS n FROM directories WHERE id = ?",
} as const;

/** countUsers for either resource table (the directory row keeps `user_count` and `group_count`). */
export function* countLive(
  table: "users" | "groups",
  directoryId: string,
  where?: ListQuery["where"],
): StoreOp<number> {
  if (!where) return (yield* one<{ n: number }>(liveCount[table], [directoryId]))?.n ?? 0;
  const condition = fragment(where(yield* dialect()));
  const counted = yield* one<{ n: number }>(
    `SELECT count(*) AS n FROM ${table} WHERE directory_id = ? AND deleted_at IS NULL AND ${condition.text}`,
    [directoryId, ...condition.params],
  );
  return counted?.n ?? 0;
}

/**
 * A page of live rows of `table`: one SQL text per filter shape and sort, so the connection's
 * statement cache keeps serving it. Order: sortBy if any, then creation (created_at, id), a total
 * order on both dialects (ids compare bytewise: COLLATE "C" on PostgreSQL).
 *
 * Filtered, on SQLite, each ORDER BY term is prefixed with unary plus, which keeps SQLite from
 * reading an index in sort order (SQLite documentation, "The SQLite Query Optimizer Overview",
 * disqualifying indexes): without statistics it would rather walk the whole directory in creation
 * order than sort the few rows an indexed filter finds. The order itself is unchanged; unfiltered
 * pages still read the creation-order index and stop after one page. PostgreSQL plans with
 * statistics (and has no unary plus on text).
 *
 * sortBy puts resources without the attribute first ascending and last descending: SQLite's NULL
 * order, which PostgreSQL (NULLs last ascending) is told explicitly.
 */
export function* listLive<Row>(
  table: "users" | "groups",
  columns: string,
  directoryId: string,
  query: ListQuery,
): StoreOp<Row[]> {
  if (query.limit <= 0) return [];
  const sqlDialect = yield* dialect();
  let text = `SELECT ${columns} FROM ${table} WHERE directory_id = ? AND deleted_at IS NULL`;
  const params: SqlParam[] = [directoryId];
  if (query.where) {
    const condition = fragment(query.where(sqlDialect));
    text += ` AND ${condition.text}`;
    params.push(...condition.params);
  }
  if (query.after) {
    text += " AND (created_at, id) > (?, ?)";
    params.push(query.after.createdAt, query.after.id);
  }
  const plus = query.where && sqlDialect === "sqlite" ? "+" : "";
  let order = `${plus}created_at, ${plus}id`;
  if (query.sortBy) {
    const sort = fragment(query.sortBy.expression(sqlDialect));
    const direction =
      sqlDialect === "postgres"
        ? query.sortBy.descending
          ? "DESC NULLS LAST"
          : "ASC NULLS FIRST"
        : query.sortBy.descending
          ? "DESC"
          : "ASC";
    order = `${plus}${sort.text} ${direction}, ${order}`;
    params.push(...sort.params);
  }
  text += ` ORDER BY ${order} LIMIT ? OFFSET ?`;
  params.push(query.limit, query.offset);
  return yield* many<Row>(text, params);
}

/** A page of the directory's live users (SCIM GET /Users). */
export function* listUsers(directoryId: string, query: ListQuery): StoreOp<UserRow[]> {
  return (yield* listLive<RawUser>("users", userColumns, directoryId, query)).map(toUser);
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
