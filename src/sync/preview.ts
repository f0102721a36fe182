/**
 * Mapping preview (dry run): the desired state of every directory user of an organization under the
 * active mapping and under a candidate, and what would change. Reads the database only; never calls
 * Auth0. It is also the dry run for onboarding a customer (the active mapping is then the default).
 *
 * Queries are bounded: directories, groups, group members, holds and (for shared organizations)
 * other organizations' emails each in one query, and users in keyset pages of `pageSize`, so memory
 * holds one page of SCIM documents at a time and there is no query per user.
 */
import { and, asc, count, eq, gt, inArray, isNull, ne } from "drizzle-orm";
import { directories, groupMembers, groups, holds, userEmails, users } from "../../db/schema.js";
import type { DbOrTx } from "../directory/database.js";
import { getActiveMapping } from "../directory/mappings.js";
import { getOrganization } from "../directory/organizations.js";
import { notFound } from "../errors.js";
import {
  changeKinds,
  desired,
  diffDesired,
  type ChangeKind,
  type DesiredDiff,
  type DirectoryGroup,
  type Hold,
  type MappingDocument,
  type UserStatus,
} from "../mapping/index.js";

const pageSize = 1000;

export interface PreviewUser {
  userId: string;
  userName: string;
  directoryId: string;
  /** Status under the candidate (the same under both: a mapping does not change it). */
  status: UserStatus;
  changes: DesiredDiff;
  /** Problems the candidate mapping has with this user (e.g. no email). */
  problems: string[];
}

export interface PreviewResult {
  organizationId: string;
  /** Version compared against; null = the default mapping (nothing applied yet). */
  activeVersion: number | null;
  total: number;
  changed: Record<ChangeKind, number> & { users: number };
  /** Users the candidate cannot map cleanly (see PreviewUser.problems). */
  withProblems: number;
  /** Users with changes or problems, ordered by user id. */
  users: PreviewUser[];
}

export interface PreviewProgress {
  done: number;
  total: number;
}

const usesOtherOrganizations = (m: MappingDocument): boolean =>
  m.userModel === "shared" &&
  (m.policies.deactivation.block === "whenNoOtherOrganization" || m.policies.deletion.block === "whenNoOtherOrganization");

/** Lower-cased addresses a SCIM user answers to (emails[].value and userName), for "held elsewhere". */
function addressesOf(userName: string, resource: Record<string, unknown>): string[] {
  const out = [userName.toLowerCase()];
  const emails = resource.emails;
  if (Array.isArray(emails)) {
    for (const e of emails) {
      const v = typeof e === "object" && e !== null ? (e as Record<string, unknown>).value : undefined;
      if (typeof v === "string") out.push(v.toLowerCase());
    }
  }
  return out;
}

function parseResource(text: string): Record<string, unknown> {
  const parsed: unknown = JSON.parse(text);
  return typeof parsed === "object" && parsed !== null && !Array.isArray(parsed) ? (parsed as Record<string, unknown>) : {};
}

export function previewMapping(
  db: DbOrTx,
  idOrSlug: string,
  candidate: MappingDocument,
  onProgress?: (progress: PreviewProgress) => void,
): PreviewResult {
  const org = getOrganization(db, idOrSlug);
  const active = getActiveMapping(db, idOrSlug);
  if (!org || !active) throw notFound(`organization "${idOrSlug}" not found`);

  const dirIds = db.select({ id: directories.id }).from(directories).where(eq(directories.organizationId, org.id)).all().map((d) => d.id);
  const result: PreviewResult = {
    organizationId: org.id,
    activeVersion: active.version,
    total: 0,
    changed: { membership: 0, roles: 0, profile: 0, metadata: 0, blocked: 0, users: 0 },
    withProblems: 0,
    users: [],
  };
  if (dirIds.length === 0) return result;

  const groupById = new Map<string, DirectoryGroup>();
  for (const g of db
    .select({ id: groups.id, displayName: groups.displayName, externalId: groups.externalId })
    .from(groups)
    .where(and(inArray(groups.directoryId, dirIds), isNull(groups.deletedAt)))
    .all()) {
    groupById.set(g.id, g);
  }
  const groupsOf = new Map<string, DirectoryGroup[]>();
  for (const m of db
    .select({ groupId: groupMembers.groupId, memberId: groupMembers.memberId })
    .from(groupMembers)
    .where(and(inArray(groupMembers.directoryId, dirIds), eq(groupMembers.memberType, "User")))
    .all()) {
    const g = groupById.get(m.groupId);
    if (!g) continue; // a deleted group
    const list = groupsOf.get(m.memberId);
    if (list) list.push(g);
    else groupsOf.set(m.memberId, [g]);
  }
  const holdsOf = new Map<string, Hold[]>();
  for (const h of db
    .select({ id: holds.id, userId: holds.userId, reason: holds.reason })
    .from(holds)
    .where(and(eq(holds.organizationId, org.id), isNull(holds.releasedAt)))
    .all()) {
    const list = holdsOf.get(h.userId) ?? [];
    list.push({ id: h.id, reason: h.reason });
    holdsOf.set(h.userId, list);
  }
  let heldElsewhere: Set<string> | undefined;
  if (usesOtherOrganizations(candidate) || usesOtherOrganizations(active.document)) {
    heldElsewhere = new Set(
      db
        .selectDistinct({ email: userEmails.valueLower })
        .from(userEmails)
        .innerJoin(users, eq(users.id, userEmails.userId))
        .innerJoin(directories, eq(directories.id, users.directoryId))
        .where(and(ne(directories.organizationId, org.id), isNull(users.deletedAt), eq(users.active, true)))
        .all()
        .map((r) => r.email),
    );
  }

  const total = db.select({ n: count() }).from(users).where(inArray(users.directoryId, dirIds)).get()?.n ?? 0;
  result.total = total;
  let after = "";
  let done = 0;
  for (;;) {
    const page = db
      .select({ id: users.id, directoryId: users.directoryId, userName: users.userName, active: users.active, resource: users.resource, deletedAt: users.deletedAt })
      .from(users)
      .where(and(inArray(users.directoryId, dirIds), gt(users.id, after)))
      .orderBy(asc(users.id))
      .limit(pageSize)
      .all();
    if (page.length === 0) break;
    for (const row of page) {
      const resource = parseResource(row.resource);
      const user = { id: row.id, directoryId: row.directoryId, active: row.active, deleted: row.deletedAt !== null, resource };
      const userGroups = groupsOf.get(row.id) ?? [];
      const userHolds = holdsOf.get(row.id) ?? [];
      const context = heldElsewhere
        ? { memberOfOtherOrganizations: addressesOf(row.userName, resource).some((a) => heldElsewhere.has(a)) }
        : {};
      const before = desired(active.document, user, userGroups, userHolds, context);
      const next = desired(candidate, user, userGroups, userHolds, context);
      const changes = diffDesired(before, next);
      const kinds = changeKinds.filter((k) => changes[k] !== undefined);
      for (const k of kinds) result.changed[k]++;
      if (kinds.length > 0) result.changed.users++;
      if (next.problems.length > 0) result.withProblems++;
      if (kinds.length > 0 || next.problems.length > 0) {
        result.users.push({ userId: row.id, userName: row.userName, directoryId: row.directoryId, status: next.status, changes, problems: next.problems });
      }
    }
    done += page.length;
    after = page[page.length - 1]!.id;
    onProgress?.({ done, total });
  }
  return result;
}
