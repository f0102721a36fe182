import { type organizations } from "../../db/schema.js";
import { conflict, invalidValue, notFound, uniqueness } from "../errors.js";
import { Lane, enqueueJob } from "./outbox.js";
import { recordAudit } from "./audit.js";
import { newOrganizationId } from "./ids.js";
import { isUniqueViolation } from "./sql.js";
import type { Change } from "./write-context.js";
import { exec, forUpdate, many, one, type StoreOp } from "./store-op.js";

export type OrganizationRow = typeof organizations.$inferSelect;
export type UserModel = "isolated" | "shared";
export const userModels: readonly UserModel[] = ["isolated", "shared"];

/** Auth0 organization `name` rules: lower-case letters, digits, "-" and "_", 1 to 50 characters. */
export const organizationSlugPattern = /^[a-z0-9_-]{1,50}$/;

/** Auth0's default database connection, used when an operator names none. */
export const defaultConnection = "Username-Password-Authentication";

export interface NewOrganization {
  slug: string;
  displayName?: string;
  userModel?: UserModel;
  connection?: string;
}

export function validateOrganization(input: NewOrganization): Required<NewOrganization> {
  if (!organizationSlugPattern.test(input.slug)) {
    throw invalidValue(
      `organization slug "${input.slug}" must be 1 to 50 lower-case letters, digits, "-" or "_" (Auth0 organization name rules)`,
    );
  }
  const userModel = input.userModel ?? "isolated";
  if (!userModels.includes(userModel))
    throw invalidValue(`user model must be "isolated" or "shared" (got "${userModel}")`);
  const displayName = (input.displayName ?? input.slug).trim();
  if (displayName.length === 0 || displayName.length > 255)
    throw invalidValue("organization name must be 1 to 255 characters");
  const connection = (input.connection ?? defaultConnection).trim();
  if (connection.length === 0 || connection.length > 128)
    throw invalidValue("connection name must be 1 to 128 characters");
  return { slug: input.slug, displayName, userModel, connection };
}

export const organizationColumns = `id, slug, display_name AS "displayName", user_model AS "userModel", connection,
  auth0_org_id AS "auth0OrgId", active_mapping_version AS "activeMappingVersion", created_at AS "createdAt",
  updated_at AS "updatedAt"`;

/**
 * Creates an organization and enqueues the "organization" job through which the sync engine creates
 * or adopts its Auth0 Organization (named by the slug). One transaction, with its audit entry.
 */
export function* createOrganization(input: NewOrganization, change: Change): StoreOp<OrganizationRow> {
  const { actor, requestId, at: now } = change;
  const valid = validateOrganization(input);
  // The check gives the clear message; the unique index on slug decides between concurrent creates.
  if (yield* getOrganization(valid.slug)) throw uniqueness(`an organization with slug "${valid.slug}" already exists`);
  let row: OrganizationRow;
  try {
    row = (yield* one<OrganizationRow>(
      `INSERT INTO organizations (id, slug, display_name, user_model, connection, created_at, updated_at)
       VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING ${organizationColumns}`,
      [newOrganizationId(), valid.slug, valid.displayName, valid.userModel, valid.connection, now, now],
    ))!;
  } catch (error) {
    if (isUniqueViolation(error)) throw uniqueness(`an organization with slug "${valid.slug}" already exists`);
    throw error;
  }
  yield* recordAudit({
    actor,
    organizationId: row.id,
    action: "organization.create",
    targetType: "organization",
    targetId: row.id,
    after: { slug: row.slug, displayName: row.displayName, userModel: row.userModel, connection: row.connection },
    requestId,
    at: now,
  });
  yield* enqueueJob({ organizationId: row.id, kind: "organization", subjectId: row.id, lane: Lane.provision, now });
  return row;
}

/** By our id or by slug. */
export function* getOrganization(idOrSlug: string): StoreOp<OrganizationRow | undefined> {
  return yield* one<OrganizationRow>(`SELECT ${organizationColumns} FROM organizations WHERE id = ? OR slug = ?`, [
    idOrSlug,
    idOrSlug,
  ]);
}

export function* listOrganizations(): StoreOp<OrganizationRow[]> {
  return yield* many<OrganizationRow>(`SELECT ${organizationColumns} FROM organizations ORDER BY slug`);
}

/**
 * Changes an organization's display name or connection (validated with its slug and user model),
 * audits it and enqueues a background reconcile of the organization, in one transaction.
 */
