import { and, eq, inArray } from "drizzle-orm";
import { userSync } from "../../db/schema.js";
import type { DbOrTx } from "../directory/database.js";
import type { AppliedState } from "../mapping/index.js";
import { userJobs } from "./job-queries.js";
import type { JobRow } from "./worker.js";

/** Where a user stands in Auth0, as the bridge knows it (shown to operators and customer admins). */
export interface UserSyncState {
  /**
   * synced: nothing to do; pending: a reconcile is queued or running; failed: the last one failed or
   * could not finish; awaitingFirstLogin: an enterprise user not in Auth0 yet (Auth0 creates it at
   * the first login, when the bridge links it); notSynced: never synced.
   */
  status: "synced" | "pending" | "failed" | "awaitingFirstLogin" | "notSynced";
  auth0UserId: string | null;
  appliedAt: number | null;
  applied: AppliedState | null;
  lastError: string | null;
  lastErrorAt: number | null;
  /** Epoch ms of the oldest acknowledged change not yet applied. */
  pendingSince: number | null;
  openJob?: JobRow;
  deadJob?: JobRow;
}

/** Sync state of many users of one organization in two queries (no query per user). */
export function syncStates(db: DbOrTx, organizationId: string, userIds: readonly string[]): Map<string, UserSyncState> {
  const out = new Map<string, UserSyncState>();
  if (userIds.length === 0) return out;
  const rows = db
    .select()
    .from(userSync)
    .where(and(eq(userSync.organizationId, organizationId), inArray(userSync.userId, [...userIds])))
    .all();
  const sync = new Map(rows.map((r) => [r.userId, r]));
  const jobsOf = userJobs(db, organizationId, userIds);
  for (const id of userIds) {
    const s = sync.get(id);
    const j = jobsOf.get(id);
    const applied = s?.applied ? (JSON.parse(s.applied) as AppliedState) : null;
    const status = j?.open
      ? "pending"
      : j?.dead || s?.lastError
        ? "failed"
        : applied?.awaitingFirstLogin && !applied.exists
          ? "awaitingFirstLogin"
          : applied
            ? "synced"
            : "notSynced";
    out.set(id, {
      status,
      auth0UserId: s?.auth0UserId ?? null,
      appliedAt: s?.appliedAt ?? null,
      applied,
      lastError: s?.lastError ?? j?.dead?.lastError ?? null,
      lastErrorAt: s?.lastErrorAt ?? null,
      pendingSince: j?.open?.firstEnqueuedAt ?? null,
      ...(j?.open ? { openJob: j.open } : {}),
      ...(j?.dead ? { deadJob: j.dead } : {}),
    });
  }
  return out;
}
