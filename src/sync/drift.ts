import { Auth0CallError } from "../auth0/errors.js";
import { activeMapping, mappingCacheOf, type MappingCache } from "../directory/mappings.js";
import { initialApplied, plan, type AppliedState } from "../mapping/index.js";
import { jsonEqual } from "../mapping/types.js";
import {
  desiredFor,
  memberOfOtherOrganizations,
  organizationInputPages,
  organizationRow,
  type UserInputs,
} from "./inputs.js";
import { enqueueJob, Lane, userJobKeyOf } from "../directory/outbox.js";
import { ensureAuth0Organization, type SyncDeps } from "./reconcile-user.js";
import type { JobHandler } from "./worker.js";
import { exec, jsonTextList, many, type StoreOp } from "../directory/store-op.js";

/** An organization and its active mapping, in one snapshot. */
function* scanStart(organizationId: string, cache: MappingCache) {
  const org = yield* organizationRow(organizationId);
  const mapping = org ? yield* activeMapping(org.id, cache) : null;
  return org && mapping ? { org, mapping: mapping.document } : undefined;
}

/** What a drift scan judges a user by: its applied state (null without a sync row) and its unfinished jobs. */
export interface UserScanState {
  userId: string;
  applied: string | null;
  appliedAt: number | null;
  /** A job of the user is pending or running. */
  open: boolean;
  running: boolean;
}

/**
 * The scan states of `userIds`, in one statement (one snapshot without a transaction: run it with
 * store.readCommitted, one round trip on PostgreSQL), one per id in no particular order.
 */
export function* userScanStates(userIds: readonly string[]): StoreOp<UserScanState[]> {
  const key = userJobKeyOf("i.value");
  const rows = yield* many<Omit<UserScanState, "open" | "running"> & { open: unknown; running: unknown }>(
    `SELECT i.value AS "userId", s.applied, s.applied_at AS "appliedAt",
       EXISTS (SELECT 1 FROM jobs j WHERE j.key = ${key} AND j.state IN ('pending', 'running')) AS open,
       EXISTS (SELECT 1 FROM jobs j WHERE j.key = ${key} AND j.state = 'running') AS running
     FROM (${yield* jsonTextList()}) AS i LEFT JOIN user_sync s ON s.user_id = i.value`,
    [JSON.stringify(userIds)],
  );
  // EXISTS is 1/0 on SQLite and a boolean on PostgreSQL.
  return rows.map((r) => ({ ...r, open: Boolean(r.open), running: Boolean(r.running) }));
}

/** One user's scan state (userScanStates of one id). */
export function* userScanState(userId: string): StoreOp<UserScanState> {
  return (yield* userScanStates([userId]))[0]!;
}

/** Users whose scan states are read in one statement when the first of them comes up. */
const SCAN_STATE_PAGE = 100;

/**
 * A drift repair: the applied state becomes what Auth0 shows, and the user is reconciled again (on
 * the deprovision lane when it should be cut off and is not).
 */
export function* recordObservedState(
  user: { id: string; directoryId: string },
  organizationId: string,
  observed: AppliedState,
  urgent: boolean,
): StoreOp<void> {
  yield* exec(`UPDATE user_sync SET applied = ?, auth0_user_id = ? WHERE user_id = ?`, [
    JSON.stringify(observed),
    observed.auth0UserId,
    user.id,
  ]);
  yield* enqueueJob({
    organizationId,
    directoryId: user.directoryId,
    kind: "user",
    subjectId: user.id,
    lane: urgent ? Lane.deprovision : Lane.background,
  });
}

export interface DriftedUser {
  userId: string;
  userName: string;
  /** What Auth0 shows that differs from what the bridge last applied, e.g. "blocked: applied false, Auth0 true". */
  differences: string[];
}

export interface DriftReport {
  organizationId: string;
  checked: number;
  drifted: DriftedUser[];
  /** Directory users whose desired state is not applied yet (never synced, or pending). */
  unsynced: number;
  /**
   * Linked users not read this time: the bridge wrote them within Auth0's propagation delay, or is
   * writing them now, so what Auth0 shows of them cannot be judged yet. The next scan checks them.
   */
  recent: number;
  /** Auth0 members of the organization that no directory user accounts for (left alone). */
  unmanagedMembers: string[];
  repaired: boolean;
}

export interface DriftOptions {
  repair: boolean;
  lane?: number;
  onProgress?(done: number, total: number): void;
}

/** Auth0's propagation delay for a member removal ("takes approximately 5–10 seconds"), with a margin. */
export const MEMBER_REMOVAL_PROPAGATION_MS = 15_000;

/**
 * A user the bridge wrote more recently than this is not read by a scan: Auth0 may not show the
 * write yet (a member removal "takes approximately 5–10 seconds"), so a difference would be noise,
 * and the reads would spend the organization-member-roles bucket, the smallest a scan draws on,
 * while a push is using the rest of the budget.
 */
export const RECENT_WRITE_MS = MEMBER_REMOVAL_PROPAGATION_MS;

