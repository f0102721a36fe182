import { z } from "zod";
import {
  adminTokenSummary,
  defaultAdminTokenDays,
  issueAdminToken,
  listAdminTokens,
  maxAdminTokenDays,
  revokeAdminToken,
  type AdminTokenRow,
} from "../directory/admin-tokens.js";
import { getOrganization } from "../directory/organizations.js";
import { invalidValue } from "../errors.js";
import { iso, type AdminRoutes } from "./routes.js";
import { adminChange } from "./transaction.js";

export const adminTokenView = (t: AdminTokenRow, now: number) => {
  const s = adminTokenSummary(t);
  return {
    ...s,
    active: t.revokedAt === null && (t.expiresAt === null || t.expiresAt > now),
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
    { method: "get", path: "/me", access: "authenticated", tag: "admin tokens", summary: "The calling token: scope and organization", status: 200 },
    ({ deps, principal }) => {
      const org = principal.organizationId ? getOrganization(deps.db, principal.organizationId) : undefined;
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
    ({ deps, query, now }) => {
      const org = query.organization ? getOrganization(deps.db, query.organization) : undefined;
      if (query.organization && !org) return { tokens: [] };
      return { tokens: listAdminTokens(deps.db, org?.id).map((t) => adminTokenView(t, now)) };
    },
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
    ({ deps, body, actor, requestId, now }) => {
      let organizationId: string | null = null;
      if (body.organization !== undefined) {
        const org = getOrganization(deps.db, body.organization);
        if (!org) throw invalidValue(`organization: "${body.organization}" does not exist`);
        organizationId = org.id;
      }
      const issued = adminChange(deps.db, requestId, (tx) =>
        issueAdminToken(tx, { scope: body.scope, organizationId, name: body.name, expiresInDays: body.expiresInDays }, actor, requestId, now),
      );
      return { token: issued.token, tokenRecord: adminTokenView(issued.record, now) };
    },
  );

  routes.add(
    { method: "delete", path: "/admin-tokens/:tokenId", access: "operator", tag: "admin tokens", summary: "Revoke an admin token now", status: 200 },
    ({ deps, param, actor, requestId, now }) => {
      const row = adminChange(deps.db, requestId, (tx) => revokeAdminToken(tx, param("tokenId"), actor, requestId, now));
      return { token: adminTokenView(row, now) };
    },
  );
}
