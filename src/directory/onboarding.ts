import { notFound } from "../errors.js";
import type { Actor } from "./audit.js";
import type { Db, DbOrTx } from "./database.js";
import { createDirectory, getDirectory, type DirectoryRow } from "./directories.js";
import { createOrganization, getOrganization, type NewOrganization, type OrganizationRow } from "./organizations.js";
import { issueScimToken, type IssuedToken } from "./tokens.js";

/**
 * Operator actions that the CLI (and later the admin API) share: each is one IMMEDIATE transaction,
 * so a crash never leaves an organization without its directory or a directory without its token.
 */
export interface OnboardedDirectory {
  organization: OrganizationRow;
  directory: DirectoryRow;
  token: IssuedToken;
}

/** A directory and its first token for an organization, inside the caller's transaction. */
function directoryWithToken(
  tx: DbOrTx,
  organization: OrganizationRow,
  input: { name?: string; tokenExpiresAt?: number | null },
  actor: Actor,
  now: number,
): OnboardedDirectory {
  const directory = createDirectory(tx, { organizationId: organization.id, name: input.name }, actor, now);
  const token = issueScimToken(tx, { directoryId: directory.id, organizationId: organization.id, expiresAt: input.tokenExpiresAt }, actor, now);
  return { organization, directory, token };
}

export function onboardOrganization(
  db: Db,
  input: NewOrganization & { directoryName?: string; tokenExpiresAt?: number | null },
  actor: Actor,
  now = Date.now(),
): OnboardedDirectory {
  return db.transaction(
    (tx) => {
      const organization = createOrganization(tx, input, actor, now);
      return directoryWithToken(tx, organization, { name: input.directoryName, tokenExpiresAt: input.tokenExpiresAt }, actor, now);
    },
    { behavior: "immediate" },
  );
}

export function addDirectory(
  db: Db,
  organizationIdOrSlug: string,
  input: { name?: string; tokenExpiresAt?: number | null },
  actor: Actor,
  now = Date.now(),
): OnboardedDirectory {
  return db.transaction(
    (tx) => {
      const organization = getOrganization(tx, organizationIdOrSlug);
      if (!organization) throw notFound(`organization "${organizationIdOrSlug}" not found`);
      return directoryWithToken(tx, organization, input, actor, now);
    },
    { behavior: "immediate" },
  );
}

/** Issues a new token for a directory; the older of two active tokens is revoked. */
export function rotateDirectoryToken(
  db: Db,
  directoryId: string,
  input: { expiresAt?: number | null },
  actor: Actor,
  now = Date.now(),
): { directory: DirectoryRow; token: IssuedToken } {
  return db.transaction(
    (tx) => {
      const directory = getDirectory(tx, directoryId);
      if (!directory) throw notFound(`directory "${directoryId}" not found`);
      const token = issueScimToken(
        tx,
        { directoryId, organizationId: directory.organizationId, expiresAt: input.expiresAt },
        actor,
        now,
      );
      return { directory, token };
    },
    { behavior: "immediate" },
  );
}
