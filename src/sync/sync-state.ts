import { dialect, jsonTextList, many, type StoreOp } from "../directory/store-op.js";
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

export type SyncStatus = UserSyncState["status"];
export const syncStatuses: readonly SyncStatus[] = ["synced", "pending", "failed", "awaitingFirstLogin", "notSynced"];

/** What a user's sync status is decided from. */
export interface SyncFacts {
  /** A user job is pending or running. */
  open: boolean;
  /** A user job gave up (dead letter). */
  dead: boolean;
  /** The last reconcile recorded an error. */
  lastError: boolean;
  /** The bridge has applied the user at least once. */
  applied: boolean;
  /** Applied as an enterprise user Auth0 creates at the first login, and not there yet. */
  awaitingFirstLogin: boolean;
}

/**
 * The one ranking of a user's sync status, for the SCIM extension, the admin API, the console and the
 * CLI alike: queued or running work wins (a retry or a newer change is on its way), then a failure
 * (an error recorded, or a job that gave up), then what was applied.
 */
export function rankSyncStatus(f: SyncFacts): SyncStatus {
  if (f.open) return "pending";
  if (f.dead || f.lastError) return "failed";
  if (f.awaitingFirstLogin) return "awaitingFirstLogin";
  return f.applied ? "synced" : "notSynced";
}

interface UserSyncRow {
  userId: string;
  auth0UserId: string | null;
  applied: string | null;
  appliedAt: number | null;
  lastError: string | null;
  lastErrorAt: number | null;
}

/** Sync state of many users of one organization in two queries (no query per user). */
export function* userSyncStates(
  organizationId: string,
  userIds: readonly string[],
): StoreOp<Map<string, UserSyncState>> {
  const out = new Map<string, UserSyncState>();
  if (userIds.length === 0) return out;
  const rows = yield* many<UserSyncRow>(
    `SELECT user_id AS "userId", auth0_user_id AS "auth0UserId", applied, applied_at AS "appliedAt",
       last_error AS "lastError", last_error_at AS "lastErrorAt"
     FROM user_sync WHERE organization_id = ? AND user_id IN (${yield* jsonTextList()})`,
    [organizationId, JSON.stringify(userIds)],
  );
  const sync = new Map(rows.map((r) => [r.userId, r]));
  const jobsOf = yield* userJobs(organizationId, userIds);
  for (const id of userIds) {
    const s = sync.get(id);
    const j = jobsOf.get(id);
    const applied = s?.applied ? (JSON.parse(s.applied) as AppliedState) : null;
    const status = rankSyncStatus({
      open: j?.open !== undefined,
      dead: j?.dead !== undefined,
      lastError: Boolean(s?.lastError),
      applied: applied !== null,
      awaitingFirstLogin: Boolean(applied?.awaitingFirstLogin && !applied.exists),
    });
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

export interface SyncStatusCounts extends Record<SyncStatus, number> {
  /** Live (not deleted) users of the organization. */
  total: number;
  active: number;
}

/**
 * Live users of an organization with their sync facts, for the counts and the failure list below;
 * its one parameter is the organization id. Booleans are 1/0 on SQLite and boolean on PostgreSQL
 * (the row arrives as 1/0 on both); the applied state's flags are read with each dialect's JSON
 * operators (json_extract gives 1/0 for a JSON true, ->> gives 'true').
 */
function* liveUserFacts(): StoreOp<string> {
  const flag =
    (yield* dialect()) === "postgres"
      ? (name: string) => `coalesce(CAST(s.applied AS json)->>'${name}' = 'true', FALSE)`
      : (name: string) => `coalesce(json_extract(s.applied, '$.${name}'), 0)`;
  return `
  SELECT u.id AS "userId", u.user_name AS "userName", u.active AS active,
    EXISTS (SELECT 1 FROM jobs j WHERE j.key = 'user:' || u.id AND j.state IN ('pending', 'running')) AS open,
    (SELECT j.last_error FROM jobs j WHERE j.key = 'user:' || u.id AND j.state = 'dead' ORDER BY j.id DESC LIMIT 1) AS "deadError",
    EXISTS (SELECT 1 FROM jobs j WHERE j.key = 'user:' || u.id AND j.state = 'dead') AS dead,
    (SELECT max(j.updated_at) FROM jobs j WHERE j.key = 'user:' || u.id AND j.state = 'dead') AS "deadAt",
    s.last_error AS "lastError", s.last_error_at AS "lastErrorAt", s.applied IS NOT NULL AS applied,
    ${flag("awaitingFirstLogin")} AND NOT ${flag("exists")} AS "awaitingFirstLogin"
  FROM users u
  JOIN directories d ON d.id = u.directory_id
  LEFT JOIN user_sync s ON s.user_id = u.id
  WHERE d.organization_id = ? AND u.deleted_at IS NULL`;
}

const factsOf = (r: {
  open: number;
  dead: number;
  lastError: string | null;
  applied: number;
  awaitingFirstLogin: number;
}): SyncFacts => ({
  open: Boolean(r.open),
  dead: Boolean(r.dead),
  lastError: r.lastError !== null,
  applied: Boolean(r.applied),
  awaitingFirstLogin: Boolean(r.awaitingFirstLogin),
});

/** An organization's live users counted by sync status (rankSyncStatus), in one grouped query. */
export function* syncStatusCounts(organizationId: string): StoreOp<SyncStatusCounts> {
  const groups = yield* many<{
    open: number;
    dead: number;
    lastError: string | null;
    applied: number;
    awaitingFirstLogin: number;
    n: number;
    active: number;
  }>(
    `SELECT open, dead, CASE WHEN "lastError" IS NULL THEN NULL ELSE '' END AS "lastError", applied,
       "awaitingFirstLogin", count(*) AS n, CAST(coalesce(sum(CASE WHEN active THEN 1 ELSE 0 END), 0) AS bigint) AS active
     FROM (${yield* liveUserFacts()}) AS f GROUP BY 1, 2, 3, 4, 5`,
    [organizationId],
  );
  const counts: SyncStatusCounts = {
    total: 0,
    active: 0,
    synced: 0,
    pending: 0,
    failed: 0,
    awaitingFirstLogin: 0,
    notSynced: 0,
  };
  for (const g of groups) {
    counts[rankSyncStatus(factsOf(g))] += Number(g.n);
    counts.total += Number(g.n);
    counts.active += Number(g.active);
  }
  return counts;
}

export interface FailedUser {
  userId: string;
  userName: string;
  /** The recorded reconcile error, else the dead job's. */
  lastError: string | null;
  lastErrorAt: number | null;
}

/** The organization's users whose status is "failed", latest failure first. */
export function* failedUsers(organizationId: string, limit: number): StoreOp<FailedUser[]> {
  const rows = yield* many<{
    userId: string;
    userName: string;
    open: number;
    dead: number;
    deadError: string | null;
    deadAt: number | null;
    lastError: string | null;
    lastErrorAt: number | null;
    applied: number;
    awaitingFirstLogin: number;
  }>(
    `SELECT * FROM (${yield* liveUserFacts()}) AS f
     WHERE NOT open AND (dead OR "lastError" IS NOT NULL)
     ORDER BY coalesce("lastErrorAt", "deadAt") DESC NULLS LAST, "userId" LIMIT ?`,
    [organizationId, limit],
  );
  return rows
    .filter((r) => rankSyncStatus(factsOf(r)) === "failed")
    .map((r) => ({
      userId: r.userId,
      userName: r.userName,
      lastError: r.lastError ?? r.deadError,
      lastErrorAt: r.lastErrorAt ?? r.deadAt,
    }));
}
