/**
 * The one loader of desired() inputs. The worker, the drift scan, the post-login decision and the
 * mapping preview all read a user's SCIM document, groups, holds, applied state and "does another
 * organization hold this Auth0 user" here, so that preview predicts exactly what the worker does.
 *
 * Loading is batched: a page of users costs a fixed number of queries (users, applied state,
 * groups, holds, other organizations), never one per user.
 */
import type { organizations, users, userSync } from "../../db/schema.js";
import type { SqlStore } from "../directory/sql.js";
import { connectionSettingOf, connectionTypeFrom } from "../directory/settings.js";
import { dialect, jsonTextList, later, many, one, together, type StoreOp } from "../directory/store-op.js";
import type { ConnectionType } from "../mapping/defaults.js";
import {
  applyOperation,
  desired,
  initialApplied,
  type AppliedState,
  type ConnectionWritability,
  type DesiredUser,
  type DirectoryGroup,
  type DirectoryUser,
  type Hold,
  type MappingDocument,
} from "../mapping/index.js";

export type OrganizationRow = typeof organizations.$inferSelect;
export type UserRow = typeof users.$inferSelect;
type UserSyncRow = typeof userSync.$inferSelect;

/** Everything desired() needs for one user, plus what was applied. */
export interface UserInputs {
  row: UserRow;
  organization: OrganizationRow;
  user: DirectoryUser;
  groups: DirectoryGroup[];
  holds: Hold[];
  applied: AppliedState;
  /** When the applied state was last recorded (null: never). */
  appliedAt: number | null;
  lastError: string | null;
  /** Whether another organization holds the Auth0 user `applied.auth0UserId` (see memberOfOtherOrganizations). */
  memberOfOtherOrganizations: boolean;
  /**
   * The type of the organization's connection, for its default mapping, when it was read with the
   * user (loadUserInputs); absent, mappingOfOrganization reads it.
   */
  connectionType?: ConnectionType;
}

/** Users per page when a whole organization is loaded (preview, drift): memory holds one page. */
export const inputsPageSize = 1000;

/** The SCIM document as the server returns it (id and externalId included), for mapping paths. */
export function directoryUserOf(row: UserRow): DirectoryUser {
  const parsed: unknown = JSON.parse(row.resource);
  const stored =
    typeof parsed === "object" && parsed !== null && !Array.isArray(parsed) ? (parsed as Record<string, unknown>) : {};
  const resource = { ...stored, id: row.id };
  return { id: row.id, directoryId: row.directoryId, active: row.active, deleted: row.deletedAt !== null, resource };
}

/**
 * The Auth0 users among `auth0UserIds` that another organization still holds (shared user model):
 * linked to a live, active, un-held directory user of an organization other than `organizationId`.
 * This is the one definition of "belongs to another organization": by the Auth0 link the bridge
 * recorded, never by email (two organizations' users with one email may be two Auth0 users).
 */
export function* heldByOtherOrganizations(
  auth0UserIds: readonly string[],
  organizationId: string,
): StoreOp<Set<string>> {
  const ids = [...new Set(auth0UserIds)];
  if (ids.length === 0) return new Set();
  const rows = yield* many<{ id: string | null }>(
    `SELECT DISTINCT s.auth0_user_id AS id FROM user_sync s JOIN users u ON u.id = s.user_id
     WHERE s.auth0_user_id IN (${yield* jsonTextList()}) AND s.organization_id <> ?
       AND u.deleted_at IS NULL AND u.active = TRUE
       AND NOT EXISTS (SELECT 1 FROM holds h WHERE h.user_id = u.id AND h.released_at IS NULL)`,
    [JSON.stringify(ids), organizationId],
  );
  return new Set(rows.map((r) => r.id).filter((id): id is string => id !== null));
}

/** heldByOtherOrganizations for one Auth0 user (false when it is not linked yet). */
export function* memberOfOtherOrganizations(auth0UserId: string | null, organizationId: string): StoreOp<boolean> {
  if (!auth0UserId) return false;
  return (yield* heldByOtherOrganizations([auth0UserId], organizationId)).has(auth0UserId);
}

/** Columns of users as UserRow's fields (`active` arrives as 1/0 on both dialects: see userRowOf). */
const userColumns = `u.id, u.directory_id AS "directoryId", u.user_name AS "userName",
  u.user_name_lower AS "userNameLower", u.external_id AS "externalId", u.display_name AS "displayName",
  u.active, u.resource, u.version, u.created_at AS "createdAt", u.modified_at AS "modifiedAt",
  u.deleted_at AS "deletedAt"`;