/**
 * Users checked at once by a scan. The limiter paces the calls (on the background lane, behind
 * provisioning), so this only needs to be high enough that call latency never leaves the member-roles
 * bucket idle: at 50–250 ms a call, 32 users in flight cover even a time-compressed tenant's rate.
 */
const DRIFT_CONCURRENCY = 32;

const describe = (field: string, applied: unknown, observed: unknown): string =>
  `${field}: applied ${JSON.stringify(applied)}, Auth0 ${JSON.stringify(observed)}`;

/**
 * Compares Auth0 (membership, the bridge's roles, blocked, owned app_metadata keys) with what the
 * bridge believes it applied, for every linked user of an organization. With `repair`, the applied
 * state is replaced by what Auth0 really shows and each drifted user is reconciled again, so that
 * the normal plan() puts Auth0 back to the desired state.
 */
export async function scanDrift(deps: SyncDeps, organizationId: string, options: DriftOptions): Promise<DriftReport> {
  const now = deps.now ?? Date.now;
  const lane = options.lane ?? Lane.background;
  const start = await deps.store.read(scanStart(organizationId, mappingCacheOf(deps.store, true)));
  if (!start) throw new Auth0CallError("fatal", undefined, undefined, `organization ${organizationId} does not exist`);
  const { org, mapping } = start;
  const auth0OrgId = await ensureAuth0Organization(deps, org, lane);
  // Directory data (attributes, groups, holds) loaded in pages, a few queries each.
  const rows: UserInputs[] = [];
  for await (const page of organizationInputPages(deps.store, org)) rows.push(...page);
  // Every role the mapping can grant is the bridge's: one granted by hand to a user the rules do not
  // give it is drift. Roles the mapping never names belong to someone else and are not compared.
  const mappingRoles = [...mapping.roles.default, ...mapping.roles.rules.flatMap((r) => r.grant)];
  // A user written after this moment is not judged against the member list below: it may have
  // become (or stopped being) a member after the list was read.
  const listedAt = now();
  const members = new Set((await deps.gateway.listMembers(auth0OrgId, lane)).map((m) => m.user_id));
  const accounted = new Set<string>();
  const report: DriftReport = {
    organizationId: org.id,
    checked: 0,
    drifted: [],
    unsynced: 0,
    recent: 0,
    unmanagedMembers: [],
    repaired: options.repair,
  };

  /**
   * A user's applied state, and why the scan leaves it alone, if it does. Not linked yet and a job is
   * on it (a push in progress): not synced yet, and that job links it; nothing to read or to queue.
   * Written moments ago, after the member list was read, or being written now: Auth0 shows a member
   * removal only after "approximately 5–10 seconds" (Auth0 "Remove members from organizations"), the
   * list says nothing of later changes, and a running job changes the applied state under the scan.
   * None can be judged; the next scan will.
   */
  const judge = (sync: UserScanState): { applied: AppliedState; skip?: "unsynced" | "recent" } => {
    const applied: AppliedState = sync.applied ? (JSON.parse(sync.applied) as AppliedState) : initialApplied();
    if ((!applied.auth0UserId || !applied.exists) && sync.open) return { applied, skip: "unsynced" };
    const writtenAt = sync.appliedAt;
    if (
      applied.auth0UserId &&
      applied.exists &&
      ((writtenAt !== null && (now() - writtenAt < RECENT_WRITE_MS || writtenAt >= listedAt)) || sync.running)
    )
      return { applied, skip: "recent" };
    return { applied };
  };
  const pages = new Map<number, Promise<Map<string, UserScanState>>>();
  let done = 0;
  // Users are checked many at a time: a scan is two reads per linked user, and one at a time it
  // would be bound by call latency rather than by the tenant's rate limit (the limiter paces it).
  const found: (DriftedUser | undefined)[] = new Array(rows.length);
  let next = 0;
  const checkOne = async (index: number): Promise<void> => {
    const inputs = rows[index]!;
    const user = inputs.row;
    options.onProgress?.(done++, rows.length);
    // A user being written (not linked yet under a job, written moments ago, its job running) is left
    // to the next scan, as its page's states show it when the first user of the page comes up: one
    // statement a page. Any other is read again on its own when its turn comes, since it is judged
    // against Auth0: during a push the worker links and writes users while the scan runs, and a stale
    // row would be judged against old state. A page row can only be staler than that fresh read, and
    // so only leaves alone a user the fresh read might have judged.
    const page = Math.floor(index / SCAN_STATE_PAGE);
    let states = pages.get(page);
    if (!states) {
      const ids = rows.slice(page * SCAN_STATE_PAGE, (page + 1) * SCAN_STATE_PAGE).map((r) => r.row.id);
      states = deps.store.readCommitted(userScanStates(ids)).then((all) => new Map(all.map((st) => [st.userId, st])));
      pages.set(page, states);
      // Indices are handed out in order, so every user of page - 2 has asked for it by now.
      pages.delete(page - 2);
    }
    let judged = judge((await states).get(user.id)!);
    if (!judged.skip) judged = judge(await deps.store.readCommitted(userScanState(user.id)));
    const { applied } = judged;
    if (applied.auth0UserId) accounted.add(applied.auth0UserId);
    if (judged.skip) {
      report[judged.skip]++;
      return;
    }
    // Linked since the page was loaded: whether another organization holds it is asked again.
    const d = desiredFor(
      mapping,
      inputs,
      applied.auth0UserId === inputs.applied.auth0UserId
        ? {}
        : {
            memberOfOtherOrganizations: await deps.store.read(memberOfOtherOrganizations(applied.auth0UserId, org.id)),
          },
    );
    if (!applied.auth0UserId || !applied.exists) {
      if (plan(d, applied).length > 0) {
        report.unsynced++;
        // Reconcile it again: an enterprise user who already exists in Auth0 (it signed in before the
        // hook was installed) is linked by email and connection this way.
        if (options.repair)
          await deps.store.write(
            enqueueJob({
              organizationId: org.id,
              directoryId: user.directoryId,
              kind: "user",
              subjectId: user.id,
              lane: Lane.background,
            }),
          );
      }
      return;
    }
    report.checked++;
    const observed: AppliedState = { ...applied };
    const auth0UserId = applied.auth0UserId;
    observed.member = members.has(auth0UserId);
    // Only the roles the bridge manages count; roles granted by others are not drift.
    const managed = new Set([...mappingRoles, ...applied.roles, ...d.roles]);
    // The two reads are independent (membership came with the member list): sent together, a user
    // costs one call latency, not two, and each bucket sees its calls as early as possible.
    const [userRead, rolesRead] = await Promise.allSettled([
      deps.gateway.getUser(auth0UserId, lane),
      observed.member ? deps.gateway.listMemberRoleNames(auth0OrgId, auth0UserId, lane) : Promise.resolve([]),
    ]);
    if (userRead.status === "rejected") {
      const err: unknown = userRead.reason;
      if (!(err instanceof Auth0CallError) || err.kind !== "userNotFound") throw err;
      Object.assign(observed, initialApplied());
    } else {
      if (rolesRead.status === "rejected") throw rolesRead.reason;
      const auth0User = userRead.value;
      observed.blocked = auth0User.blocked === true;
      const metadata = auth0User.app_metadata ?? {};
      observed.appMetadata = Object.fromEntries(
        d.ownedAppMetadataKeys.map((k) => [k, (metadata[k] as AppliedState["appMetadata"][string]) ?? null]),
      );
      observed.roles = observed.member ? rolesRead.value.filter((r) => managed.has(r)).sort() : [];
    }
    // A block the bridge did not place (a tenant administrator's) is recorded as such, so that no
    // reconcile lifts it; the bridge only lifts blocks it placed.
    if (observed.blocked === true && applied.blocked !== true) observed.blockedOutside = true;
    if (observed.blocked === false) delete observed.blockedOutside;
    const differences: string[] = [];
    if (observed.exists !== applied.exists) differences.push(describe("exists", applied.exists, observed.exists));
    if (observed.exists) {
      if (observed.blocked !== applied.blocked)
        differences.push(describe("blocked", applied.blocked, observed.blocked));
      if (observed.member !== applied.member) differences.push(describe("member", applied.member, observed.member));
      if (!jsonEqual(observed.roles, [...applied.roles].sort()))
        differences.push(describe("roles", applied.roles, observed.roles));
      for (const key of d.ownedAppMetadataKeys) {
        if (!jsonEqual(observed.appMetadata[key] ?? null, applied.appMetadata[key] ?? null)) {
          differences.push(
            describe(`app_metadata.${key}`, applied.appMetadata[key] ?? null, observed.appMetadata[key] ?? null),
          );
        }
      }
    }
    if (differences.length === 0) return;
    // Access was given back behind the bridge's back (unblocked, or made a member again): sessions
    // opened since then are not covered by the earlier revocation, so the repair must revoke again.
    if ((applied.blocked === true && !observed.blocked) || (!applied.member && observed.member))
      observed.accessRevoked = false;
    found[index] = { userId: user.id, userName: user.userName, differences };
    if (options.repair) {
      // A user who should be cut off but is not gets the deprovision lane.
      const urgent = (d.blocked && !observed.blocked) || (!d.member && observed.member);
      await deps.store.write(recordObservedState(user, org.id, observed, urgent));
    }
  };
  let sinceYield = 0;
  const runner = async (): Promise<void> => {
    while (next < rows.length) {
      await checkOne(next++);
      // Users skipped without a call are checked synchronously: give the event loop (deprovisioning
      // calls, SCIM requests) a turn now and then rather than running thousands of them in one go.
      if (++sinceYield >= 50) {
        sinceYield = 0;
        await new Promise((r) => setImmediate(r));
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(DRIFT_CONCURRENCY, rows.length) }, runner));
  report.drifted = found.filter((d): d is DriftedUser => d !== undefined);
  options.onProgress?.(rows.length, rows.length);
  report.unmanagedMembers = [...members].filter((m) => !accounted.has(m)).sort();
  return report;
}

/** "drift" jobs (the periodic scan and the admin trigger): scan and repair one organization. */
export function createDriftReconciler(deps: SyncDeps): JobHandler {
  return async (job) => {
    await scanDrift(deps, job.subjectId, { repair: true, lane: job.lane });
    return { status: "done" };
  };
}
