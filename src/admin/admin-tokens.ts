import type { Db } from "../directory/database.js";
import {
  issueAdminToken,
  listAdminTokens,
  revokeAdminToken,
  type AdminTokenRow,
  type IssuedAdminToken,
} from "../directory/admin-tokens.js";
import { getOrganization } from "../directory/organizations.js";
import type { Change } from "../directory/write-context.js";
import { runSync, writeSync } from "../directory/store-op.js";
import { invalidValue } from "../errors.js";

/**
 * Admin API tokens: the one set of rules the admin API and the CLI call. An org_admin token names its
 * organization (by id or slug); an operator token names none.
 */

export type AdminTokenState = "active" | "expired" | "revoked";

export const adminTokenState = (t: AdminTokenRow, now: number): AdminTokenState =>
  t.revokedAt !== null ? "revoked" : t.expiresAt !== null && t.expiresAt <= now ? "expired" : "active";

export function issueAdminTokenFor(
  db: Db,
  input: { scope: "operator" | "org_admin"; organization?: string; name: string; expiresInDays?: number },
  change: Change,
): IssuedAdminToken {
  return db.transaction(
    (tx) => {
      let organizationId: string | null = null;
      if (input.organization !== undefined) {
        const org = runSync(tx, getOrganization(input.organization));
        if (!org) throw invalidValue(`organization: "${input.organization}" does not exist`);
        organizationId = org.id;
      }
      return runSync(
        tx,
        issueAdminToken(
          { scope: input.scope, organizationId, name: input.name, expiresInDays: input.expiresInDays },
          change,
        ),
      );
    },
    { behavior: "immediate" },
  );
}

/** Every admin token, or those of one organization (by id or slug; none when it does not exist). */
export function adminTokensOf(db: Db, organization?: string): AdminTokenRow[] {
  if (organization === undefined) return runSync(db, listAdminTokens());
  const org = runSync(db, getOrganization(organization));
  return org ? runSync(db, listAdminTokens(org.id)) : [];
}

/** Revokes an admin token now (idempotent). */
export function revokeAdminTokenById(db: Db, id: string, change: Change): AdminTokenRow {
  return writeSync(db, revokeAdminToken(id, change));
}
