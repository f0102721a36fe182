import { asc, eq } from "drizzle-orm";
import { directories } from "../../db/schema.js";
import { invalidValue } from "../errors.js";
import { recordAudit } from "./audit.js";
import type { DbOrTx } from "./database.js";
import { newDirectoryId } from "./ids.js";
import { prepared } from "./statements.js";
import type { Change } from "./write-context.js";

export type DirectoryRow = typeof directories.$inferSelect;

/** A directory's SCIM base URL (docs/design.md, "Contract"): one per directory, under PUBLIC_URL. */
export const scimBaseUrl = (publicUrl: string, directoryId: string): string =>
  `${publicUrl.replace(/\/+$/, "")}/scim/v2/${directoryId}`;

export function createDirectory(
  tx: DbOrTx,
  input: { organizationId: string; name?: string },
  change: Change,
): DirectoryRow {
  const { actor, requestId, at: now } = change;
  const name = (input.name ?? "default").trim();
  if (name.length === 0 || name.length > 255) throw invalidValue("directory name must be 1 to 255 characters");
  const row = tx
    .insert(directories)
    .values({ id: newDirectoryId(), organizationId: input.organizationId, name, createdAt: now })
    .returning()
    .get();
  recordAudit(tx, {
    actor,
    organizationId: row.organizationId,
    directoryId: row.id,
    action: "directory.create",
    targetType: "directory",
    targetId: row.id,
    after: { name: row.name },
    requestId,
    at: now,
  });
  return row;
}

export function getDirectory(db: DbOrTx, id: string): DirectoryRow | undefined {
  return db.select().from(directories).where(eq(directories.id, id)).get();
}

export function listDirectories(db: DbOrTx, organizationId: string): DirectoryRow[] {
  return db
    .select()
    .from(directories)
    .where(eq(directories.organizationId, organizationId))
    .orderBy(asc(directories.createdAt))
    .all();
}

/** Keeps the live counts behind O(1) totalResults in step with each create and delete. */
export function adjustDirectoryCounts(
  tx: DbOrTx,
  directoryId: string,
  delta: { users?: number; groups?: number },
): void {
  // Every SCIM create and delete moves a count: a cached statement rather than drizzle's builder.
  prepared(tx, "UPDATE directories SET user_count = user_count + ?, group_count = group_count + ? WHERE id = ?").run(
    delta.users ?? 0,
    delta.groups ?? 0,
    directoryId,
  );
}
