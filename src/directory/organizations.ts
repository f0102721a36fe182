import { asc, eq, or } from "drizzle-orm";
import { organizations } from "../../db/schema.js";
import { invalidValue, uniqueness } from "../errors.js";
import { Lane, enqueueJob } from "./outbox.js";
import { recordAudit } from "./audit.js";
import type { DbOrTx } from "./database.js";
import { newOrganizationId } from "./ids.js";
import type { Change } from "./write-context.js";
import { runSync } from "./store-op.js";

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

/**
 * Creates an organization and enqueues the "organization" job through which the sync engine creates
 * or adopts its Auth0 Organization (named by the slug). One transaction, with its audit entry.
 */
export function createOrganization(tx: DbOrTx, input: NewOrganization, change: Change): OrganizationRow {
  const { actor, requestId, at: now } = change;
  const valid = validateOrganization(input);
  if (getOrganization(tx, valid.slug)) throw uniqueness(`an organization with slug "${valid.slug}" already exists`);
  const row = tx
    .insert(organizations)
    .values({ id: newOrganizationId(), ...valid, createdAt: now, updatedAt: now })
    .returning()
    .get();
  runSync(
    tx,
    recordAudit({
      actor,
      organizationId: row.id,
      action: "organization.create",
      targetType: "organization",
      targetId: row.id,
      after: { slug: row.slug, displayName: row.displayName, userModel: row.userModel, connection: row.connection },
      requestId,
      at: now,
    }),
  );
  runSync(
    tx,
    enqueueJob({ organizationId: row.id, kind: "organization", subjectId: row.id, lane: Lane.provision, now }),
  );
  return row;
}

/** By our id or by slug. */
export function getOrganization(db: DbOrTx, idOrSlug: string): OrganizationRow | undefined {
  return db
    .select()
    .from(organizations)
    .where(or(eq(organizations.id, idOrSlug), eq(organizations.slug, idOrSlug)))
    .get();
}

export function listOrganizations(db: DbOrTx): OrganizationRow[] {
  return db.select().from(organizations).orderBy(asc(organizations.slug)).all();
}