type StoredUserRow = Omit<UserRow, "active"> & { active: number };
const userRowOf = ({ active, ...row }: StoredUserRow): UserRow => ({ ...row, active: active === 1 });

/** Columns of organizations (of table alias `table`, when given) as OrganizationRow's fields, each prefixed by `prefix`. */
const organizationColumnsAs = (table = "", prefix = ""): string =>
  (
    [
      ["id", "id"],
      ["slug", "slug"],
      ["display_name", "displayName"],
      ["user_model", "userModel"],
      ["connection", "connection"],
      ["auth0_org_id", "auth0OrgId"],
      ["active_mapping_version", "activeMappingVersion"],
      ["created_at", "createdAt"],
      ["updated_at", "updatedAt"],
    ] as const
  )
    .map(([column, field]) => `${table ? `${table}.` : ""}${column} AS "${prefix}${field}"`)
    .join(", ");
const organizationColumns = organizationColumnsAs();

/** An organization's row by id, as the sync engine reads it before reconciling. */
export function* organizationRow(organizationId: string): StoreOp<OrganizationRow | undefined> {
  return yield* one<OrganizationRow>(`SELECT ${organizationColumns} FROM organizations WHERE id = ?`, [organizationId]);
}

type GroupOfMember = { memberId: string; id: string; displayName: string; externalId: string | null };
type HoldRow = { id: string; userId: string; reason: string };

/**
 * The three reads of inputs that need only the users' ids (`ids`, a JSON array of them): their sync
 * state, groups and holds. The ids go as one JSON parameter: one SQL text whatever the number of
 * users, so the worker's and the login hook's single-user loads cost no query building.
 */
function* idReads(ids: string) {
  const list = yield* jsonTextList();
  return [
    many<UserSyncRow>(
      `SELECT user_id AS "userId", directory_id AS "directoryId", organization_id AS "organizationId",
              auth0_user_id AS "auth0UserId", applied, applied_at AS "appliedAt", last_error AS "lastError",
              last_error_at AS "lastErrorAt"
       FROM user_sync WHERE user_id IN (${list})`,
      [ids],
    ),
    many<GroupOfMember>(
      `SELECT m.member_id AS "memberId", g.id, g.display_name AS "displayName", g.external_id AS "externalId"
       FROM group_members m JOIN groups g ON g.id = m.group_id
       WHERE m.member_id IN (${list}) AND m.member_type = 'User' AND g.deleted_at IS NULL
       ORDER BY g.id`,
      [ids],
    ),
    many<HoldRow>(
      `SELECT id, user_id AS "userId", reason FROM holds
       WHERE user_id IN (${list}) AND released_at IS NULL`,
      [ids],
    ),
  ] as const;
}

/** The inputs of the given user rows (all of `organization`), in the rows' order. */
function* inputsOf(organization: OrganizationRow, rows: UserRow[]): StoreOp<UserInputs[]> {
  if (rows.length === 0) return [];
  // Independent reads: one round trip on PostgreSQL (together).
  const reads = yield* idReads(JSON.stringify(rows.map((r) => r.id)));
  const [syncRows, memberships, holdRows] = yield* together(...reads);
  return yield* assembleInputs(organization, rows, syncRows, memberships, holdRows);
}

/** Inputs from the rows the reads of idReads returned for `rows`. */
function* assembleInputs(
  organization: OrganizationRow,
  rows: UserRow[],
  syncRows: UserSyncRow[],
  memberships: GroupOfMember[],
  holdRows: HoldRow[],
): StoreOp<UserInputs[]> {
  const syncOf = new Map(syncRows.map((s) => [s.userId, s]));
  const groupsOf = new Map<string, DirectoryGroup[]>();
  for (const m of memberships) {
    const groups = groupsOf.get(m.memberId) ?? [];
    groups.push({ id: m.id, displayName: m.displayName, externalId: m.externalId });
    groupsOf.set(m.memberId, groups);
  }
  const holdsOf = new Map<string, Hold[]>();
  for (const h of holdRows) {
    const holds = holdsOf.get(h.userId) ?? [];
    holds.push({ id: h.id, reason: h.reason });
    holdsOf.set(h.userId, holds);
  }
  const appliedOf = new Map<string, AppliedState>();
  for (const [id, s] of syncOf) if (s.applied) appliedOf.set(id, JSON.parse(s.applied) as AppliedState);
  const linked = [...appliedOf.values()].map((a) => a.auth0UserId).filter((id): id is string => id !== null);
  const elsewhere = yield* heldByOtherOrganizations(linked, organization.id);
  return rows.map((row) => {
    const sync = syncOf.get(row.id);
    const applied = appliedOf.get(row.id) ?? initialApplied();
    return {
      row,
      organization,
      user: directoryUserOf(row),
      groups: groupsOf.get(row.id) ?? [],
      holds: holdsOf.get(row.id) ?? [],
      applied,
      appliedAt: sync?.appliedAt ?? null,
      lastError: sync?.lastError ?? null,
      memberOfOtherOrganizations: applied.auth0UserId !== null && elsewhere.has(applied.auth0UserId),
    };
  });
}

