import { exec, one, type StoreOp } from "./store-op.js";

/**
 * A per-directory counter that every SCIM-visible write of users or groups moves, in the write's own
 * transaction. Caches derived from a directory's contents (page anchors) are valid only while it has
 * not moved. It lives in the directory's row, not in process memory, so that each database (and each
 * bridge over it, in this process or another) sees exactly the writes made to it.
 */
export function* bumpDirectoryGeneration(directoryId: string): StoreOp<void> {
  yield* exec("UPDATE directories SET generation = generation + 1 WHERE id = ?", [directoryId]);
}

/** The directory's generation; read it in the same snapshot as the rows a cache entry describes. */
export function* directoryGeneration(directoryId: string): StoreOp<number> {
  return (yield* one<{ g: number }>("SELECT generation AS g FROM directories WHERE id = ?", [directoryId]))?.g ?? 0;
}
