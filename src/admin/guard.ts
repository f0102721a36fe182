import { activeMapping, mappingCacheOf } from "../directory/mappings.js";
import { getOrganization } from "../directory/organizations.js";
import { activePause, decideGuardPause, listGuardPauses, pausedOrganizations, type GuardPause } from "../sync/guard.js";
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
    ({ deps }) =>
      deps.store.read(
        (function* () {
          const paused = [];
          for (const id of yield* pausedOrganizations()) {
            const org = yield* getOrganization(id);
            const pause = yield* activePause(id);
            if (org && pause) paused.push({ organization: { id: org.id, slug: org.slug }, pause: pauseView(pause) });
          }
          return { paused };
        })(),
      ),
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
      const cache = mappingCacheOf(deps.store, true);
      return deps.store.read(
        (function* () {
          const pause = yield* activePause(organization.id);
          return {
            policy: (yield* activeMapping(organization.id, cache))!.document.policies.massDeprovisionGuard,
            paused: pause ? pauseView(pause) : null,
            history: (yield* listGuardPauses(organization.id)).slice(0, 50).map(pauseView),
          };
        })(),
      );
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
      async ({ deps, organization, actor, requestId, now }) => {
        const pause = await deps.store.write(
          decideGuardPause(organization.id, decision === "approve" ? "approved" : "rejected", actor, requestId, now),
        );
        deps.notifyWorker?.();
        return { pause: pauseView(pause) };
      },
    );
  }
}
