import type { DbOrTx } from "./database.js";
import { prepared } from "./statements.js";

/**
 * A per-directory counter that every SCIM-visible write of users or groups moves, in the write's own
 * transaction. Caches derived from a directory's contents (page anchors) are valid only while it has
 * not moved. It lives in the directory's row, not in process memory, so that each database (and each
 * bridge over it, in this process or another) sees exactly the writes made to it.
 */
export function bumpDirectoryGeneration(tx: DbOrTx, directoryId: string): void {
  prepared(tx, "UPDATE directories SET generation = generation + 1 WHERE id = ?").run(directoryId);
}

/** The directory's generation; read it in the same snapshot as the rows a cache entry describes. */
export function directoryGeneration(db: DbOrTx, directoryId: string): number {
  return (
    (prepared(db, "SELECT generation AS g FROM directories WHERE id = ?").get(directoryId) as { g: number } | undefined)
      ?.g ?? 0
  );
}
