import { foldCase } from "../directory/fold.js";
import { recordAudit } from "../directory/audit.js";
import { mappingCacheOf, mappingOfOrganization, type MappingCache } from "../directory/mappings.js";
import type { SqlStore } from "../directory/sql.js";
import { applyOperation, type MappingDocument } from "../mapping/index.js";
import { desiredFor, loadUserInputs, memberOfOtherOrganizations, saveApplied, type UserInputs } from "./inputs.js";
import { enqueueJob, Lane } from "../directory/outbox.js";
import { many, one, type StoreOp } from "../directory/store-op.js";

/** What the Auth0 Action sends (see src/auth0/action/post-login.cjs). */
export interface PostLoginEvent {
  user: { user_id: string; email?: string | null };
  organization?: { id?: string | null; name?: string | null } | null;
  connection?: { name?: string | null; strategy?: string | null } | null;
}

export interface PostLoginDecision {
  decision: "allow" | "deny";
  reason?: string;
  roles?: string[];
  app_metadata?: Record<string, unknown>;
}

const denialReasons = {
  deactivated: "Your account was deactivated by your organization's directory.",
  held: "Your account was blocked by your organization's administrator.",
  deleted: "Your account was removed by your organization's directory.",
  unknown: "Your account is not provisioned by your organization's directory.",
  otherAccount:
    "This sign-in is not the account your organization's directory provisioned; sign in through your organization's identity provider.",
} as const;

/**
 * Fixed SQL texts throughout (each a cached statement on SQLite): this runs at every login of every
 * organization. The reads are one read unit (loginInputs), so they see one snapshot.
 */
export function* findDirectoryUser(
  organizationId: string,
  auth0UserId: string,
  email: string | null,
): StoreOp<string | undefined> {
  const linked = yield* many<{ id: string; deletedAt: number | null }>(
    `SELECT u.id, u.deleted_at AS "deletedAt" FROM user_sync s JOIN users u ON u.id = s.user_id
     WHERE s.auth0_user_id = ? AND s.organization_id = ?`,
    [auth0UserId, organizationId],
  );
  // A live user wins over an old tombstone with the same Auth0 id.
  if (linked.length > 0) return (linked.find((r) => r.deletedAt === null) ?? linked[0])?.id;
  // A signed event is still input: anything but a non-empty string is "no email", never a crash.
  if (typeof email !== "string" || email === "") return undefined;
  const lower = foldCase(email);
  const byName = yield* one<{ id: string }>(
    `SELECT u.id FROM users u
     WHERE u.directory_id IN (SELECT id FROM directories WHERE organization_id = ?)
       AND u.user_name_lower = ? AND u.deleted_at IS NULL`,
    [organizationId, lower],
  );
  if (byName) return byName.id;
  const byEmail = yield* one<{ id: string }>(
    `SELECT u.id FROM user_emails e JOIN users u ON u.id = e.user_id
     WHERE e.directory_id IN (SELECT id FROM directories WHERE organization_id = ?)
       AND e.value_lower = ? AND u.deleted_at IS NULL`,
    [organizationId, lower],
  );
  return byEmail?.id;
}

/** Our id of the organization the event names by Auth0 id or by name (slug), if the bridge manages it. */
export function* findOrganization(orgRef: { id?: string | null; name?: string | null }): StoreOp<string | undefined> {
  const byId = orgRef.id ? "auth0_org_id = ?" : undefined;
  const byName = orgRef.name ? "slug = ?" : undefined;
  const where = [byId, byName].filter(Boolean).join(" OR ");
  const params = [orgRef.id, orgRef.name].filter((v): v is string => Boolean(v));
  // Three texts at most (id, name, or both); both columns are unique, so one row unless both match.
  return (yield* one<{ id: string }>(`SELECT id FROM organizations WHERE ${where}`, params))?.id;
}

/**
 * An enterprise user's first login: links the Auth0 account to the directory user, audits the link
 * and enqueues a reconcile (membership, roles), in one write.
 */
