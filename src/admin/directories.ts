import { and, eq } from "drizzle-orm";
import { z } from "zod";
import { directories } from "../../db/schema.js";
import { recordAudit } from "../directory/audit.js";
import type { DbOrTx } from "../directory/database.js";
import { createDirectory, listDirectories, scimBaseUrl, type DirectoryRow } from "../directory/directories.js";
import { issueScimToken, listScimTokens, maxActiveTokens, revokeScimToken } from "../directory/tokens.js";
import { conflict, notFound } from "../errors.js";
import { expiresAt, tokenExpiry } from "./organizations.js";
import type { AdminRoutes, RouteContext } from "./routes.js";
import { adminChange } from "./transaction.js";
import { directoryView, scimTokenView } from "./views.js";

/** A directory of this organization, or 404 (docs/design.md, invariant 5: another tenant's id does not exist here). */
export function directoryOfOrganization(db: DbOrTx, organizationId: string, directoryId: string): DirectoryRow {
  const row = db.select().from(directories).where(and(eq(directories.id, directoryId), eq(directories.organizationId, organizationId))).get();
  if (!row) throw notFound(`directory "${directoryId}" not found`);
  return row;
}

const directoryOf = (ctx: RouteContext<unknown, unknown>): DirectoryRow => directoryOfOrganization(ctx.deps.db, ctx.organization.id, ctx.param("dir"));

const tokenBody = z.strictObject({ expiresInDays: tokenExpiry });
const isActive = (t: { revokedAt: number | null; expiresAt: number | null }, now: number): boolean =>
  t.revokedAt === null && (t.expiresAt === null || t.expiresAt > now);

export function directoryRoutes(routes: AdminRoutes): void {
  routes.add(
    { method: "get", path: "/organizations/:org/directories", access: "organization", tag: "directories", summary: "The organization's directories (one per IdP) with their SCIM base URLs", status: 200 },
    ({ deps, organization }) => ({ directories: listDirectories(deps.db, organization.id).map((d) => directoryView(d, deps.publicUrl)) }),
  );

  routes.add(
    {
      method: "post",
      path: "/organizations/:org/directories",
      access: "operator",
      tag: "directories",
      summary: "Add a directory (another IdP) with its first SCIM token (shown once)",
      body: z.strictObject({ name: z.string().min(1).max(255).optional(), tokenExpiresInDays: tokenExpiry }),
      status: 201,
    },
    ({ deps, organization, body, actor, requestId, now }) => {
      const { directory, token } = adminChange(deps.db, requestId, (tx) => {
        const directory = createDirectory(tx, { organizationId: organization.id, name: body.name }, actor, now);
        const token = issueScimToken(tx, { directoryId: directory.id, organizationId: organization.id, expiresAt: expiresAt(body.tokenExpiresInDays, now) }, actor, now);
        return { directory, token };
      });
      return { directory: directoryView(directory, deps.publicUrl), scimBaseUrl: scimBaseUrl(deps.publicUrl, directory.id), token: token.token, tokenRecord: scimTokenView(token.record, now) };
    },
  );

  routes.add(
    { method: "get", path: "/organizations/:org/directories/:dir", access: "organization", tag: "directories", summary: "One directory", status: 200 },
    (ctx) => ({ directory: directoryView(directoryOf(ctx), ctx.deps.publicUrl) }),
  );

  routes.add(
    { method: "get", path: "/organizations/:org/directories/:dir/tokens", access: "organization", tag: "scim tokens", summary: "The directory's SCIM tokens (hint, created, last used, expiry; never the secret)", status: 200 },
    (ctx) => ({ tokens: listScimTokens(ctx.deps.db, directoryOf(ctx).id).map((t) => scimTokenView(t, ctx.now)) }),
  );

  routes.add(
    {
      method: "post",
      path: "/organizations/:org/directories/:dir/tokens",
      access: "operator",
      tag: "scim tokens",
      summary: "Issue a SCIM token (shown once); refused while two are active, so that issuing never cuts off a working IdP",
      body: tokenBody,
      status: 201,
      errors: [409],
    },
    (ctx) => {
      const directory = directoryOf(ctx);
      const { deps, organization, body, actor, requestId, now } = ctx;
      const issued = adminChange(deps.db, requestId, (tx) => {
        const active = listScimTokens(tx, directory.id).filter((t) => isActive(t, now));
        if (active.length >= maxActiveTokens) throw conflict(`directory "${directory.id}" already has ${maxActiveTokens} active tokens; rotate or revoke one`);
        return issueScimToken(tx, { directoryId: directory.id, organizationId: organization.id, expiresAt: expiresAt(body.expiresInDays, now) }, actor, now);
      });
      return { token: issued.token, tokenRecord: scimTokenView(issued.record, now) };
    },
  );

  routes.add(
    {
      method: "post",
      path: "/organizations/:org/directories/:dir/tokens/rotate",
      access: "organization",
      tag: "scim tokens",
      summary: "Rotate: issue a new SCIM token (shown once); the previous one stays valid until revoked, and the oldest of two active ones is revoked",
      body: tokenBody,
      status: 201,
    },
    (ctx) => {
      const directory = directoryOf(ctx);
      const { deps, organization, body, actor, requestId, now } = ctx;
      const before = new Set(listScimTokens(deps.db, directory.id).filter((t) => isActive(t, now)).map((t) => t.id));
      const issued = adminChange(deps.db, requestId, (tx) =>
        issueScimToken(tx, { directoryId: directory.id, organizationId: organization.id, expiresAt: expiresAt(body.expiresInDays, now) }, actor, now),
      );
      const stillActive = listScimTokens(deps.db, directory.id).filter((t) => isActive(t, now));
      const revoked = [...before].filter((id) => !stillActive.some((t) => t.id === id));
      return { token: issued.token, tokenRecord: scimTokenView(issued.record, now), revokedTokenIds: revoked };
    },
  );

  routes.add(
    {
      method: "delete",
      path: "/organizations/:org/directories/:dir/tokens/:tokenId",
      access: "organization",
      tag: "scim tokens",
      summary: "Revoke a SCIM token now (the IdP using it gets 401 from its next request)",
      status: 200,
    },
    (ctx) => {
      const directory = directoryOf(ctx);
      const { deps, organization, actor, requestId, now } = ctx;
      const tokenId = ctx.param("tokenId");
      const revoked = adminChange(deps.db, requestId, (tx) => {
        const token = listScimTokens(tx, directory.id).find((t) => t.id === tokenId);
        if (!token) throw notFound(`token "${tokenId}" not found`);
        if (!revokeScimToken(tx, token.id, now)) return token;
        recordAudit(tx, {
          actor,
          organizationId: organization.id,
          directoryId: directory.id,
          action: "token.revoke",
          targetType: "scim_token",
          targetId: token.id,
          before: { hint: token.hint, revokedAt: null },
          after: { hint: token.hint, revokedAt: now },
          requestId,
          at: now,
        });
        return { ...token, revokedAt: now };
      });
      return { token: scimTokenView(revoked, now) };
    },
  );
}
