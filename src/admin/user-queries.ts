import { activeHoldsOfUsers, type HoldRow } from "../directory/holds.js";
import { laneName } from "../directory/outbox.js";
import type { StoreOp } from "../directory/store-op.js";
import type { UserListRow } from "../directory/user-queries.js";
import { userSyncStates, type UserSyncState } from "../sync/sync-state.js";
import type { JobRow } from "../sync/worker.js";
import { iso } from "./routes.js";

/**
 * A customer admin's view of its users: who the IdP pushed, and where each stands in Auth0
 * (linked id, last applied, pending job, last error; from user_sync and jobs). The queries are ops
 * of src/directory/user-queries.ts, scoped by the organization's directories.
 */
export {
  findUser,
  listOrganizationGroups,
  searchUsers,
  type SyncFilter,
  type UserSearch,
  type UserState,
} from "../directory/user-queries.js";

const jobBrief = (j: JobRow | undefined) =>
  j
    ? {
        id: j.id,
        state: j.state,
        lane: laneName(j.lane),
        attempts: j.attempts,
        runAfter: iso(j.runAfter),
        lastError: j.lastError,
      }
    : null;

function primaryEmail(resource: string): string | null {
  const emails = (JSON.parse(resource) as { emails?: unknown }).emails;
  if (!Array.isArray(emails)) return null;
  const list = emails.filter(
    (e): e is { value: string; primary?: unknown } =>
      typeof e === "object" && e !== null && typeof (e as { value?: unknown }).value === "string",
  );
  return (list.find((e) => e.primary === true) ?? list[0])?.value ?? null;
}

/**
 * Users with their holds and sync state, in three queries for the whole page (no query per user); an
 * op, so that the page and its states are read in one snapshot.
 */
export function* usersWithSyncState(organizationId: string, rows: readonly UserListRow[]): StoreOp<UserView[]> {
  const ids = rows.map((r) => r.id);
  const states = yield* userSyncStates(organizationId, ids);
  const holdRows = yield* activeHoldsOfUsers(organizationId, ids);
  return rows.map((u) =>
    userView(
      u,
      states.get(u.id)!,
      holdRows.filter((h) => h.userId === u.id),
    ),
  );
}

function userView(u: UserListRow, s: UserSyncState, userHolds: HoldRow[]) {
  const applied = s.applied;
  return {
    id: u.id,
    directoryId: u.directoryId,
    userName: u.userName,
    displayName: u.displayName,
    externalId: u.externalId,
    email: primaryEmail(u.resource),
    active: u.active,
    held: userHolds.length > 0,
    holds: userHolds.map((h) => ({ id: h.id, reason: h.reason, placedBy: h.placedBy, placedAt: iso(h.placedAt) })),
    createdAt: iso(u.createdAt),
    modifiedAt: iso(u.modifiedAt),
    sync: {
      status: s.status,
      auth0UserId: s.auth0UserId,
      lastAppliedAt: iso(s.appliedAt),
      applied: applied
        ? {
            exists: applied.exists,
            member: applied.member,
            blocked: applied.blocked,
            roles: applied.roles,
            accessRevoked: applied.accessRevoked,
            deleted: applied.deleted,
          }
        : null,
      lastError: s.lastError,
      lastErrorAt: iso(s.lastErrorAt),
      pendingJob: jobBrief(s.openJob),
      deadJob: jobBrief(s.deadJob),
    },
  };
}

export type UserView = ReturnType<typeof userView>;