// The user, its organization and its connection's recorded type in one statement: the worker and the
// login hook load one user each time.
const userWithOrganization = `SELECT ${userColumns}, ${organizationColumnsAs("o", "org.")},
    ${connectionSettingOf("o.connection")} AS "connectionSetting"
  FROM users u JOIN directories d ON d.id = u.directory_id JOIN organizations o ON o.id = d.organization_id
  WHERE u.id = ?`;

/** One user's inputs (the worker, the login hook), or undefined if there is no such user. */
export function* loadUserInputs(userId: string): StoreOp<UserInputs | undefined> {
  // The user's id is all every read needs: all four go at once (one round trip on PostgreSQL, with
  // the unit's BEGIN), and those of a user that does not exist find nothing.
  const reads = yield* idReads(JSON.stringify([userId]));
  const [row, syncRows, memberships, holdRows] = yield* together(
    one<Record<string, unknown>>(userWithOrganization, [userId]),
    ...reads,
  );
  if (!row) return undefined;
  const { connectionSetting, ...columns } = row;
  const user: Record<string, unknown> = {};
  const organization: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(columns)) {
    if (key.startsWith("org.")) organization[key.slice(4)] = value;
    else user[key] = value;
  }
  const org = organization as OrganizationRow;
  const [inputs] = yield* assembleInputs(org, [userRowOf(user as StoredUserRow)], syncRows, memberships, holdRows);
  return { ...inputs!, connectionType: connectionTypeFrom(org.connection, connectionSetting as string | null).type };
}

/** Number of directory users (tombstones included) of an organization. */
export function* countOrganizationUsers(organizationId: string): StoreOp<number> {
  const row = yield* one<{ n: number }>(
    `SELECT count(*) AS n FROM users u JOIN directories d ON d.id = u.directory_id WHERE d.organization_id = ?`,
    [organizationId],
  );
  return Number(row?.n ?? 0);
}

/** One page of organizationInputPages: the inputs of up to `pageSize` users with ids after `after`. */
export function* organizationInputPage(
  organization: OrganizationRow,
  after: string,
  pageSize = inputsPageSize,
): StoreOp<UserInputs[]> {
  const page = yield* many<StoredUserRow>(
    `SELECT ${userColumns} FROM users u JOIN directories d ON d.id = u.directory_id
     WHERE d.organization_id = ? AND u.id > ? ORDER BY u.id LIMIT ?`,
    [organization.id, after, pageSize],
  );
  return yield* inputsOf(organization, page.map(userRowOf));
}

/**
 * Every directory user's inputs (tombstones included) of an organization, in pages of `pageSize`
 * ordered by user id: a fixed number of queries per page (preview, drift), each page read in one
 * read unit of its own (no unit stays open between pages).
 */
export async function* organizationInputPages(
  store: SqlStore,
  organization: OrganizationRow,
  pageSize = inputsPageSize,
): AsyncGenerator<UserInputs[]> {
  let after = "";
  for (;;) {
    const page = await store.read(organizationInputPage(organization, after, pageSize));
    if (page.length === 0) return;
    yield page;
    if (page.length < pageSize) return;
    after = page[page.length - 1]!.row.id;
  }
}

export interface DesiredOptions {
  /** The connection's write rules as read from Auth0; absent: the connection type's defaults. */
  connection?: ConnectionWritability;
  /** Overrides inputs.memberOfOtherOrganizations (the Auth0 link changed since loading). */
  memberOfOtherOrganizations?: boolean;
}

/** desired() for loaded inputs: the one way every caller builds it. */
export function desiredFor(mapping: MappingDocument, inputs: UserInputs, options: DesiredOptions = {}): DesiredUser {
  return desired(mapping, inputs.user, inputs.groups, inputs.holds, {
    memberOfOtherOrganizations: options.memberOfOtherOrganizations ?? inputs.memberOfOtherOrganizations,
    ...(options.connection ? { connection: options.connection } : {}),
  });
}

