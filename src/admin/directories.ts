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

const directoryOf = (ctx: RouteContext<unknown, unknown>): Promise<DirectoryRow> =>
  ctx.deps.store.read(directoryOfOrganization(ctx.organization.id, ctx.param("dir")));

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
    async ({ deps, organization }) => ({
      directories: (await deps.store.read(listDirectories(organization.id))).map((d) =>
        directoryView(d, deps.publicUrl),
      ),
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
    async ({ deps, organization, body, change, now }) => {
      const { directory, token } = await addDirectory(
        deps.store,
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
    async (ctx) => ({ directory: directoryView(await directoryOf(ctx), ctx.deps.publicUrl) }),
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
    async (ctx) => {
      const organizationId = ctx.organization.id;
      const directoryId = ctx.param("dir");
      const tokens = await ctx.deps.store.read(
        (function* () {
          return yield* listScimTokens((yield* directoryOfOrganization(organizationId, directoryId)).id);
        })(),
      );
      return { tokens: tokens.map((t) => scimTokenView(t, ctx.now)) };
    },
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
    async (ctx) => {
      const issued = await issueDirectoryToken(
        ctx.deps.store,
        ctx.organization.id,
        ctx.param("dir"),
        ctx.body,
        ctx.change,
      );
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
    async (ctx) => {
      const { token: issued } = await rotateDirectoryToken(
        ctx.deps.store,
        ctx.param("dir"),
        ctx.body,
        ctx.change,
        ctx.organization.id,
      );
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
    async (ctx) => {
      const revoked = await revokeDirectoryToken(
        ctx.deps.store,
        ctx.organization.id,
        ctx.param("dir"),
        ctx.param("tokenId"),
        ctx.change,
      );
      return { token: scimTokenView(revoked, ctx.now) };
    },
  );
}