export function* linkFirstLogin(
  inputs: UserInputs,
  link: { auth0UserId: string; connection: string; email: string | null },
  requestId?: string,
): StoreOp<void> {
  const applied = applyOperation(
    inputs.applied,
    { type: "linkUser", irreversible: false, connection: link.connection, email: link.email ?? "" },
    { auth0UserId: link.auth0UserId },
  );
  yield* saveApplied(inputs, applied);
  yield* recordAudit({
    actor: { type: "system", id: "post-login-hook" },
    organizationId: inputs.organization.id,
    directoryId: inputs.row.directoryId,
    action: "user.link",
    targetType: "user",
    targetId: inputs.row.id,
    after: { auth0UserId: link.auth0UserId },
    requestId: requestId ?? null,
  });
  yield* enqueueJob({
    organizationId: inputs.organization.id,
    directoryId: inputs.row.directoryId,
    kind: "user",
    subjectId: inputs.row.id,
    lane: Lane.provision,
  });
}

interface LoginInputs {
  inputs: UserInputs;
  mapping: MappingDocument;
  /** Whether another organization holds the signing-in account (asked only when the user is not linked yet). */
  heldElsewhere: boolean | undefined;
}

/**
 * What a login is decided on, in one read: the organization the event names (undefined: not one the
 * bridge manages), the directory user and its inputs (null: none), and the active mapping.
 */
function* loginInputs(
  orgRef: { id?: string | null; name?: string | null },
  user: PostLoginEvent["user"],
  cache: MappingCache,
): StoreOp<LoginInputs | null | undefined> {
  const organizationId = yield* findOrganization(orgRef);
  if (!organizationId) return undefined;
  const userId = yield* findDirectoryUser(organizationId, user.user_id, user.email ?? null);
  const inputs = userId ? yield* loadUserInputs(userId) : undefined;
  if (!inputs) return null;
  const mapping = (yield* mappingOfOrganization(inputs.organization, cache, inputs.connectionType)).document;
  const heldElsewhere = inputs.applied.auth0UserId
    ? undefined
    : yield* memberOfOtherOrganizations(user.user_id, organizationId);
  return { inputs, mapping, heldElsewhere };
}

/**
 * The login decision (docs/design.md, "Data flow"): allow or deny from directory truth and holds, with
 * the roles and owned metadata the mapping gives, and no Auth0 call. An enterprise user's first
 * login links its Auth0 id to the directory user and enqueues a reconcile (membership, roles).
 */
export async function decidePostLogin(
  store: SqlStore,
  event: PostLoginEvent,
  requestId?: string,
): Promise<PostLoginDecision> {
  const orgRef = event.organization;
  if (!orgRef || (!orgRef.id && !orgRef.name)) return { decision: "allow" };
  const read = await store.read(loginInputs(orgRef, event.user, mappingCacheOf(store, true)));
  // Organizations the bridge does not manage are none of its business.
  if (read === undefined) return { decision: "allow" };
  if (read === null) return { decision: "deny", reason: denialReasons.unknown };
  const { inputs, mapping, heldElsewhere } = read;

  // Not linked yet: the account signing in is the one this user would be linked to.
  const d = desiredFor(
    mapping,
    inputs,
    heldElsewhere === undefined ? {} : { memberOfOtherOrganizations: heldElsewhere },
  );
  if (d.status !== "provisioned") return { decision: "deny", reason: denialReasons[d.status] };

  // The directory user is one Auth0 account: another account that merely shares its email (a
  // database sign-up, a social login) must not inherit its access and roles.
  const linked = inputs.applied.auth0UserId;
  if (linked && linked !== event.user.user_id) return { decision: "deny", reason: denialReasons.otherAccount };
  // First login: link only an account of the mapping's connection, as the worker's linkUser does
  // (users-by-email filtered by connection); the email alone proves nothing elsewhere.
  if (!linked && event.connection?.name !== d.connection)
    return { decision: "deny", reason: denialReasons.otherAccount };

  if (!linked)
    await store.write(
      linkFirstLogin(inputs, { auth0UserId: event.user.user_id, connection: d.connection, email: d.email }, requestId),
    );
  const appMetadata = Object.fromEntries(Object.entries(d.appMetadata).filter(([, v]) => v !== null));
  return { decision: "allow", roles: d.roles, app_metadata: appMetadata };
}
