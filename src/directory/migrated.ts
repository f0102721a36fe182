import { and, eq, inArray, isNull, or } from "drizzle-orm";
import { migratedUsers, users } from "../../db/schema.js";
import type { DbOrTx } from "./database.js";
import { getUser, updateUser, type UserResource, type UserRow } from "./users.js";
import type { WriteContext } from "./write-context.js";

/**
 * Users a migration put into a directory before any IdP pushed them. The first SCIM create of the
 * same person (externalId when both sides have one, else email) takes the migrated user over, with
 * its Auth0 link and history, instead of creating a second user and a second Auth0 account.
 */
export function recordMigratedUser(tx: DbOrTx, row: UserRow, importId: string, emailLower: string, externalId: string | null): void {
  tx.insert(migratedUsers).values({ userId: row.id, directoryId: row.directoryId, importId, emailLower, externalId }).run();
}

function emailsOf(resource: UserResource): string[] {
  const out = new Set<string>();
  if (typeof resource.userName === "string" && resource.userName.includes("@")) out.add(resource.userName.toLowerCase());
  const emails = Array.isArray(resource.emails) ? (resource.emails as Record<string, unknown>[]) : [];
  for (const e of emails) if (typeof e?.value === "string") out.add(e.value.toLowerCase());
  return [...out];
}

/** The SCIM create of a migrated person: replaces the migrated user's document and returns it; undefined when none matches. */
export function claimMigratedUser(tx: DbOrTx, ctx: WriteContext, resource: UserResource): UserRow | undefined {
  const externalId = typeof resource.externalId === "string" ? resource.externalId : null;
  const emails = emailsOf(resource);
  if (!externalId && emails.length === 0) return undefined;
  const candidates = tx
    .select()
    .from(migratedUsers)
    .where(
      and(
        eq(migratedUsers.directoryId, ctx.directoryId),
        isNull(migratedUsers.claimedAt),
        or(externalId ? eq(migratedUsers.externalId, externalId) : undefined, emails.length > 0 ? inArray(migratedUsers.emailLower, emails) : undefined),
      ),
    )
    .all();
  // An externalId match wins; an email match is refused when both sides carry different externalIds.
  const match =
    candidates.find((c) => externalId !== null && c.externalId === externalId) ??
    candidates.find((c) => emails.includes(c.emailLower) && (c.externalId === null || externalId === null));
  if (!match) return undefined;
  const existing = getUser(tx, ctx.directoryId, match.userId);
  if (!existing) return undefined;
  tx.update(migratedUsers).set({ claimedAt: ctx.now ?? Date.now() }).where(eq(migratedUsers.userId, match.userId)).run();
  return updateUser(tx, ctx, existing, resource, "user.replace");
}

/** Whether a directory user came from a migration and no IdP has claimed it yet. */
export function isUnclaimedMigratedUser(tx: DbOrTx, userId: string): boolean {
  return tx.select({ id: migratedUsers.userId }).from(migratedUsers).innerJoin(users, eq(users.id, migratedUsers.userId)).where(and(eq(migratedUsers.userId, userId), isNull(migratedUsers.claimedAt))).get() !== undefined;
}
