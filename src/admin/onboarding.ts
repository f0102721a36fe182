import { createDirectory, getDirectory, type DirectoryRow } from "../directory/directories.js";
import {
  createOrganization,
  getOrganization,
  type NewOrganization,
  type OrganizationRow,
} from "../directory/organizations.js";
import type { SqlStore } from "../directory/sql.js";
import type { StoreOp } from "../directory/store-op.js";
import { issueScimToken, revokeScimToken, type IssuedToken, type ScimTokenRow } from "../directory/tokens.js";
import type { Change } from "../directory/write-context.js";
import { invalidValue, notFound } from "../errors.js";

/**
 * Onboarding, directories and SCIM tokens: the one set of rules the admin API (and the console through
 * it) and the CLI call. Each call is one write unit (one transaction), so a crash never leaves an
 * organization without its directory or a directory without its token. The ops are exported for
 * callers composing them into a unit of their own (tests seed with them).
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

export type NewOnboarding = NewOrganization & { directoryName?: string; tokenExpiresInDays?: number };

function* directoryWithToken(
  organization: OrganizationRow,
  input: { name?: string; tokenExpiresInDays?: number },
  change: Change,
): StoreOp<OnboardedDirectory> {
  const expiresAt = scimTokenExpiresAt(input.tokenExpiresInDays, change.at);
  const directory = yield* createDirectory({ organizationId: organization.id, name: input.name }, change);
  const token = yield* issueScimToken(
    { directoryId: directory.id, organizationId: organization.id, expiresAt },
    change,
  );
  return { organization, directory, token };
}

/** The op of onboardOrganization. */
export function* onboardOrganizationOp(input: NewOnboarding, change: Change): StoreOp<OnboardedDirectory> {
  const organization = yield* createOrganization(input, change);
  return yield* directoryWithToken(
    organization,
    { name: input.directoryName, tokenExpiresInDays: input.tokenExpiresInDays },
    change,
  );
}

/** An organization with its first directory and SCIM token; the organization job creates its Auth0 Organization. */
export function onboardOrganization(
  store: SqlStore,
  input: NewOnboarding,
  change: Change,
): Promise<OnboardedDirectory> {
  return store.write(onboardOrganizationOp(input, change));
}

/** The op of addDirectory. */
export function* addDirectoryOp(
  organizationIdOrSlug: string,
  input: { name?: string; tokenExpiresInDays?: number },
  change: Change,
): StoreOp<OnboardedDirectory> {
  const organization = yield* getOrganization(organizationIdOrSlug);
  if (!organization) throw notFound(`organization "${organizationIdOrSlug}" not found`);
  return yield* directoryWithToken(organization, input, change);
}

/** Another directory (another IdP) of an organization (by id or slug), with its first SCIM token. */
export function addDirectory(
  store: SqlStore,
  organizationIdOrSlug: string,
  input: { name?: string; tokenExpiresInDays?: number },
  change: Change,
): Promise<OnboardedDirectory> {
  return store.write(addDirectoryOp(organizationIdOrSlug, input, change));
}

/** A directory of this organization, or 404: another tenant's directory id does not exist here. */
export function* directoryOfOrganization(organizationId: string, directoryId: string): StoreOp<DirectoryRow> {
  const row = yield* getDirectory(directoryId);
  if (!row || row.organizationId !== organizationId) throw notFound(`directory "${directoryId}" not found`);
  return row;
}

/** A directory by id alone (operator tools), or 404. */
function* directoryById(directoryId: string): StoreOp<DirectoryRow> {
  const row = yield* getDirectory(directoryId);
  if (!row) throw notFound(`directory "${directoryId}" not found`);
  return row;
}

/**
 * A further SCIM token; refused while two are active, so that issuing never cuts off a working IdP.
 * The directory is looked up in the same unit (404 for another organization's).
 */
export function issueDirectoryToken(
  store: SqlStore,
  organizationId: string,
  directoryId: string,
  input: { expiresInDays?: number },
  change: Change,
): Promise<IssuedToken> {
  const expiresAt = scimTokenExpiresAt(input.expiresInDays, change.at);
  return store.write(
    (function* () {
      const directory = yield* directoryOfOrganization(organizationId, directoryId);
      return yield* issueScimToken(
        { directoryId: directory.id, organizationId: directory.organizationId, expiresAt },
        change,
        "refuse",
      );
    })(),
  );
}

/** The op of rotateDirectoryToken; `organizationId` undefined: any organization's directory (operator tools). */
export function* rotateDirectoryTokenOp(
  directoryId: string,
  input: { expiresInDays?: number },
  change: Change,
  organizationId?: string,
): StoreOp<{ directory: DirectoryRow; token: IssuedToken }> {
  const expiresAt = scimTokenExpiresAt(input.expiresInDays, change.at);
  const dir =
    organizationId === undefined
      ? yield* directoryById(directoryId)
      : yield* directoryOfOrganization(organizationId, directoryId);
  return {
    directory: dir,
    token: yield* issueScimToken({ directoryId: dir.id, organizationId: dir.organizationId, expiresAt }, change),
  };
}

/**
 * Rotation: a new SCIM token; the previous one stays valid, and when two were active the older is
 * revoked (`revoked` on the result names it, from the same transaction).
 */
export function rotateDirectoryToken(
  store: SqlStore,
  directoryId: string,
  input: { expiresInDays?: number },
  change: Change,
  organizationId?: string,
): Promise<{ directory: DirectoryRow; token: IssuedToken }> {
  return store.write(rotateDirectoryTokenOp(directoryId, input, change, organizationId));
}

/** The op of revokeDirectoryToken. */
export function* revokeDirectoryTokenOp(
  organizationId: string,
  directoryId: string,
  tokenId: string,
  change: Change,
): StoreOp<ScimTokenRow> {
  const directory = yield* directoryOfOrganization(organizationId, directoryId);
  return yield* revokeScimToken(
    { organizationId: directory.organizationId, directoryId: directory.id, tokenId },
    change,
  );
}

/** Revokes one of the directory's SCIM tokens now; the IdP using it gets 401 from its next request. */
export function revokeDirectoryToken(
  store: SqlStore,
  organizationId: string,
  directoryId: string,
  tokenId: string,
  change: Change,
): Promise<ScimTokenRow> {
  return store.write(revokeDirectoryTokenOp(organizationId, directoryId, tokenId, change));
}
