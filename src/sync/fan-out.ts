import { eq } from "drizzle-orm";
import { directories, groupMembers, groups, organizations, users } from "../../db/schema.js";
import { enqueueJob, Lane } from "../directory/outbox.js";
import { ensureAuth0Organization, type SyncDeps } from "./reconcile-user.js";
import type { JobHandler } from "./worker.js";
import { runSync } from "../directory/store-op.js";

/**
 * "organization" jobs: make sure the Auth0 Organization exists (creating or adopting it), then
 * reconcile every user of the organization in the background lane (a mapping change, onboarding).
 */
export function createOrganizationReconciler(deps: SyncDeps): JobHandler {
  return async (job) => {
    const org = deps.db.select().from(organizations).where(eq(organizations.id, job.subjectId)).get();
    if (!org) return { status: "done" };
    await ensureAuth0Organization(deps, org, job.lane, true);
    const now = Date.now();
    deps.db.transaction((tx) => {
      const ids = tx
        .select({ id: users.id, directoryId: users.directoryId })
        .from(users)
        .innerJoin(directories, eq(directories.id, users.directoryId))
        .where(eq(directories.organizationId, org.id))
        .all();
      for (const u of ids)
        runSync(
          tx,
          enqueueJob({
            organizationId: org.id,
            directoryId: u.directoryId,
            kind: "user",
            subjectId: u.id,
            lane: Lane.background,
            now,
          }),
        );
    });
    return { status: "done" };
  };
}

/**
 * "group" jobs: a group's name, externalId or existence changed, so the roles of all its members may
 * have changed: reconcile each member. (Member adds and removes enqueue the changed users directly.)
 */
export function createGroupReconciler(deps: SyncDeps): JobHandler {
  return async (job) => {
    const group = deps.db
      .select({ id: groups.id, directoryId: groups.directoryId, organizationId: directories.organizationId })
      .from(groups)
      .innerJoin(directories, eq(directories.id, groups.directoryId))
      .where(eq(groups.id, job.subjectId))
      .get();
    if (!group) return { status: "done" };
    const now = Date.now();
    deps.db.transaction((tx) => {
      const members = tx
        .select({ id: groupMembers.memberId })
        .from(groupMembers)
        .where(eq(groupMembers.groupId, group.id))
        .all();
      const lane = job.lane === Lane.deprovision ? Lane.deprovision : Lane.provision;
      for (const m of members)
        runSync(
          tx,
          enqueueJob({
            organizationId: group.organizationId,
            directoryId: group.directoryId,
            kind: "user",
            subjectId: m.id,
            lane,
            now,
          }),
        );
    });
    return { status: "done" };
  };
}
