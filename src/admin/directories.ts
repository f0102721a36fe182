import { z } from "zod";
import { listDirectories, scimBaseUrl, type DirectoryRow } from "../directory/directories.js";
import { listScimTokens } from "../directory/tokens.js";
import {
  addDirectory,
  directoryOfOrganization,
  issueDirectoryToken,
  revokeDirectoryToken,
  rotateDirectoryToken,
} from "./onboarding.js";
import { tokenExpiry } from "./organizations.js";
import type { AdminRoutes, RouteContext } from "./routes.js";
import { directoryView, scimTokenView } from "./views.js";
import { runSync } from "../directory/store-op.js";

const directoryOf = (ctx: RouteContext<unknown, unknown>): DirectoryRow =>
  directoryOfOrganization(ctx.deps.db, ctx.organization.id, ctx.param("dir"));

const tokenBody = z.strictObject({ expiresInDays: tokenExpiry });

export function directoryRoutes(routes: AdminRoutes): void {
  routes.add(
    {
      method: "get",
      path: "/organizations/:org/directories",
      access: "organization",
      tag: "directories",
      summary: "The organization's directories (one per IdP) with their SCIM base URLs",
      status: 200,
    },
    ({ deps, organization }) => ({
      directories: runSync(deps.db, listDirectories(organization.id)).map((d) => directoryView(d, deps.publicUrl)),
    }),
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
    ({ deps, organization, body, change, now }) => {
      const { directory, token } = addDirectory(
        deps.db,
        organization.id,
        { name: body.name, tokenExpiresInDays: body.tokenExpiresInDays },
        change,
      );
      return {
        directory: directoryView(directory, deps.publicUrl),
        scimBaseUrl: scimBaseUrl(deps.publicUrl, directory.id),
        token: token.token,
        tokenRecord: scimTokenView(token.record, now),
      };
    },
  );

  routes.add(
    {
      method: "get",
      path: "/organizations/:org/directories/:dir",
      access: "organization",
      tag: "directories",
      summary: "One directory",
      status: 200,
    },
    (ctx) => ({ directory: directoryView(directoryOf(ctx), ctx.deps.publicUrl) }),
  );

  routes.add(
    {
      method: "get",
      path: "/organizations/:org/directories/:dir/tokens",
      access: "organization",
      tag: "scim tokens",
      summary: "The directory's SCIM tokens (hint, created, last used, expiry; never the secret)",
      status: 200,
    },
    (ctx) => ({
      tokens: runSync(ctx.deps.db, listScimTokens(directoryOf(ctx).id)).map((t) => scimTokenView(t, ctx.now)),
    }),
  );

  routes.add(
    {
      method: "post",
      path: "/organizations/:org/directories/:dir/tokens",
      access: "operator",
      tag: "scim tokens",
      summary:
        "Issue a SCIM token (shown once); refused while two are active, so that issuing never cuts off a working IdP",
      body: tokenBody,
      status: 201,
      errors: [409],
    },
    (ctx) => {
      const issued = issueDirectoryToken(ctx.deps.db, directoryOf(ctx), ctx.body, ctx.change);
      const now = ctx.now;
      return { token: issued.token, tokenRecord: scimTokenView(issued.record, now) };
    },
  );

  routes.add(
    {
      method: "post",
      path: "/organizations/:org/directories/:dir/tokens/rotate",
      access: "organization",
      tag: "scim tokens",
      summary:
        "Rotate: issue a new SCIM token (shown once); the previous one stays valid until revoked, and the oldest of two active ones is revoked",
      body: tokenBody,
      status: 201,
    },
    (ctx) => {
      const { token: issued } = rotateDirectoryToken(ctx.deps.db, directoryOf(ctx), ctx.body, ctx.change);
      return {
        token: issued.token,
        tokenRecord: scimTokenView(issued.record, ctx.now),
        revokedTokenIds: issued.revoked.map((t) => t.id),
      };
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
      const revoked = revokeDirectoryToken(ctx.deps.db, directoryOf(ctx), ctx.param("tokenId"), ctx.change);
      return { token: scimTokenView(revoked, ctx.now) };
    },
  );
}
