import { z } from "zod";
import { listDirectories, scimBaseUrl } from "../directory/directories.js";
import {
  deleteOrganization,
  listOrganizations,
  organizationSlugPattern,
  updateOrganization,
  userModels,
} from "../directory/organizations.js";
import { maxScimTokenDays, onboardOrganization } from "./onboarding.js";
import type { AdminRoutes } from "./routes.js";
import { directoryView, organizationView, scimTokenView } from "./views.js";

/** Optional SCIM token lifetime; none by default, because an IdP whose token expires unseen stops deprovisioning. */
export const tokenExpiry = z
  .int()
  .min(1)
  .max(maxScimTokenDays)
  .optional()
  .describe("SCIM token lifetime in days (none by default)");

const createBody = z.strictObject({
  slug: z
    .string()
    .regex(organizationSlugPattern, "1 to 50 lower-case letters, digits, '-' or '_' (Auth0 organization name rules)"),
  displayName: z.string().min(1).max(255).optional(),
  userModel: z.enum(userModels as [string, ...string[]]).optional(),
  connection: z.string().min(1).max(128).optional(),
  directoryName: z.string().min(1).max(255).optional(),
  tokenExpiresInDays: tokenExpiry,
});

const updateBody = z
  .strictObject({
    displayName: z.string().min(1).max(255).optional(),
    connection: z.string().min(1).max(128).optional(),
  })
  .refine((b) => b.displayName !== undefined || b.connection !== undefined, "name displayName or connection");

export function organizationRoutes(routes: AdminRoutes): void {
  routes.add(
    {
      method: "post",
      path: "/organizations",
      access: "operator",
      tag: "organizations",
      summary:
        "Onboard an organization: its first directory and SCIM token (shown once); the sync engine creates its Auth0 Organization",
      body: createBody,
      status: 201,
      errors: [409],
    },
    async ({ deps, body, change, now }) => {
      const onboarded = await onboardOrganization(
        deps.store,
        { ...body, userModel: body.userModel as "isolated" | "shared" | undefined },
        change,
      );
      deps.notifyWorker?.();
      return {
        organization: organizationView(onboarded.organization),
        directory: directoryView(onboarded.directory, deps.publicUrl),
        scimBaseUrl: scimBaseUrl(deps.publicUrl, onboarded.directory.id),
        token: onboarded.token.token,
        tokenRecord: scimTokenView(onboarded.token.record, now),
      };
    },
  );

  routes.add(
    {
      method: "get",
      path: "/organizations",
      access: "operator",
      tag: "organizations",
      summary: "Every organization",
      status: 200,
    },
    async ({ deps }) => ({ organizations: (await deps.store.read(listOrganizations())).map(organizationView) }),
  );

  routes.add(
    {
      method: "get",
      path: "/organizations/:org",
      access: "organization",
      tag: "organizations",
      summary: "One organization (by id or slug) and its directories",
      status: 200,
    },
    async ({ deps, organization }) => ({
      organization: organizationView(organization),
      directories: (await deps.store.read(listDirectories(organization.id))).map((d) =>
        directoryView(d, deps.publicUrl),
      ),
    }),
  );

  routes.add(
    {
      method: "patch",
      path: "/organizations/:org",
      access: "operator",
      tag: "organizations",
      summary: "Change an organization's display name or default connection; the organization is reconciled again",
      body: updateBody,
      status: 200,
    },
    async ({ deps, body, organization: before, change }) => {
      const updated = await deps.store.write(updateOrganization(before, body, change));
      deps.notifyWorker?.();
      return { organization: organizationView(updated) };
    },
  );

  routes.add(
    {
      method: "delete",
      path: "/organizations/:org",
      access: "operator",
      tag: "organizations",
      summary: "Delete an organization once it has no users and no unfinished jobs",
      description:
        "Refused (409) while any directory user is not deleted or any job is pending or running: deleting the rows " +
        "earlier would lose the tombstones the sync engine needs to deprovision those users in Auth0. The Auth0 " +
        "Organization itself is left in place (irreversible; an operator removes it in Auth0 if wanted).",
      status: 204,
      errors: [409],
    },
    async ({ deps, organization: org, change }) => {
      await deps.store.write(() => deleteOrganization(org, change));
      return undefined;
    },
  );
}
