import type { SQL } from "drizzle-orm";
import { SQLiteSyncDialect } from "drizzle-orm/sqlite-core";
import type { userEmails, users } from "../../db/schema.js";
import { invalidValue, preconditionFailed, uniqueness } from "../errors.js";
import { Lane, enqueueJob } from "./outbox.js";
import { recordAudit } from "./audit.js";
import { directoryGone } from "./directories.js";
import { foldCase } from "./fold.js";
import { newResourceId } from "./ids.js";
import { recordDirectoryWrite } from "./generations.js";
import { CredentialEpochMoved, scimTokenEpochValue } from "./tokens.js";
import { changedAttributes, isForeignKeyViolation, isUniqueViolation, type WriteContext } from "./write-context.js";
import {
  dialect,
  exec,
  forUpdate,
  jsonTextList,
  later,
  many,
  one,
  type Dialect,
  type SqlParam,
  type StoreOp,
} from "./store-op.js";

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
const emailColumnsCount = 6;
const insertEmail = `INSERT INTO user_emails (user_id, directory_id, position, value_lower, type, "primary") VALUES (?, ?, ?, ?, ?, ?)`;

/**
 * `INSERT INTO <table> (...) VALUES (?, …), (?, …)` for `rows` rows of `width` columns. Built once per
 * (table, row count): the few batch sizes a bulk write uses stay prepared.
 */
const multiRowTexts = new Map<string, string>();
export function multiRowInsert(head: string, width: number, rows: number): string {
  const key = `${rows}:${head}`;
  let text = multiRowTexts.get(key);
  if (text === undefined) {
    const row = `(${Array.from({ length: width }, () => "?").join(", ")})`;
    text = `${head} VALUES ${Array.from({ length: rows }, () => row).join(", ")}`;
    if (multiRowTexts.size >= 1000) multiRowTexts.delete(multiRowTexts.keys().next().value!);
    multiRowTexts.set(key, text);
  }
  return text;
}

const emailInsertHead = `INSERT INTO user_emails (user_id, directory_id, position, value_lower, type, "primary")`;
type EmailRow = ReturnType<typeof emailRows>[number];
const emailParams = (r: EmailRow): SqlParam[] => [
  r.userId,
  r.directoryId,
  r.position,
  r.valueLower,
  r.type ?? null,
  r.primary ?? false,
];

/** Inserts email index rows in multi-row statements (a bulk write; see indexEmails for one user's). */
export function* insertEmailRows(rows: EmailRow[]): StoreOp<void> {
  // One multi-row INSERT binds 6 parameters a row: 500 rows stay far under SQLite's 32,766 and
  // PostgreSQL's 65,535 parameters a statement.
  for (let i = 0; i < rows.length; i += emailInsertChunk) {
    const chunk = rows.slice(i, i + emailInsertChunk);
    yield* exec(multiRowInsert(emailInsertHead, emailColumnsCount, chunk.length), chunk.flatMap(emailParams));
  }
}

