import { enqueueJobs, Lane } from "./outbox.js";
import { recordDirectoryWrite } from "./generations.js";
import { newResourceId } from "./ids.js";
import { exec, type SqlParam, type StoreOp } from "./store-op.js";
import { columns, emailRows, insertEmailRows, multiRowInsert, type UserResource, type UserRow } from "./users.js";
import { isUniqueViolation, type WriteContext } from "./write-context.js";
import { uniqueness } from "../errors.js";

export interface NewMigratedUser {
  resource: UserResource;
  emailLower: string;
  externalId: string | null;
}

/**
 * Rows per multi-row INSERT: at most 11 parameters a row, far under SQLite's 32,766 and PostgreSQL's
 * 65,535 parameters a statement; a full batch is one statement text, so it stays prepared.
 */
const ROWS_PER_INSERT = 200;

function* insertInBatches<T>(rows: T[], head: string, width: number, params: (row: T) => SqlParam[]): StoreOp<void> {
  for (let i = 0; i < rows.length; i += ROWS_PER_INSERT) {
    const batch = rows.slice(i, i + ROWS_PER_INSERT);
    yield* exec(multiRowInsert(head, width, batch.length), batch.flatMap(params));
  }
}

const usersHead = `INSERT INTO users (id, directory_id, user_name, user_name_lower, external_id, display_name, active,
  resource, version, created_at, modified_at)`;
const migratedHead = `INSERT INTO migrated_users (user_id, directory_id, import_id, email_lower, external_id)`;
const auditHead = `INSERT INTO audit_entries
  (at, actor_type, actor_id, organization_id, directory_id, action, target_type, target_id, after, request_id)`;

/**
 * Creates many migrated users at once, with what createUser writes for each (the user, its email
 * index, an audit entry and a provision-lane reconcile job) and the migration link, in multi-row
 * statements: a bulk import records a thousand users per Auth0 job, and one statement per row per
 * table would make recording them slower than Auth0's job itself. The caller checked that the
 * userNames are free; the partial unique index still refuses a duplicate, as the
 * SCIM uniqueness error, and the caller's transaction rolls back.
 */
export function* createMigratedUsers(ctx: WriteContext, importId: string, list: NewMigratedUser[]): StoreOp<UserRow[]> {
  if (list.length === 0) return [];
  const now = ctx.at;
  const rows: UserRow[] = list.map((u) => ({
    id: newResourceId(),
    directoryId: ctx.directoryId,
    ...columns(u.resource),
    resource: JSON.stringify(u.resource),
    version: 1,
    createdAt: now,
    modifiedAt: now,
    deletedAt: null,
  }));
  try {
    yield* insertInBatches(rows, usersHead, 11, (r) => [
      r.id,
      r.directoryId,
      r.userName,
      r.userNameLower,
      r.externalId,
      r.displayName,
      r.active,
      r.resource,
      r.version,
      r.createdAt,
      r.modifiedAt,
    ]);
  } catch (err) {
    if (isUniqueViolation(err)) throw uniqueness("a user with this userName already exists in this directory");
    throw err;
  }
  yield* insertEmailRows(rows.flatMap((r, i) => emailRows(r.id, ctx.directoryId, list[i]!.resource)));
  yield* insertInBatches(
    rows.map((r, i) => ({ id: r.id, u: list[i]! })),
    migratedHead,
    5,
    ({ id, u }) => [id, ctx.directoryId, importId, u.emailLower, u.externalId],
  );
  yield* insertInBatches(rows, auditHead, 10, (r) => [
    now,
    ctx.actor.type,
    ctx.actor.id,
    ctx.organizationId,
    ctx.directoryId,
    "user.create",
    "user",
    r.id,
    JSON.stringify({ userName: r.userName, externalId: r.externalId, active: r.active, migration: importId }),
    ctx.requestId,
  ]);
  yield* enqueueJobs(
    { organizationId: ctx.organizationId, directoryId: ctx.directoryId, kind: "user", lane: Lane.provision, now },
    rows.map((r) => r.id),
  );
  yield* recordDirectoryWrite(ctx.directoryId, { users: rows.length });
  return rows;
}
