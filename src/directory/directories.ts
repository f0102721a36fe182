import type { directories } from "../../db/schema.js";
import { invalidValue, notFound } from "../errors.js";
import { recordAudit } from "./audit.js";
import { newDirectoryId } from "./ids.js";
import { forUpdate, many, one, type StoreOp } from "./store-op.js";
import type { Change } from "./write-context.js";

export type DirectoryRow = typeof directories.$inferSelect;

/** A directory's SCIM base URL (docs/design.md, "Contract"): one per directory, under PUBLIC_URL. */
export const scimBaseUrl = (publicUrl: string, directoryId: string): string =>
  `${publicUrl.replace(/\/+$/, "")}/scim/v2/${directoryId}`;

const directoryColumns = `id, organization_id AS "organizationId", name, created_at AS "createdAt",
  user_count AS "userCount", group_count AS "groupCount", generation`;

export function* createDirectory(
  input: { organizationId: string; name?: string },
  change: Change,
): StoreOp<DirectoryRow> {
  const { actor, requestId, at: now } = change;
  const name = (input.name ?? "default").trim();
  if (name.length === 0 || name.length > 255) throw invalidValue("directory name must be 1 to 255 characters");
  const row = (yield* one<DirectoryRow>(
    `INSERT INTO directories (id, organization_id, name, created_at) VALUES (?, ?, ?, ?) RETURNING ${directoryColumns}`,
    [newDirectoryId(), input.organizationId, name, now],
  ))!;
  yield* recordAudit({
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

export function* getDirectory(id: string): StoreOp<DirectoryRow | undefined> {
  return yield* one<DirectoryRow>(`SELECT ${directoryColumns} FROM directories WHERE id = ?`, [id]);
}

/**
 * The directory row, locked until the transaction ends on PostgreSQL (FOR UPDATE; SQLite's write
 * transactions run one at a time already): for a read-then-write of the directory's own rows, such as
 * the at-most-two-active rule of its SCIM tokens, which concurrent instances would otherwise both pass.
 */
export function* lockDirectory(id: string): StoreOp<DirectoryRow | undefined> {
  const lock = yield* forUpdate();
  return yield* one<DirectoryRow>(`SELECT ${directoryColumns} FROM directories WHERE id = ? ${lock}`, [id]);
}

/**
 * The answer to a write that adds rows to a directory deleted since its request was authenticated:
 * 404, not a foreign key error. Such a write reads nothing of the directory first (a round trip on
 * PostgreSQL): a user's insert (through its foreign key) or a group create's update of the
 * directory's row locks that row until commit, so a deletion in progress (deleteOrganization locks
 * the directories FOR UPDATE) either commits first, and the write then finds the row gone, or waits
 * for the write and then sees what it added.
 */
export const directoryGone = (id: string) => notFound(`directory ${id} no longer exists`);

export function* listDirectories(organizationId: string): StoreOp<DirectoryRow[]> {
  return yield* many<DirectoryRow>(
    `SELECT ${directoryColumns} FROM directories WHERE organization_id = ? ORDER BY created_at, id`,
    [organizationId],
  );
}
