import type { DirectoryRow } from "../directory/directories.js";
import { scimBaseUrl } from "../directory/directories.js";
import type { OrganizationRow } from "../directory/organizations.js";
import { laneName } from "../directory/outbox.js";
import { isActiveScimToken, type ScimTokenRow } from "../directory/tokens.js";
import type { JobRow } from "../sync/worker.js";
import { iso } from "./routes.js";

/**
 * What the admin API shows of each row. Hashes and secrets never appear; times are ISO 8601 UTC.
 */
export const organizationView = (o: OrganizationRow) => ({
  id: o.id,
  slug: o.slug,
  displayName: o.displayName,
  userModel: o.userModel,
  connection: o.connection,
  auth0OrgId: o.auth0OrgId,
  activeMappingVersion: o.activeMappingVersion,
  createdAt: iso(o.createdAt),
  updatedAt: iso(o.updatedAt),
});

export const directoryView = (d: DirectoryRow, publicUrl: string) => ({
  id: d.id,
  organizationId: d.organizationId,
  name: d.name,
  scimBaseUrl: scimBaseUrl(publicUrl, d.id),
  userCount: d.userCount,
  groupCount: d.groupCount,
  createdAt: iso(d.createdAt),
});

export const scimTokenView = (t: ScimTokenRow, now: number) => ({
  id: t.id,
  directoryId: t.directoryId,
  hint: t.hint,
  active: isActiveScimToken(t, now),
  createdAt: iso(t.createdAt),
  expiresAt: iso(t.expiresAt),
  revokedAt: iso(t.revokedAt),
  lastUsedAt: iso(t.lastUsedAt),
});

export const jobView = (j: JobRow) => ({
  id: j.id,
  organizationId: j.organizationId,
  directoryId: j.directoryId,
  kind: j.kind,
  subjectId: j.subjectId,
  lane: laneName(j.lane),
  state: j.state,
  attempts: j.attempts,
  runAfter: iso(j.runAfter),
  lastError: j.lastError,
  firstEnqueuedAt: iso(j.firstEnqueuedAt),
  createdAt: iso(j.createdAt),
  updatedAt: iso(j.updatedAt),
});
