import { and, gt, isNull, max } from "drizzle-orm";
import { auditEntries } from "../../db/schema.js";
import type { Db, Tx } from "../directory/database.js";

/**
 * One admin change = one IMMEDIATE transaction, its audit entries inside it (never a
 * partial write). Some store functions (saveMappingVersion, …) still record their audit entry
 * without the request id; those taking a `Change` carry it themselves. Until they take one, the
 * entries they wrote in THIS transaction are given it before commit: SQLite admits one writer, so
 * rows above the mark are ours, and nothing outside ever saw them without it. Committed entries are
 * never touched, so the log stays append-only.
 */
export function adminChange<T>(db: Db, requestId: string, change: (tx: Tx) => T): T {
  return db.transaction(
    (tx) => {
      const mark =
        tx
          .select({ id: max(auditEntries.id) })
          .from(auditEntries)
          .get()?.id ?? 0;
      const result = change(tx);
      tx.update(auditEntries)
        .set({ requestId })
        .where(and(gt(auditEntries.id, mark), isNull(auditEntries.requestId)))
        .run();
      return result;
    },
    { behavior: "immediate" },
  );
}
