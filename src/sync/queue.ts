import { sql } from "drizzle-orm";
import { jobs } from "../../db/schema.js";
import type { DbOrTx } from "../directory/database.js";

/** Lanes in priority order: deprovisioning always runs first (docs/design.md, invariant 3). */
export const Lane = { deprovision: 0, provision: 1, background: 2 } as const;
export type Lane = (typeof Lane)[keyof typeof Lane];

export type JobKind = "user" | "group" | "organization" | "drift";

export interface EnqueueJob {
  organizationId: string;
  directoryId?: string | null;
  kind: JobKind;
  subjectId: string;
  lane: Lane;
  /** Epoch ms; defaults to now. */
  now?: number;
}

export const jobKey = (kind: JobKind, subjectId: string): string => `${kind}:${subjectId}`;

/**
 * Enqueues a level-triggered reconcile job inside the caller's transaction. A pending job for the
 * same key absorbs it (docs/design.md, invariant 4): it keeps the most urgent lane, the earliest
 * run time and the earliest acknowledgement time, so merging never delays a deprovision.
 */
export function enqueueJob(tx: DbOrTx, job: EnqueueJob): void {
  const now = job.now ?? Date.now();
  tx.insert(jobs)
    .values({
      organizationId: job.organizationId,
      directoryId: job.directoryId ?? null,
      kind: job.kind,
      key: jobKey(job.kind, job.subjectId),
      subjectId: job.subjectId,
      lane: job.lane,
      state: "pending",
      attempts: 0,
      runAfter: now,
      firstEnqueuedAt: now,
      createdAt: now,
      updatedAt: now,
    })
    .onConflictDoUpdate({
      target: jobs.key,
      targetWhere: sql`state = 'pending'`,
      set: {
        lane: sql`min(${jobs.lane}, excluded.lane)`,
        runAfter: sql`min(${jobs.runAfter}, excluded.run_after)`,
        attempts: 0,
        updatedAt: now,
      },
    })
    .run();
}
