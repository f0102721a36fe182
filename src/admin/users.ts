import { z } from "zod";
import { recordAudit } from "../directory/audit.js";
import { listHolds, placeHold, releaseHold, type HoldRow } from "../directory/holds.js";
import { BridgeError, isBridgeError, notFound } from "../errors.js";
import { directoryOfOrganization } from "./onboarding.js";
import { iso, limitParam, type AdminRoutes } from "./routes.js";
import { findUser, listOrganizationGroups, searchUsers, usersWithSyncState } from "./user-queries.js";

/**
 * Customer-admin routes (docs/design.md, "Who uses it"): its users and their sync state, block and unblock (holds),
 * force sign-out. Operators may use them for any organization; an org-admin for its own only.
 */
const holdView = (h: HoldRow) => ({
  id: h.id,
  userId: h.userId,
  directoryId: h.directoryId,
  reason: h.reason,
  placedBy: h.placedBy,
  placedAt: iso(h.placedAt),
  releasedBy: h.releasedBy,
  releasedAt: iso(h.releasedAt),
});

function* userOf(organizationId: string, id: string) {
  const row = yield* findUser(organizationId, id);
  if (!row) throw notFound(`user "${id}" not found`);
  return row;
}

export function userRoutes(routes: AdminRoutes): void {
  routes.add(
    {
      method: "get",
      path: "/organizations/:org/users",
      access: "organization",
      tag: "users",
      summary:
        "List and search the organization's users with their sync state (linked Auth0 id, last applied, pending job, last error)",
      query: z.strictObject({
        q: z.string().min(1).max(200).optional().describe("substring of userName, displayName, externalId or an email"),
        directory: z.string().min(1).optional().describe("only this directory's users"),
        state: z.enum(["active", "inactive", "held", "error"]).optional(),
        sync: z
          .enum(["error", "pending", "unlinked"])
          .optional()
          .describe("sync state: an Auth0 error, work queued, or not linked to an Auth0 user yet"),
        group: z.string().min(1).max(100).optional().describe("only members of this group (id)"),
        limit: limitParam(200, 50),
        after: z.string().min(1).max(100).optional().describe("cursor: `next` of the previous page"),
      }),
      status: 200,
    },
    ({ deps, organization, query }) =>
      // One snapshot: the page and the sync state of its users agree.
      deps.store.read(
        (function* () {
          if (query.directory) yield* directoryOfOrganization(organization.id, query.directory);
          const page = yield* searchUsers({
            organizationId: organization.id,
            directoryId: query.directory,
            q: query.q,
            state: query.state,
            sync: query.sync,
            group: query.group,
            limit: query.limit,
            after: query.after,
          });
          return { users: yield* usersWithSyncState(organization.id, page.users), next: page.next };
        })(),
      ),
  );

  routes.add(
    {
      method: "get",
      path: "/organizations/:org/groups",
      access: "organization",
      tag: "users",
      summary: "The organization's groups by name (id, directory, member count), for filtering users",
      query: z.strictObject({ limit: limitParam(1000, 200) }),
      status: 200,
    },
    async ({ deps, organization, query }) => ({
      groups: await deps.store.read(listOrganizationGroups(organization.id, query.limit)),
    }),
  );

  routes.add(
    {
      method: "get",
      path: "/organizations/:org/users/:userId",
      access: "organization",
      tag: "users",
      summary: "One user with its sync state and every hold ever placed on it",
      status: 200,
    },
    ({ deps, organization, param }) =>
      deps.store.read(
        (function* () {
          const row = yield* userOf(organization.id, param("userId"));
          const [user] = yield* usersWithSyncState(organization.id, [row]);
          return {
            user,
            scim: JSON.parse(row.resource) as unknown,
            groups: yield* listOrganizationGroups(organization.id, 200, row.id),
            holdHistory: (yield* listHolds(organization.id, row.id)).map(holdView),
          };
        })(),
      ),
  );

  routes.add(
    {
      method: "post",
      path: "/organizations/:org/users/:userId/block",
      access: "organization",
      tag: "users",
      summary:
        "Block the user now (a hold): wins over the IdP until released; the Auth0 side follows in the deprovision lane",
      body: z.strictObject({ reason: z.string().trim().min(1).max(500) }),
      status: 201,
      errors: [409],
    },
    async (ctx) => {
      const { deps, organization, body, change } = ctx;
      const hold = await deps.store.write(
        placeHold({ organizationId: organization.id, userId: ctx.param("userId"), reason: body.reason }, change),
      );
      deps.notifyWorker?.();
      return { hold: holdView(hold) };
    },
  );

  routes.add(
    {
      method: "post",
      path: "/organizations/:org/users/:userId/unblock",
      access: "organization",
      tag: "users",
      summary:
        "Release the user's holds: Auth0 then follows what the IdP says (access again only if the IdP has the user active)",
      body: z.strictObject({ reason: z.string().trim().max(500).optional() }),
      status: 200,
      errors: [409],
    },
    async (ctx) => {
      const { deps, organization, body, change } = ctx;
      const released = await deps.store.write(
        releaseHold({ organizationId: organization.id, userId: ctx.param("userId"), note: body.reason }, change),
      );
      deps.notifyWorker?.();
      return { released: released.map(holdView) };
    },
  );

  routes.add(
    {
      method: "post",
      path: "/organizations/:org/users/:userId/sign-out",
      access: "organization",
      tag: "users",
      summary:
        "Force sign-out: revoke the user's Auth0 sessions and refresh tokens now (the user may sign in again unless blocked)",
      status: 200,
      errors: [503],
    },
    async (ctx) => {
      const { deps, organization, actor, requestId } = ctx;
      const user = await deps.store.read(userOf(organization.id, ctx.param("userId")));
      // Its own unit after the Auth0 call: no unit is held open across it.
      const audit = (after: Record<string, unknown>): Promise<void> =>
        deps.store.write(
          recordAudit({
            actor,
            organizationId: organization.id,
            directoryId: user.directoryId,
            action: "user.sign_out",
            targetType: "user",
            targetId: user.id,
            after,
            requestId,
            at: (deps.now ?? Date.now)(),
          }),
        );
      let result: { revoked: boolean; reason?: string };
      try {
        result = await deps.signOut(user.id, actor, requestId);
      } catch (err) {
        // The attempt is audited too: an auditor asks who tried to cut access, and whether it worked.
        await audit({ revoked: false, error: err instanceof Error ? err.message : String(err) });
        // A refusal with a meaning (e.g. not linked to Auth0 yet) goes out as it is; anything else is Auth0 not answering.
        if (isBridgeError(err) && err.status < 500) throw err;
        throw new BridgeError("unavailable", "Auth0 did not confirm the sign-out; retry shortly", {
          cause: err,
          retryAfter: 5,
        });
      }
      await audit({ revoked: result.revoked, ...(result.reason ? { reason: result.reason } : {}) });
      return { revoked: result.revoked, reason: result.reason ?? null };
    },
  );
}