function* indexEmails(userId: string, directoryId: string, resource: UserResource, created = false): StoreOp<void> {
  if (!created) yield* later("DELETE FROM user_emails WHERE user_id = ?", [userId]);
  const rows = emailRows(userId, directoryId, resource);
  // A user has one or a few emails: one cached statement a row, no SQL built per write.
  if (rows.length <= 8) {
    for (const r of rows) yield* later(insertEmail, emailParams(r));
    return;
  }
  yield* insertEmailRows(rows);
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
const userByIdForUpdate = `${userById} FOR UPDATE`;
/** A users row as both dialects return it: `active` is 1/0 (see store-op.ts). */
type RawUser = Omit<UserRow, "active"> & { active: number };
const toUser = (row: RawUser): UserRow => ({ ...row, active: row.active === 1 });

/** A live user of the directory (the hot path of every GET, PUT and PATCH: one fixed statement). */
export function* getUser(directoryId: string, id: string): StoreOp<UserRow | undefined> {
  const row = yield* one<RawUser>(userById, [id, directoryId]);
  return row && toUser(row);
}

// One statement, one round trip: the epoch row always, the user when it is live. userColumns name
// only users' columns, so they stay unqualified.
const userByIdAtEpoch = `SELECT e.epoch AS "credentialEpoch", ${userColumns}
  FROM (SELECT ${scimTokenEpochValue} AS epoch) e
  LEFT JOIN users u ON u.id = ? AND u.directory_id = ? AND u.deleted_at IS NULL`;

/**
 * getUser for a request whose token was taken from the cache at `epoch` (cachedScimToken): reads the
 * scim_tokens epoch in the same statement and throws CredentialEpochMoved when it is not `epoch`, so
 * a token revoked anywhere is refused at the very next request still.
 */
export function* getUserAtEpoch(directoryId: string, id: string, epoch: number): StoreOp<UserRow | undefined> {
  const row = yield* one<RawUser & { credentialEpoch: number }>(userByIdAtEpoch, [id, directoryId]);
  if (!row || row.credentialEpoch !== epoch) throw new CredentialEpochMoved();
  const { credentialEpoch: _, ...user } = row;
  return user.id === null ? undefined : toUser(user);
}

/**
 * getUser for a write that will store a new version of the user (PUT, PATCH, DELETE, If-Match): the
 * row is locked until the transaction ends, so on PostgreSQL a concurrent writer waits and then reads
 * the version this one wrote. SQLite's write transactions already run one at a time.
 */
export function* lockUser(directoryId: string, id: string): StoreOp<UserRow | undefined> {
  const row = yield* one<RawUser>((yield* forUpdate()) ? userByIdForUpdate : userById, [id, directoryId]);
  return row && toUser(row);
}

// The partial unique index on (directory_id, user_name_lower) of live users decides, on both
// dialects and across instances: an insert or rename that meets it is refused with this error, and
// the unit is rolled back whole (no separate check first: it cost every create a round trip on
// PostgreSQL, and a concurrent transaction's uncommitted user was invisible to it anyway).
const userNameTaken = () => uniqueness("a user with this userName already exists in this directory");

const userInsertColumns = `INSERT INTO users (id, directory_id, user_name, user_name_lower, external_id, display_name,
  active, resource, version, created_at, modified_at)`;
const insertUser = `${userInsertColumns} VALUES (?, ?, ?, ?, ?, ?, ?, ?, 1, ?, ?)`;
// The insert of an IdP's create, made only when no unclaimed migrated user could be this person
// (unclaimedMigrated's condition): one statement on the common path, where there is none.
const insertUserUnlessMigrated = (emailList: string) =>
  `${userInsertColumns} SELECT ?, ?, ?, ?, ?, ?, ?, ?, 1, ?, ? WHERE NOT EXISTS (${unclaimedMigrated(emailList, "1")})`;
const insertUserUnlessMigratedTexts = new Map<string, string>();

/** The columns a user's document sets, in the order insertUser and updateUserRow bind them. */
const documentParams = (row: UserRow): SqlParam[] => [
  row.userName,
  row.userNameLower,
  row.externalId,
  row.displayName,
  row.active,
  row.resource,
];

/**
 * Inserts a new user's row; with `claimable`, only when no unclaimed migrated user matches its
 * externalId or emails (false then, nothing written). The userName's unique index decides a race.
 */
function* insertUserRow(row: UserRow, claimable?: ClaimKeys, credentialEpoch?: number): StoreOp<boolean> {
  const params: SqlParam[] = [row.id, row.directoryId, ...documentParams(row), row.createdAt, row.modifiedAt];
  let text = insertUser;
  if (claimable) {
    const list = yield* jsonTextList();
    text = insertUserUnlessMigratedTexts.get(list) ?? "";
    if (!text) insertUserUnlessMigratedTexts.set(list, (text = insertUserUnlessMigrated(list)));
    params.push(row.directoryId, claimable.externalId, row.directoryId, JSON.stringify(claimable.emails));
  }
  try {
    if (credentialEpoch === undefined) return (yield* exec(text, params)) > 0;
    // Only an IdP's create on PostgreSQL comes with a cached epoch. Any other is sent back unconfirmed
    // (atCredentialEpoch then checks the token against the store and runs the write without it).
    if (!claimable || (yield* dialect()) === "sqlite") throw new CredentialEpochMoved();
    // The request's token check in the insert's own statement: the insert is made only at the epoch
    // its token is cached under, and the epoch read tells a moved epoch from a migrated user.
    const r = (yield* one<{ epoch: number; inserted: number }>(
      `WITH e AS (SELECT ${scimTokenEpochValue} AS epoch),
         i AS (${text} AND (SELECT epoch FROM e) = ? RETURNING 1)
       SELECT (SELECT epoch FROM e) AS epoch, (SELECT count(*) FROM i)::int AS inserted`,
      [...params, credentialEpoch],
    ))!;
    if (Number(r.epoch) !== credentialEpoch) throw new CredentialEpochMoved();
    return r.inserted > 0;
  } catch (err) {
    if (isUniqueViolation(err)) throw userNameTaken();
    // Deleted since the request was authenticated (see directoryGone).
    if (isForeignKeyViolation(err)) throw directoryGone(row.directoryId);
    throw err;
  }
}

export function* createUser(ctx: WriteContext, resource: UserResource): StoreOp<UserRow> {
  const now = ctx.at;
  // Fixed statements, not a query builder: this is every POST /Users.
  const row: UserRow = {
    id: newResourceId(),
    directoryId: ctx.directoryId,
    ...columns(resource),
    resource: JSON.stringify(resource),
    version: 1,
    createdAt: now,
    modifiedAt: now,
    deletedAt: null,
  };
  // A person a migration already brought in: the IdP's create adopts that user (and its Auth0 account).
  const claimable = ctx.actor.type === "directory" ? claimKeys(resource) : undefined;
  if (!(yield* insertUserRow(row, claimable, ctx.credentialEpoch))) {
    const claimed = yield* claimMigratedUser(ctx, resource);
    if (claimed) return claimed;
    yield* insertUserRow(row);
  }
  yield* indexEmails(row.id, ctx.directoryId, resource, true);
  yield* recordAudit({
    actor: ctx.actor,
    organizationId: ctx.organizationId,
    directoryId: ctx.directoryId,
    action: "user.create",
    targetType: "user",
    targetId: row.id,
    after: summary(row),
    requestId: ctx.requestId,
    at: now,
  });
  yield* enqueueJob({
    organizationId: ctx.organizationId,
    directoryId: ctx.directoryId,
    kind: "user",
    subjectId: row.id,
    lane: Lane.provision,
    now,
  });
  yield* recordDirectoryWrite(ctx.directoryId, { users: 1 });
  return row;
}

// Conditional on the version read: a writer that did not lock the row (lockUser) and lost a race
// gets 412 instead of overwriting the other writer's version.
const updateUserRow = `UPDATE users SET user_name = ?, user_name_lower = ?, external_id = ?, display_name = ?,
  active = ?, resource = ?, version = ?, modified_at = ? WHERE id = ? AND version = ? AND deleted_at IS NULL`;
const changedMeanwhile = () => preconditionFailed("the user changed while this request was applied; retry it");

/**
 * Stores a new version of a user (PUT or PATCH) read by lockUser. Unchanged documents are not
 * written at all.
 */
export function* updateUser(
  ctx: WriteContext,
  existing: UserRow,
  resource: UserResource,
  action: "user.replace" | "user.patch",
): StoreOp<UserRow> {
  const text = JSON.stringify(resource);
  if (text === existing.resource) return existing;
  const now = ctx.at;
  const cols = columns(resource);
  // A fixed statement, not a query builder: this is every PATCH and PUT of a user.
  const row: UserRow = { ...existing, ...cols, resource: text, version: existing.version + 1, modifiedAt: now };
  let changed: number;
  try {
    changed = yield* exec(updateUserRow, [
      ...documentParams(row),
      row.version,
      row.modifiedAt,
      row.id,
      existing.version,
    ]);
  } catch (err) {
    if (isUniqueViolation(err)) throw userNameTaken();
    throw err;
  }
  if (changed === 0) throw changedMeanwhile();
  const before = JSON.parse(existing.resource) as UserResource;
  if (JSON.stringify(before.emails) !== JSON.stringify(resource.emails))
    yield* indexEmails(row.id, ctx.directoryId, resource);
  const deactivated = existing.active && !row.active;
  yield* recordAudit({
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
  });
  yield* enqueueJob({
    organizationId: ctx.organizationId,
    directoryId: ctx.directoryId,
    kind: "user",
    subjectId: row.id,
    lane: deactivated ? Lane.deprovision : Lane.provision,
    now,
  });
  yield* recordDirectoryWrite(ctx.directoryId);
  return row;
}

const tombstoneUser = `UPDATE users SET deleted_at = ?, modified_at = ?, version = version + 1
  WHERE id = ? AND version = ? AND deleted_at IS NULL`;
// Each group the user leaves moves its version (its ETag changes); in-place arithmetic, so concurrent
// membership changes of the same group on PostgreSQL cannot lose a count.
const leaveGroups = `DELETE FROM group_members WHERE member_id = ? AND directory_id = ? RETURNING group_id AS "groupId"`;
const leftGroup = `UPDATE groups SET member_count = member_count - 1, version = version + 1, modified_at = ? WHERE id = ?`;

/**
 * SCIM DELETE of a user read by lockUser: a tombstone (the sync engine needs it to deprovision), the
 * user's memberships removed (each group's version moves, so its ETag changes), then 404 for this id
 * and the userName free again.
 */
export function* deleteUser(ctx: WriteContext, existing: UserRow): StoreOp<void> {
  const now = ctx.at;
  if ((yield* exec(tombstoneUser, [now, now, existing.id, existing.version])) === 0) throw changedMeanwhile();
  yield* exec("DELETE FROM user_emails WHERE user_id = ?", [existing.id]);
  const memberships = yield* many<{ groupId: string }>(leaveGroups, [existing.id, ctx.directoryId]);
  // In id order, so two transactions updating the same groups take their row locks in one order.
  const groupIds = memberships.map((m) => m.groupId).sort();
  for (const groupId of groupIds) yield* exec(leftGroup, [now, groupId]);
  yield* recordAudit({
    actor: ctx.actor,
    organizationId: ctx.organizationId,
    directoryId: ctx.directoryId,
    action: "user.delete",
    targetType: "user",
    targetId: existing.id,
    before: { ...summary(existing), groups: memberships.length },
    requestId: ctx.requestId,
    at: now,
  });
  yield* enqueueJob({
    organizationId: ctx.organizationId,
    directoryId: ctx.directoryId,
    kind: "user",
    subjectId: existing.id,
    lane: Lane.deprovision,
    now,
  });
  yield* recordDirectoryWrite(ctx.directoryId, { users: -1 });
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

interface ClaimKeys {
  externalId: string | null;
  emails: string[];
}

/** What a create is matched to a migrated user by; undefined when it carries neither. */
function claimKeys(resource: UserResource): ClaimKeys | undefined {
  const externalId = typeof resource.externalId === "string" ? resource.externalId : null;
  const emails = emailsOf(resource);
  return externalId || emails.length > 0 ? { externalId, emails } : undefined;
}

/**
 * The directory's unclaimed migrated users with this externalId or one of these emails (parameters:
 * the directory, the externalId, the directory again, the emails as a JSON list). `external_id = ?` with a NULL externalId
 * is never true, so one statement serves both cases. Two lookups joined, not one OR: SQLite served
 * `directory_id = ? AND (external_id = ? OR email_lower IN …)` from the directory's prefix alone,
 * reading every migrated user of the directory (39 ms a create at 100,000 of them).
 */
const unclaimedMigrated = (emailList: string, columns: string) => `SELECT ${columns} FROM migrated_users
  WHERE directory_id = ? AND claimed_at IS NULL AND external_id = ?
  UNION ALL SELECT ${columns} FROM migrated_users
  WHERE directory_id = ? AND claimed_at IS NULL AND email_lower IN (${emailList})`;
const unclaimedMigratedColumns = `user_id AS "userId", external_id AS "externalId", email_lower AS "emailLower"`;
const unclaimedMigratedTexts = new Map<string, string>();

/** The SCIM create of a migrated person: replaces the migrated user's document and returns it; undefined when none matches. */
export function* claimMigratedUser(ctx: WriteContext, resource: UserResource): StoreOp<UserRow | undefined> {
  const keys = claimKeys(resource);
  if (!keys) return undefined;
  const { externalId, emails } = keys;
  // Every create from an IdP asks this; one fixed statement a dialect (emails as a JSON list) keeps it cheap.
  const list = yield* jsonTextList();
  let text = unclaimedMigratedTexts.get(list);
  if (text === undefined) unclaimedMigratedTexts.set(list, (text = unclaimedMigrated(list, unclaimedMigratedColumns)));
  const candidates = yield* many<{ userId: string; externalId: string | null; emailLower: string }>(text, [
    ctx.directoryId,
    externalId,
    ctx.directoryId,
    JSON.stringify(emails),
  ]);
  // An externalId match wins; an email match is refused when both sides carry different externalIds.
  const match =
    candidates.find((c) => externalId !== null && c.externalId === externalId) ??
    candidates.find((c) => emails.includes(c.emailLower) && (c.externalId === null || externalId === null));
  if (!match) return undefined;
  const existing = yield* lockUser(ctx.directoryId, match.userId);
  if (!existing) return undefined;
  // Conditional: of two concurrent creates of the same person, one claims; the other creates as usual
  // (and meets the userName's unique index if it is the same userName).
  const claimed = yield* exec("UPDATE migrated_users SET claimed_at = ? WHERE user_id = ? AND claimed_at IS NULL", [
    ctx.at,
    match.userId,
  ]);
  if (claimed === 0) return undefined;
  return yield* updateUser(ctx, existing, resource, "user.replace");
}
