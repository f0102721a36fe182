import { z } from "zod";
import {
  adminTokenSummary,
  defaultAdminTokenDays,
  maxAdminTokenDays,
  type AdminTokenRow,
} from "../directory/admin-tokens.js";
import { getOrganization } from "../directory/organizations.js";
import { adminTokensOf, adminTokenState, issueAdminTokenFor, revokeAdminTokenById } from "./admin-tokens.js";
import { iso, type AdminRoutes } from "./routes.js";

export const adminTokenView = (t: AdminTokenRow, now: number) => {
  const s = adminTokenSummary(t);
  return {
    ...s,
    active: adminTokenState(t, now) === "active",
    createdAt: iso(t.createdAt),
    expiresAt: iso(t.expiresAt),
    revokedAt: iso(t.revokedAt),
    lastUsedAt: iso(t.lastUsedAt),
  };
};

const issueBody = z.strictObject({
  name: z.string().min(1).max(100),
  scope: z.enum(["operator", "org_admin"]),
  organization: z.string().min(1).optional().describe("organization id or slug; required for org_admin"),
  expiresInDays: z.int().min(1).max(maxAdminTokenDays).optional().describe(`default ${defaultAdminTokenDays}`),
});

/** Admin tokens (operator only) and "who am I" (any valid token). */
export function adminTokenRoutes(routes: AdminRoutes): void {
  routes.add(
    {
      method: "get",
      path: "/me",
      access: "authenticated",
      tag: "admin tokens",
      summary: "The calling token: scope and organization",
      status: 200,
    },
    async ({ deps, principal }) => {
      const org = principal.organizationId
        ? await deps.store.read(getOrganization(principal.organizationId))
        : undefined;
      return {
        tokenId: principal.tokenId,
        scope: principal.scope,
        organization: org ? { id: org.id, slug: org.slug, displayName: org.displayName } : null,
      };
    },
  );

  routes.add(
    {
      method: "get",
      path: "/admin-tokens",
      access: "operator",
      tag: "admin tokens",
      summary: "Issued admin tokens (never the secret or its hash)",
      query: z.strictObject({ organization: z.string().min(1).optional() }),
      status: 200,
    },
    async ({ deps, query, now }) => ({
      tokens: (await adminTokensOf(deps.store, query.organization)).map((t) => adminTokenView(t, now)),
    }),
  );

  routes.add(
    {
      method: "post",
      path: "/admin-tokens",
      access: "operator",
      tag: "admin tokens",
      summary: "Issue an admin token (operator, or org_admin of one organization); the secret is in this response only",
      body: issueBody,
      status: 201,
    },
    async ({ deps, body, change, now }) => {
      const issued = await issueAdminTokenFor(deps.store, body, change);
      return { token: issued.token, tokenRecord: adminTokenView(issued.record, now) };
    },
  );

  routes.add(
    {
      method: "delete",
      path: "/admin-tokens/:tokenId",
      access: "operator",
      tag: "admin tokens",
      summary: "Revoke an admin token now",
      status: 200,
    },
    async ({ deps, param, change, now }) => {
      const row = await revokeAdminTokenById(deps.store, param("tokenId"), change);
      return { token: adminTokenView(row, now) };
    },
  );
}