export function* updateOrganization(
  before: OrganizationRow,
  changes: { displayName?: string; connection?: string },
  change: Change,
): StoreOp<OrganizationRow> {
  const { actor, requestId, at: now } = change;
  const next = validateOrganization({
    slug: before.slug,
    displayName: changes.displayName ?? before.displayName,
    userModel: before.userModel as UserModel,
    connection: changes.connection ?? before.connection,
  });
  const row = yield* one<OrganizationRow>(
    `UPDATE organizations SET display_name = ?, connection = ?, updated_at = ? WHERE id = ? RETURNING ${organizationColumns}`,
    [next.displayName, next.connection, now, before.id],
  );
  if (!row) throw notFound(`organization "${before.slug}" not found`);
  yield* recordAudit({
    actor,
    organizationId: before.id,
    action: "organization.update",
    targetType: "organization",
    targetId: before.id,
    before: { displayName: before.displayName, connection: before.connection },
    after: { displayName: row.displayName, connection: row.connection },
    requestId,
    at: now,
  });
  yield* enqueueJob({
    organizationId: before.id,
    kind: "organization",
    subjectId: before.id,
    lane: Lane.background,
    now,
  });
  return row;
}

/**
 * Deletes an organization once it has no live users and no unfinished jobs (refused with 409
 * otherwise: its tombstones are what the sync engine deprovisions from). Rows without a foreign key
 * to the organization go explicitly; directories, users, groups, tokens, holds and mapping versions
 * cascade. Its directories' rows, then the organization's, are locked first on PostgreSQL, so two
 * deletes do not interleave and no SCIM create in the organization commits between the checks and
 * the deletes.
 */
export function* deleteOrganization(org: OrganizationRow, change: Change): StoreOp<void> {
  const { actor, requestId, at: now } = change;
  const lock = yield* forUpdate();
  // Its directories first: a SCIM create in one holds it (a user insert through its foreign key, a
  // group create by updating its row; see directoryGone) until it commits, so the
  // count below sees that user (409) instead of the cascade removing it with its job left behind,
  // and a create that comes later finds the directory gone (404), not a foreign key error. The same
  // order as a create's (its directory, then, through the directory's foreign key, the organization).
  const dirIds = (yield* many<{ id: string }>(
    `SELECT id FROM directories WHERE organization_id = ? ORDER BY created_at, id ${lock}`,
    [org.id],
  )).map((d) => d.id);
  const locked = yield* one<{ id: string }>(`SELECT id FROM organizations WHERE id = ? ${lock}`, [org.id]);
  if (!locked) throw notFound(`organization "${org.slug}" not found`);
  const live =
    (yield* one<{ n: number }>(
      `SELECT count(*) AS n FROM users u JOIN directories d ON d.id = u.directory_id
       WHERE d.organization_id = ? AND u.deleted_at IS NULL`,
      [org.id],
    ))?.n ?? 0;
  if (live > 0)
    throw conflict(`organization "${org.slug}" still has ${live} user(s); deprovision them through the IdP first`);
  const open =
    (yield* one<{ n: number }>(
      `SELECT count(*) AS n FROM jobs WHERE organization_id = ? AND state IN ('pending', 'running')`,
      [org.id],
    ))?.n ?? 0;
  if (open > 0) throw conflict(`organization "${org.slug}" has ${open} unfinished job(s); wait until they are done`);
  yield* exec("DELETE FROM user_sync WHERE organization_id = ?", [org.id]);
  yield* exec(
    "DELETE FROM scim_request_log WHERE directory_id IN (SELECT id FROM directories WHERE organization_id = ?)",
    [org.id],
  );
  yield* exec("DELETE FROM jobs WHERE organization_id = ?", [org.id]);
  yield* exec("DELETE FROM organizations WHERE id = ?", [org.id]);
  yield* recordAudit({
    actor,
    organizationId: org.id,
    action: "organization.delete",
    targetType: "organization",
    targetId: org.id,
    before: { slug: org.slug, displayName: org.displayName, auth0OrgId: org.auth0OrgId, directories: dirIds },
    requestId,
    at: now,
  });
}

/**
 * Forgets everything the bridge applied in Auth0 (the sandbox's emulated tenant starts empty on
 * every run): every user's sync state and every organization's Auth0 id go, and every organization
 * is enqueued for its reconcile into the new tenant.
 */
export function* forgetAuth0Links(now = Date.now()): StoreOp<void> {
  yield* exec("DELETE FROM user_sync");
  const orgs = yield* many<{ id: string }>("SELECT id FROM organizations ORDER BY id");
  yield* exec("UPDATE organizations SET auth0_org_id = NULL WHERE auth0_org_id IS NOT NULL");
  for (const o of orgs)
    yield* enqueueJob({ organizationId: o.id, kind: "organization", subjectId: o.id, lane: Lane.provision, now });
}

/** The slug of the organization with this id (by id only), or undefined. */
export function* organizationSlug(id: string): StoreOp<string | undefined> {
  return (yield* one<{ slug: string }>("SELECT slug FROM organizations WHERE id = ?", [id]))?.slug;
}
