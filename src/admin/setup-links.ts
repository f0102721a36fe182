import { z } from "zod";
import { createSetupLink, listSetupLinks, parseSetupLinkLifetime, revokeSetupLinks, setupLinkState, setupLinkUrl, type SetupLinkRow } from "../directory/setup-links.js";
import { iso, type AdminRoutes } from "./routes.js";
import { adminChange } from "./transaction.js";

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
      summary: "Create a setup link (the URL is shown once) that lets the customer's IT admin set up this organization's directories",
      body: z.strictObject({ expires: z.string().max(10).optional().describe('lifetime such as "30m", "24h" or "3d" (default 72h, at most 7d)') }),
      status: 201,
    },
    ({ deps, organization, body, actor, requestId, now }) => {
      const lifetimeMs = parseSetupLinkLifetime(body.expires);
      const made = adminChange(deps.db, requestId, (tx) => createSetupLink(tx, { organizationId: organization.id, lifetimeMs }, actor, requestId, now));
      return { url: setupLinkUrl(deps.publicUrl, made.token), expiresAt: iso(made.record.expiresAt), link: linkView(made.record, now) };
    },
  );

  routes.add(
    { method: "get", path: "/organizations/:org/setup-links", access: "operator", tag: "setup links", summary: "The organization's setup links (never the URL)", status: 200 },
    ({ deps, organization, now }) => ({ links: listSetupLinks(deps.db, organization.id).map((l) => linkView(l, now)) }),
  );

  routes.add(
    {
      method: "post",
      path: "/organizations/:org/setup-links/revoke",
      access: "operator",
      tag: "setup links",
      summary: "Revoke one setup link (id) or all of the organization's (all: true); sessions opened with them end at once",
      body: z.union([z.strictObject({ id: z.string().min(1).max(100) }), z.strictObject({ all: z.literal(true) })]),
      status: 200,
    },
    ({ deps, organization, body, actor, requestId, now }) => ({
      revoked: adminChange(deps.db, requestId, (tx) => revokeSetupLinks(tx, organization.id, "id" in body ? body.id : undefined, actor, requestId, now)),
    }),
  );
}
