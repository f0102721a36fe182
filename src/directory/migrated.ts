import { auditEntries, migratedUsers, userEmails, users } from "../../db/schema.js";
import { enqueueJobs, Lane } from "./outbox.js";
import type { DbOrTx } from "./database.js";
import { adjustDirectoryCounts } from "./directories.js";
import { bumpDirectoryGeneration } from "./generations.js";
import { newResourceId } from "./ids.js";
import { columns, emailRows, type UserResource, type UserRow } from "./users.js";
import type { WriteContext } from "./write-context.js";
import { runSync } from "./store-op.js";

export interface NewMigratedUser {
  resource: UserResource;
  emailLower: string;
  externalId: string | null;
}

/** SQLite's default limit of bound parameters per statement is 32,766; rows are inserted in batches under it. */
const ROWS_PER_INSERT = 200;

function insertInBatches<T>(rows: T[], insert: (batch: T[]) => void): void {
  for (let i = 0; i < rows.length; i += ROWS_PER_INSERT) insert(rows.slice(i, i + ROWS_PER_INSERT));
}

/**
 * Creates many migrated users at once, with what createUser writes for each (the user, its email
 * index, an audit entry and a provision-lane reconcile job) and the migration link, in multi-row
 * statements: a bulk import records a thousand users per Auth0 job, and one statement per row per
 * table would make recording them slower than Auth0's job itself. The caller checked that the
 * userNames are free; the partial unique index still refuses a duplicate.
 */
export function createMigratedUsers(
  tx: DbOrTx,
  ctx: WriteContext,
  importId: string,
  list: NewMigratedUser[],
): UserRow[] {
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
  insertInBatches(rows, (b) => tx.insert(users).values(b).run());
  insertInBatches(
    rows.flatMap((r, i) => emailRows(r.id, ctx.directoryId, list[i]!.resource)),
    (b) => tx.insert(userEmails).values(b).run(),
  );
  insertInBatches(
    rows.map((r, i) => ({
      userId: r.id,
      directoryId: ctx.directoryId,
      importId,
      emailLower: list[i]!.emailLower,
      externalId: list[i]!.externalId,
    })),
    (b) => tx.insert(migratedUsers).values(b).run(),
  );
  insertInBatches(rows, (b) =>
    tx
      .insert(auditEntries)
      .values(
        b.map((r) => ({
          at: now,
          actorType: ctx.actor.type,
          actorId: ctx.actor.id,
          organizationId: ctx.organizationId,
          directoryId: ctx.directoryId,
          action: "user.create",
          targetType: "user",
          targetId: r.id,
          after: JSON.stringify({
            userName: r.userName,
            externalId: r.externalId,
            active: r.active,
            migration: importId,
          }),
          requestId: ctx.requestId,
        })),
      )
      .run(),
  );
  runSync(
    tx,
    enqueueJobs(
      { organizationId: ctx.organizationId, directoryId: ctx.directoryId, kind: "user", lane: Lane.provision, now },
      rows.map((r) => r.id),
    ),
  );
  runSync(tx, adjustDirectoryCounts(ctx.directoryId, { users: rows.length }));
  runSync(tx, bumpDirectoryGeneration(ctx.directoryId));
  return rows;
}
