import { z } from "zod";
import {
  createSetupLink,
  listSetupLinks,
  parseSetupLinkLifetime,
  revokeSetupLinks,
  setupLinkState,
  setupLinkUrl,
  type SetupLinkRow,
} from "../directory/setup-links.js";
import type { SqlStore } from "../directory/sql.js";
import type { Change } from "../directory/write-context.js";
import { iso, type AdminRoutes } from "./routes.js";

/** A setup link for an organization; `expires` as the operator wrote it ("30m", "24h", "3d"; default 72h, at most 7d). */
export function createOrganizationSetupLink(
  store: SqlStore,
  organizationId: string,
  expires: string | undefined,
  change: Change,
) {
  const lifetimeMs = parseSetupLinkLifetime(expires);
  return store.write(createSetupLink({ organizationId, lifetimeMs }, change));
}

/** Revokes one of the organization's setup links by id, or all of them (id undefined); returns the ids revoked. */
export function revokeOrganizationSetupLinks(
  store: SqlStore,
  organizationId: string,
  id: string | undefined,
  change: Change,
): Promise<string[]> {
  return store.write(revokeSetupLinks(organizationId, id, change));
}

/** Self-service setup links for a customer's IT admin (one organization's directory setup, no account). */
const linkView = (l: SetupLinkRow, now: number) => ({
  id: l.id,
  organizationId: l.organizationId,
  state: setupLinkState(l, now),
  createdBy: l.createdBy,
  createdAt: iso(l.createdAt),
  expiresAt: iso(l.expiresAt),
  revokedAt: iso(l.revokedAt),
  lastUsedAt: iso(l.lastUsedAt),
});

export function setupLinkRoutes(routes: AdminRoutes): void {
  routes.add(
    {
      method: "post",
      path: "/organizations/:org/setup-links",
      access: "operator",
      tag: "setup links",
      summary:
        "Create a setup link (the URL is shown once) that lets the customer's IT admin set up this organization's directories",
      body: z.strictObject({
        expires: z
          .string()
          .max(10)
          .optional()
          .describe('lifetime such as "30m", "24h" or "3d" (default 72h, at most 7d)'),
      }),
      status: 201,
    },
    async ({ deps, organization, body, change, now }) => {
      const made = await createOrganizationSetupLink(deps.store, organization.id, body.expires, change);
      return {
        url: setupLinkUrl(deps.publicUrl, made.token),
        expiresAt: iso(made.record.expiresAt),
        link: linkView(made.record, now),
      };
    },
  );

  routes.add(
    {
      method: "get",
      path: "/organizations/:org/setup-links",
      access: "operator",
      tag: "setup links",
      summary: "The organization's setup links (never the URL)",
      status: 200,
    },
    async ({ deps, organization, now }) => ({
      links: (await deps.store.read(listSetupLinks(organization.id))).map((l) => linkView(l, now)),
    }),
  );

  routes.add(
    {
      method: "post",
      path: "/organizations/:org/setup-links/revoke",
      access: "operator",
      tag: "setup links",
      summary:
        "Revoke one setup link (id) or all of the organization's (all: true); sessions opened with them end at once",
      body: z.union([z.strictObject({ id: z.string().min(1).max(100) }), z.strictObject({ all: z.literal(true) })]),
      status: 200,
    },
    async ({ deps, organization, body, change }) => ({
      revoked: await revokeOrganizationSetupLinks(
        deps.store,
        organization.id,
        "id" in body ? body.id : undefined,
        change,
      ),
    }),
  );
}
