import { getActiveMapping } from "../directory/mappings.js";
import { getOrganization } from "../directory/organizations.js";
import { activePause, decideGuardPause, listGuardPauses, pausedOrganizations, type GuardPause } from "../sync/guard.js";
import { readSync, runSync, writeSync } from "../directory/store-op.js";
import { iso, type AdminRoutes } from "./routes.js";

/**
 * The mass-deprovision guard (docs/design.md, invariant 8): operators see which organizations have
 * irreversible operations paused, and approve (they run) or reject (they stay undone). Blocking and
 * sign-out were never paused.
 */
const pauseView = (p: GuardPause) => ({
  id: p.id,
  organizationId: p.organizationId,
  state: p.state,
  reason: p.reason,
  trippedAt: iso(p.trippedAt),
  decidedBy: p.decidedBy,
  decidedAt: iso(p.decidedAt),
});

export function guardRoutes(routes: AdminRoutes): void {
  routes.add(
    {
      method: "get",
      path: "/guard",
      access: "operator",
      tag: "guard",
      summary: "Organizations whose irreversible operations are paused, awaiting a decision",
      status: 200,
    },
    ({ deps }) => ({
      paused: readSync(deps.db, pausedOrganizations()).flatMap((id) => {
        const org = runSync(deps.db, getOrganization(id));
        const pause = readSync(deps.db, activePause(id));
        return org && pause ? [{ organization: { id: org.id, slug: org.slug }, pause: pauseView(pause) }] : [];
      }),
    }),
  );

  routes.add(
    {
      method: "get",
      path: "/organizations/:org/guard",
      access: "operator",
      tag: "guard",
      summary: "The guard's policy, its current pause if any, and past decisions",
      status: 200,
    },
    ({ deps, organization }) => {
      const pause = readSync(deps.db, activePause(organization.id));
      return {
        policy: getActiveMapping(deps.db, organization.id)!.document.policies.massDeprovisionGuard,
        paused: pause ? pauseView(pause) : null,
        history: readSync(deps.db, listGuardPauses(organization.id)).slice(0, 50).map(pauseView),
      };
    },
  );

  for (const decision of ["approve", "reject"] as const) {
    routes.add(
      {
        method: "post",
        path: `/organizations/:org/guard/${decision}`,
        access: "operator",
        tag: "guard",
        summary:
          decision === "approve"
            ? "Approve the paused irreversible operations: they run now"
            : "Reject the paused irreversible operations: they stay undone (users stay blocked, as the policy's reversible part did)",
        status: 200,
        errors: [409],
      },
      ({ deps, organization, actor, requestId, now }) => {
        const pause = writeSync(
          deps.db,
          decideGuardPause(organization.id, decision === "approve" ? "approved" : "rejected", actor, requestId, now),
        );
        deps.notifyWorker?.();
        return { pause: pauseView(pause) };
      },
    );
  }
}
