import { and, eq, inArray, isNull, sql } from "drizzle-orm";
import { z } from "zod";
import { jobs, organizations, scimRequestLog, users, userSync } from "../../db/schema.js";
import { recordAudit } from "../directory/audit.js";
import { listDirectories, scimBaseUrl } from "../directory/directories.js";
import {
  listOrganizations,
  organizationSlugPattern,
  userModels,
  validateOrganization,
} from "../directory/organizations.js";
import { conflict } from "../errors.js";
import { enqueueJob, Lane } from "../directory/outbox.js";
import { maxScimTokenDays, onboardOrganization } from "./onboarding.js";
import type { AdminRoutes } from "./routes.js";
import { directoryView, organizationView, scimTokenView } from "./views.js";
import { runSync } from "../directory/store-op.js";

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
    ({ deps, body, change, now }) => {
      const onboarded = onboardOrganization(
        deps.db,
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
    ({ deps }) => ({ organizations: listOrganizations(deps.db).map(organizationView) }),
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
    ({ deps, organization }) => ({
      organization: organizationView(organization),
      directories: runSync(deps.db, listDirectories(organization.id)).map((d) => directoryView(d, deps.publicUrl)),
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
    ({ deps, body, organization: before, actor, requestId, now }) => {
      const next = validateOrganization({
        slug: before.slug,
        displayName: body.displayName ?? before.displayName,
        userModel: before.userModel as "isolated" | "shared",
        connection: body.connection ?? before.connection,
      });
      const updated = deps.db.transaction((tx) => {
        const row = tx
          .update(organizations)
          .set({ displayName: next.displayName, connection: next.connection, updatedAt: now })
          .where(eq(organizations.id, before.id))
          .returning()
          .get();
        runSync(
          tx,
          recordAudit({
            actor,
            organizationId: before.id,
            action: "organization.update",
            targetType: "organization",
            targetId: before.id,
            before: { displayName: before.displayName, connection: before.connection },
            after: { displayName: row.displayName, connection: row.connection },
            requestId,
            at: now,
          }),
        );
        runSync(
          tx,
          enqueueJob({
            organizationId: before.id,
            kind: "organization",
            subjectId: before.id,
            lane: Lane.background,
            now,
          }),
        );
        return row;
      });
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
    ({ deps, organization: org, actor, requestId, now }) => {
      deps.db.transaction((tx) => {
        const dirIds = runSync(tx, listDirectories(org.id)).map((d) => d.id);
        const live =
          dirIds.length === 0
            ? 0
            : (tx
                .select({ n: sql<number>`count(*)` })
                .from(users)
                .where(and(inArray(users.directoryId, dirIds), isNull(users.deletedAt)))
                .get()?.n ?? 0);
        if (live > 0)
          throw conflict(
            `organization "${org.slug}" still has ${live} user(s); deprovision them through the IdP first`,
          );
        const open =
          tx
            .select({ n: sql<number>`count(*)` })
            .from(jobs)
            .where(and(eq(jobs.organizationId, org.id), inArray(jobs.state, ["pending", "running"])))
            .get()?.n ?? 0;
        if (open > 0)
          throw conflict(`organization "${org.slug}" has ${open} unfinished job(s); wait until they are done`);
        // Rows without a foreign key to the organization go explicitly; the rest cascade.
        tx.delete(userSync).where(eq(userSync.organizationId, org.id)).run();
        if (dirIds.length > 0) tx.delete(scimRequestLog).where(inArray(scimRequestLog.directoryId, dirIds)).run();
        tx.delete(jobs).where(eq(jobs.organizationId, org.id)).run();
        tx.delete(organizations).where(eq(organizations.id, org.id)).run();
        runSync(
          tx,
          recordAudit({
            actor,
            organizationId: org.id,
            action: "organization.delete",
            targetType: "organization",
            targetId: org.id,
            before: { slug: org.slug, displayName: org.displayName, auth0OrgId: org.auth0OrgId, directories: dirIds },
            requestId,
            at: now,
          }),
        );
      });
      return undefined;
    },
  );
}