/** The Auth0 user a directory user is linked to, if any. */
export function* linkedAuth0UserId(userId: string): StoreOp<string | null> {
  const row = yield* one<{ auth0UserId: string | null }>(
    `SELECT auth0_user_id AS "auth0UserId" FROM user_sync WHERE user_id = ?`,
    [userId],
  );
  return row?.auth0UserId ?? null;
}

/** Records what was applied (after every successful operation) and the last error, if any. */
export function* saveApplied(
  inputs: Pick<UserInputs, "row" | "organization">,
  applied: AppliedState,
  now = Date.now(),
): StoreOp<void> {
  // After every successful Auth0 call: one fixed statement, held (later) so that on PostgreSQL the
  // unit's BEGIN, the statement and the COMMIT go in one round trip.
  yield* later(
    `INSERT INTO user_sync (user_id, directory_id, organization_id, auth0_user_id, applied, applied_at)
     VALUES (?, ?, ?, ?, ?, ?)
     ON CONFLICT (user_id) DO UPDATE SET directory_id = excluded.directory_id,
       organization_id = excluded.organization_id, auth0_user_id = excluded.auth0_user_id,
       applied = excluded.applied, applied_at = excluded.applied_at`,
    [inputs.row.id, inputs.row.directoryId, inputs.organization.id, applied.auth0UserId, JSON.stringify(applied), now],
  );
}

export function* saveSyncError(
  inputs: Pick<UserInputs, "row" | "organization">,
  error: string | null,
  now = Date.now(),
): StoreOp<void> {
  yield* later(
    `INSERT INTO user_sync (user_id, directory_id, organization_id, last_error, last_error_at)
     VALUES (?, ?, ?, ?, ?)
     ON CONFLICT (user_id) DO UPDATE SET last_error = excluded.last_error, last_error_at = excluded.last_error_at`,
    [inputs.row.id, inputs.row.directoryId, inputs.organization.id, error, error ? now : null],
  );
}

/**
 * plan() never creates a user only to cut it off, but an Auth0 user with the email may exist that
 * this user's record does not know of (its own create whose answer a crash lost, one made outside
 * the bridge, another organization's user). Before deprovisioning such a user the worker looks the
 * email up and links what it finds, so that it is cut off too rather than left open.
 */
export function looksUpByEmailFirst(d: DesiredUser, applied: AppliedState): boolean {
  return !applied.exists && d.status !== "provisioned" && d.email !== null && (d.blocked || d.deleteUser);
}

/** The applied state once the user found by email is linked (looksUpByEmailFirst). */
export function linkFound(applied: AppliedState, d: DesiredUser, auth0UserId: string, blocked: boolean): AppliedState {
  return applyOperation(
    applied,
    { type: "linkUser", irreversible: false, connection: d.connection, email: d.email ?? "" },
    { auth0UserId, blocked },
  );
}

/** An Auth0 user the bridge itself created or adopted, as it last recorded it. */
export interface KnownAuth0User {
  auth0UserId: string;
  blocked: boolean;
}

/**
 * Auth0 users the bridge created or adopted (for any organization) by their lower-cased email, as
 * last recorded: what the worker will find when it looks an email up (preview cannot ask Auth0).
 * The applied state is JSON text: read with json_extract on SQLite, with -> / ->> on PostgreSQL.
 */
export function* knownAuth0UsersByEmail(emails: readonly string[]): StoreOp<Map<string, KnownAuth0User>> {
  const wanted = [...new Set(emails)];
  const out = new Map<string, KnownAuth0User>();
  if (wanted.length === 0) return out;
  const pg = (yield* dialect()) === "postgres";
  const email = pg
    ? `lower(CAST(applied AS json)->'profile'->>'email')`
    : `lower(json_extract(applied, '$.profile.email'))`;
  const exists = pg ? `CAST(applied AS json)->>'exists' = 'true'` : `json_extract(applied, '$.exists') = 1`;
  const rows = yield* many<{ email: string; auth0UserId: string | null; applied: string }>(
    `SELECT ${email} AS email, auth0_user_id AS "auth0UserId", applied FROM user_sync
     WHERE ${exists} AND ${email} IN (${yield* jsonTextList()})
     ORDER BY user_id`,
    [JSON.stringify(wanted)],
  );
  for (const r of rows) {
    if (!r.auth0UserId || out.has(r.email)) continue;
    const applied = JSON.parse(r.applied) as AppliedState;
    out.set(r.email, { auth0UserId: r.auth0UserId, blocked: applied.blocked === true });
  }
  return out;
}
