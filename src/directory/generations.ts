import { later, one, type StoreOp } from "./store-op.js";

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
 * purpose: the lock orders its displayName check.)
 */
export function* recordDirectoryWrite(
  directoryId: string,
  delta: { users?: number; groups?: number } = {},
): StoreOp<void> {
  yield* later(
    "UPDATE directories SET generation = generation + 1, user_count = user_count + ?, group_count = group_count + ? WHERE id = ?",
    [delta.users ?? 0, delta.groups ?? 0, directoryId],
  );
}

/** The directory's generation; read it in the same snapshot as the rows a cache entry describes. */
export function* directoryGeneration(directoryId: string): StoreOp<number> {
  return (yield* one<{ g: number }>("SELECT generation AS g FROM directories WHERE id = ?", [directoryId]))?.g ?? 0;
}
