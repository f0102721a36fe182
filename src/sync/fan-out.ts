import { enqueueJobs, Lane } from "../directory/outbox.js";
import { many, one, type StoreOp } from "../directory/store-op.js";
import { organizationRow } from "./inputs.js";
import { ensureAuth0Organization, type SyncDeps } from "./reconcile-user.js";
import type { JobHandler } from "./worker.js";

/** Enqueues `users` (user id, directory id) with one statement per directory. */
function* enqueueUsers(
  organizationId: string,
  users: readonly { id: string; directoryId: string }[],
  lane: Lane,
  now: number,
): StoreOp<void> {
  const byDirectory = new Map<string, string[]>();
  for (const u of users) {
    const ids = byDirectory.get(u.directoryId);
    if (ids) ids.push(u.id);
    else byDirectory.set(u.directoryId, [u.id]);
  }
  for (const [directoryId, ids] of byDirectory)
    yield* enqueueJobs({ organizationId, directoryId, kind: "user", lane, now }, ids);
}

/** Every directory user (tombstones included) of the organization reconciled again, in the background lane. */
export function* enqueueOrganizationUsers(organizationId: string, now: number): StoreOp<number> {
  const users = yield* many<{ id: string; directoryId: string }>(
    `SELECT u.id, u.directory_id AS "directoryId" FROM users u JOIN directories d ON d.id = u.directory_id
     WHERE d.organization_id = ? ORDER BY u.directory_id, u.id`,
    [organizationId],
  );
  yield* enqueueUsers(organizationId, users, Lane.background, now);
  return users.length;
}

/** Every member of the group reconciled again (deprovision lane if the group job had it, else provision). */
export function* enqueueGroupMembers(groupId: string, lane: Lane, now: number): StoreOp<number> {
  const group = yield* one<{ id: string; directoryId: string; organizationId: string }>(
    `SELECT g.id, g.directory_id AS "directoryId", d.organization_id AS "organizationId"
     FROM groups g JOIN directories d ON d.id = g.directory_id WHERE g.id = ?`,
    [groupId],
  );
  if (!group) return 0;
  const members = yield* many<{ id: string }>(
    `SELECT member_id AS id FROM group_members WHERE group_id = ? ORDER BY member_id`,
    [group.id],
  );
  yield* enqueueUsers(
    group.organizationId,
    members.map((m) => ({ id: m.id, directoryId: group.directoryId })),
    lane,
    now,
  );
  return members.length;
}

/**
 * "organization" jobs: make sure the Auth0 Organization exists (creating or adopting it), then
 * reconcile every user of the organization in the background lane (a mapping change, onboarding).
 */
export function createOrganizationReconciler(deps: SyncDeps): JobHandler {
  return async (job) => {
    const org = await deps.store.read(organizationRow(job.subjectId));
    if (!org) return { status: "done" };
    await ensureAuth0Organization(deps, org, job.lane, true);
    await deps.store.write(enqueueOrganizationUsers(org.id, Date.now()));
    return { status: "done" };
  };
}

/**
 * "group" jobs: a group's name, externalId or existence changed, so the roles of all its members may
 * have changed: reconcile each member. (Member adds and removes enqueue the changed users directly.)
 */
export function createGroupReconciler(deps: SyncDeps): JobHandler {
  return async (job) => {
    const lane = job.lane === Lane.deprovision ? Lane.deprovision : Lane.provision;
    await deps.store.write(enqueueGroupMembers(job.subjectId, lane, Date.now()));
    return { status: "done" };
  };
}
