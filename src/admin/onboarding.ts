import type { Db, DbOrTx } from "../directory/database.js";
import { createDirectory, getDirectory, type DirectoryRow } from "../directory/directories.js";
import {
  createOrganization,
  getOrganization,
  type NewOrganization,
  type OrganizationRow,
} from "../directory/organizations.js";
import { issueScimToken, revokeScimToken, type IssuedToken, type ScimTokenRow } from "../directory/tokens.js";
import type { Change } from "../directory/write-context.js";
import { invalidValue, notFound } from "../errors.js";
import { runSync, writeSync } from "../directory/store-op.js";

/**
 * Onboarding, directories and SCIM tokens: the one set of rules the admin API (and the console through
 * it) and the CLI call. Each call is one IMMEDIATE transaction, so a crash never leaves an organization
 * without its directory or a directory without its token.
 */

const dayMs = 86_400_000;
export const maxScimTokenDays = 3650;

/**
 * A SCIM token's expiry from an optional lifetime in days. None by default: an IdP whose token expires
 * unseen stops deprovisioning.
 */
export function scimTokenExpiresAt(days: number | undefined, at: number): number | null {
  if (days === undefined) return null;
  if (!Number.isInteger(days) || days < 1 || days > maxScimTokenDays) {
    throw invalidValue(`a SCIM token lifetime is a whole number of days from 1 to ${maxScimTokenDays}`);
  }
  return at + days * dayMs;
}

export interface OnboardedDirectory {
  organization: OrganizationRow;
  directory: DirectoryRow;
  token: IssuedToken;
}

const immediate = <T>(db: Db, run: (tx: DbOrTx) => T): T => db.transaction(run, { behavior: "immediate" });

function directoryWithToken(
  tx: DbOrTx,
  organization: OrganizationRow,
  input: { name?: string; tokenExpiresInDays?: number },
  change: Change,
): OnboardedDirectory {
  const directory = runSync(tx, createDirectory({ organizationId: organization.id, name: input.name }, change));
  const expiresAt = scimTokenExpiresAt(input.tokenExpiresInDays, change.at);
  const token = runSync(
    tx,
    issueScimToken({ directoryId: directory.id, organizationId: organization.id, expiresAt }, change),
  );
  return { organization, directory, token };
}

/** An organization with its first directory and SCIM token; the organization job creates its Auth0 Organization. */
export function onboardOrganization(
  db: Db,
  input: NewOrganization & { directoryName?: string; tokenExpiresInDays?: number },
  change: Change,
): OnboardedDirectory {
  return immediate(db, (tx) => {
    const organization = runSync(tx, createOrganization(input, change));
    return directoryWithToken(
      tx,
      organization,
      { name: input.directoryName, tokenExpiresInDays: input.tokenExpiresInDays },
      change,
    );
  });
}

/** Another directory (another IdP) of an organization (by id or slug), with its first SCIM token. */
export function addDirectory(
  db: Db,
  organizationIdOrSlug: string,
  input: { name?: string; tokenExpiresInDays?: number },
  change: Change,
): OnboardedDirectory {
  return immediate(db, (tx) => {
    const organization = runSync(tx, getOrganization(organizationIdOrSlug));
    if (!organization) throw notFound(`organization "${organizationIdOrSlug}" not found`);
    return directoryWithToken(tx, organization, input, change);
  });
}

/** A directory of this organization, or 404: another tenant's directory id does not exist here. */
export function directoryOfOrganization(db: DbOrTx, organizationId: string, directoryId: string): DirectoryRow {
  const row = runSync(db, getDirectory(directoryId));
  if (!row || row.organizationId !== organizationId) throw notFound(`directory "${directoryId}" not found`);
  return row;
}

/** A directory by id alone (operator tools), or 404. */
function directoryById(db: DbOrTx, directoryId: string): DirectoryRow {
  const row = runSync(db, getDirectory(directoryId));
  if (!row) throw notFound(`directory "${directoryId}" not found`);
  return row;
}

/** A further SCIM token; refused while two are active, so that issuing never cuts off a working IdP. */
export function issueDirectoryToken(
  db: Db,
  directory: DirectoryRow,
  input: { expiresInDays?: number },
  change: Change,
): IssuedToken {
  const expiresAt = scimTokenExpiresAt(input.expiresInDays, change.at);
  return writeSync(
    db,
    issueScimToken(
      { directoryId: directory.id, organizationId: directory.organizationId, expiresAt },
      change,
      "refuse",
    ),
  );
}

/**
 * Rotation: a new SCIM token; the previous one stays valid, and when two were active the older is
 * revoked (`revoked` on the result names it, from the same transaction).
 */
export function rotateDirectoryToken(
  db: Db,
  directory: DirectoryRow | string,
  input: { expiresInDays?: number },
  change: Change,
): { directory: DirectoryRow; token: IssuedToken } {
  return immediate(db, (tx) => {
    const dir = typeof directory === "string" ? directoryById(tx, directory) : directory;
    const expiresAt = scimTokenExpiresAt(input.expiresInDays, change.at);
    return {
      directory: dir,
      token: runSync(
        tx,
        issueScimToken({ directoryId: dir.id, organizationId: dir.organizationId, expiresAt }, change),
      ),
    };
  });
}

/** Revokes one of the directory's SCIM tokens now; the IdP using it gets 401 from its next request. */
export function revokeDirectoryToken(db: Db, directory: DirectoryRow, tokenId: string, change: Change): ScimTokenRow {
  return writeSync(
    db,
    revokeScimToken({ organizationId: directory.organizationId, directoryId: directory.id, tokenId }, change),
  );
}
