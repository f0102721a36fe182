import { eq } from "drizzle-orm";
import { organizations, userSync } from "../../db/schema.js";
import { Auth0CallError } from "../auth0/errors.js";
import { getActiveMapping } from "../directory/mappings.js";
import { initialApplied, plan, type AppliedState } from "../mapping/index.js";
import { jsonEqual } from "../mapping/types.js";
import { desiredFor, organizationInputPages, type UserInputs } from "./inputs.js";
import { enqueueJob, Lane } from "../directory/outbox.js";
import { ensureAuth0Organization, type SyncDeps } from "./reconcile-user.js";
import type { JobHandler } from "./worker.js";

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

/** Users checked at once by a scan. */
const DRIFT_CONCURRENCY = 8;

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
  const org = deps.db.select().from(organizations).where(eq(organizations.id, organizationId)).get();
  if (!org) throw new Auth0CallError("fatal", undefined, undefined, `organization ${organizationId} does not exist`);
  const auth0OrgId = await ensureAuth0Organization(deps, org, lane);
  const mapping = getActiveMapping(deps.db, org.id)!.document;
  const rows: UserInputs[] = [];
  for (const page of organizationInputPages(deps.db, org)) rows.push(...page);
  // Every role the mapping can grant is the bridge's: one granted by hand to a user the rules do not
  // give it is drift. Roles the mapping never names belong to someone else and are not compared.
  const mappingRoles = [...mapping.roles.default, ...mapping.roles.rules.flatMap((r) => r.grant)];
  const members = new Set((await deps.gateway.listMembers(auth0OrgId, lane)).map((m) => m.user_id));
  const accounted = new Set<string>();
  const report: DriftReport = { organizationId: org.id, checked: 0, drifted: [], unsynced: 0, unmanagedMembers: [], repaired: options.repair };

  let done = 0;
  // Users are checked a few at a time: a scan is two reads per linked user, and one at a time it
  // would be bound by call latency rather than by the tenant's rate limit (the limiter paces it).
  const found: (DriftedUser | undefined)[] = new Array(rows.length);
  let next = 0;
  const checkOne = async (index: number): Promise<void> => {
    const inputs = rows[index]!;
    const user = inputs.row;
    options.onProgress?.(done++, rows.length);
    const applied = inputs.applied;
    const d = desiredFor(mapping, inputs);
    if (applied.auth0UserId) accounted.add(applied.auth0UserId);
    if (!applied.auth0UserId || !applied.exists) {
      if (plan(d, applied).length > 0) {
        report.unsynced++;
        // Reconcile it again: an enterprise user who already exists in Auth0 (it signed in before the
        // hook was installed) is linked by email and connection this way (docs/design.md, "What Auth0 sees").
        if (options.repair) enqueueJob(deps.db, { organizationId: org.id, directoryId: user.directoryId, kind: "user", subjectId: user.id, lane: Lane.background });
      }
      return;
    }
    report.checked++;
    const observed: AppliedState = { ...applied };
    try {
      const auth0User = await deps.gateway.getUser(applied.auth0UserId, lane);
      observed.blocked = auth0User.blocked === true;
      const metadata = auth0User.app_metadata ?? {};
      observed.appMetadata = Object.fromEntries(d.ownedAppMetadataKeys.map((k) => [k, (metadata[k] as AppliedState["appMetadata"][string]) ?? null]));
      observed.member = members.has(applied.auth0UserId);
      if (observed.member) {
        // Only the roles the bridge manages count; roles granted by others are not drift.
        const managed = new Set([...mappingRoles, ...applied.roles, ...d.roles]);
        const names = await deps.gateway.listMemberRoleNames(auth0OrgId, applied.auth0UserId, lane);
        observed.roles = names.filter((r) => managed.has(r)).sort();
      } else {
        observed.roles = [];
      }
    } catch (err) {
      if (!(err instanceof Auth0CallError) || err.kind !== "userNotFound") throw err;
      Object.assign(observed, initialApplied());
    }
    // Auth0 shows a member removal only after "approximately 5–10 seconds" (Auth0 "Remove members
    // from organizations"): a removal the bridge made more recently than that is not drift.
    if (!applied.member && observed.member && inputs.appliedAt !== null && now() - inputs.appliedAt < MEMBER_REMOVAL_PROPAGATION_MS) {
      observed.member = false;
      observed.roles = [];
    }
    // A block the bridge did not place (a tenant administrator's) is recorded as such, so that no
    // reconcile lifts it; the bridge only lifts blocks it placed.
    if (observed.blocked === true && applied.blocked !== true) observed.blockedOutside = true;
    if (observed.blocked === false) delete observed.blockedOutside;
    const differences: string[] = [];
    if (observed.exists !== applied.exists) differences.push(describe("exists", applied.exists, observed.exists));
    if (observed.exists) {
      if (observed.blocked !== applied.blocked) differences.push(describe("blocked", applied.blocked, observed.blocked));
      if (observed.member !== applied.member) differences.push(describe("member", applied.member, observed.member));
      if (!jsonEqual(observed.roles, [...applied.roles].sort())) differences.push(describe("roles", applied.roles, observed.roles));
      for (const key of d.ownedAppMetadataKeys) {
        if (!jsonEqual(observed.appMetadata[key] ?? null, applied.appMetadata[key] ?? null)) {
          differences.push(describe(`app_metadata.${key}`, applied.appMetadata[key] ?? null, observed.appMetadata[key] ?? null));
        }
      }
    }
    if (differences.length === 0) return;
    // Access was given back behind the bridge's back (unblocked, or made a member again): sessions
    // opened since then are not covered by the earlier revocation, so the repair must revoke again.
    if ((applied.blocked === true && !observed.blocked) || (!applied.member && observed.member)) observed.accessRevoked = false;
    found[index] = { userId: user.id, userName: user.userName, differences };
    if (options.repair) {
      deps.db.transaction((tx) => {
        tx.update(userSync).set({ applied: JSON.stringify(observed), auth0UserId: observed.auth0UserId }).where(eq(userSync.userId, user.id)).run();
        // A user who should be cut off but is not gets the deprovision lane.
        const urgent = (d.blocked && !observed.blocked) || (!d.member && observed.member);
        enqueueJob(tx, { organizationId: org.id, directoryId: user.directoryId, kind: "user", subjectId: user.id, lane: urgent ? Lane.deprovision : Lane.background });
      });
    }
  };
  const runner = async (): Promise<void> => {
    while (next < rows.length) await checkOne(next++);
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
