import { directoryGone } from "./directories.js";
import { exec, later, one, type StoreOp } from "./store-op.js";

type DirectoryDelta = { users?: number; groups?: number };
const recordWrite =
  "UPDATE directories SET generation = generation + 1, user_count = user_count + ?, group_count = group_count + ? WHERE id = ?";

/**
 * Records a SCIM-visible write of users or groups in the directory's row, in the write's own
 * transaction: the generation moves, and the live counts behind O(1) totalResults move by `delta`.
 * Caches derived from a directory's contents (page anchors) are valid only while its generation has
 * not moved. It lives in the directory's row, not in process memory, so that each database (and each
 * bridge over it, in this process or another) sees exactly the writes made to it.
 *
 * One statement, and the last of a write where nothing must wait for it: every write of the
 * directory updates this row and holds its lock until commit, so writers queue here only for each
 * other's commit, not for their whole transactions. (A group create or rename takes it first on
 * purpose, with recordDirectoryWriteFirst.)
 */
export function* recordDirectoryWrite(directoryId: string, delta: DirectoryDelta = {}): StoreOp<void> {
  yield* later(recordWrite, [delta.users ?? 0, delta.groups ?? 0, directoryId]);
}

/**
 * recordDirectoryWrite as a write's first statement, where its row lock must order what follows (a
 * group's displayName check after every other create or rename in the directory); 404 when the
 * directory is gone (see directoryGone).
 */
export function* recordDirectoryWriteFirst(directoryId: string, delta: DirectoryDelta = {}): StoreOp<void> {
  if ((yield* exec(recordWrite, [delta.users ?? 0, delta.groups ?? 0, directoryId])) === 0)
    throw directoryGone(directoryId);
}

/** The directory's generation; read it in the same snapshot as the rows a cache entry describes. */
export function* directoryGeneration(directoryId: string): StoreOp<number> {
  return (yield* one<{ g: number }>("SELECT generation AS g FROM directories WHERE id = ?", [directoryId]))?.g ?? 0;
}
