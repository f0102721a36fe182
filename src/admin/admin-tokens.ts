import {
  issueAdminToken,
  listAdminTokens,
  revokeAdminToken,
  type AdminTokenRow,
  type IssuedAdminToken,
} from "../directory/admin-tokens.js";
import { getOrganization } from "../directory/organizations.js";
import type { SqlStore } from "../directory/sql.js";
import type { StoreOp } from "../directory/store-op.js";
import type { Change } from "../directory/write-context.js";
import { invalidValue } from "../errors.js";

/**
 * Admin API tokens: the one set of rules the admin API and the CLI call. An org_admin token names its
 * organization (by id or slug); an operator token names none.
 */

export type AdminTokenState = "active" | "expired" | "revoked";

export const adminTokenState = (t: AdminTokenRow, now: number): AdminTokenState =>
  t.revokedAt !== null ? "revoked" : t.expiresAt !== null && t.expiresAt <= now ? "expired" : "active";

export interface NewAdminTokenRequest {
  scope: "operator" | "org_admin";
  organization?: string;
  name: string;
  expiresInDays?: number;
}

/** The organization is resolved in the token's own write unit, so it cannot vanish in between. */
function* issueAdminTokenOp(input: NewAdminTokenRequest, change: Change): StoreOp<IssuedAdminToken> {
  let organizationId: string | null = null;
  if (input.organization !== undefined) {
    const org = yield* getOrganization(input.organization);
    if (!org) throw invalidValue(`organization: "${input.organization}" does not exist`);
    organizationId = org.id;
  }
  return yield* issueAdminToken(
    { scope: input.scope, organizationId, name: input.name, expiresInDays: input.expiresInDays },
    change,
  );
}

export function issueAdminTokenFor(
  store: SqlStore,
  input: NewAdminTokenRequest,
  change: Change,
): Promise<IssuedAdminToken> {
  return store.write(issueAdminTokenOp(input, change));
}

function* adminTokensOp(organization?: string): StoreOp<AdminTokenRow[]> {
  if (organization === undefined) return yield* listAdminTokens();
  const org = yield* getOrganization(organization);
  return org ? yield* listAdminTokens(org.id) : [];
}

/** Every admin token, or those of one organization (by id or slug; none when it does not exist). */
export function adminTokensOf(store: SqlStore, organization?: string): Promise<AdminTokenRow[]> {
  return store.read(adminTokensOp(organization));
}

/** Revokes an admin token now (idempotent). */
export function revokeAdminTokenById(store: SqlStore, id: string, change: Change): Promise<AdminTokenRow> {
  return store.write(revokeAdminToken(id, change));
}
