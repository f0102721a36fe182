import { foldCase } from "../directory/fold.js";
import { prepared } from "../directory/statements.js";
import type { Db } from "../directory/database.js";
import { recordAudit } from "../directory/audit.js";
import { getActiveMapping } from "../directory/mappings.js";
import { applyOperation } from "../mapping/index.js";
import { desiredFor, loadUserInputs, memberOfOtherOrganizations, saveApplied } from "./inputs.js";
import { enqueueJob, Lane } from "../directory/outbox.js";
import { runSync } from "../directory/store-op.js";

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
 * Cached statements throughout: this runs at every login of every organization, and building the
 * queries with drizzle cost more CPU than running them.
 */
function findDirectoryUser(
  db: Db,
  organizationId: string,
  auth0UserId: string,
  email: string | null,
): string | undefined {
  const linked = prepared(
    db,
    `SELECT u.id, u.deleted_at AS deletedAt FROM user_sync s JOIN users u ON u.id = s.user_id
     WHERE s.auth0_user_id = ? AND s.organization_id = ?`,
  ).all(auth0UserId, organizationId) as { id: string; deletedAt: number | null }[];
  // A live user wins over an old tombstone with the same Auth0 id.
  if (linked.length > 0) return (linked.find((r) => r.deletedAt === null) ?? linked[0])?.id;
  // A signed event is still input: anything but a non-empty string is "no email", never a crash.
  if (typeof email !== "string" || email === "") return undefined;
  const lower = foldCase(email);
  const byName = prepared(
    db,
    `SELECT u.id FROM users u
     WHERE u.directory_id IN (SELECT id FROM directories WHERE organization_id = ?)
       AND u.user_name_lower = ? AND u.deleted_at IS NULL`,
  )
    .pluck()
    .get(organizationId, lower) as string | undefined;
  if (byName) return byName;
  return prepared(
    db,
    `SELECT u.id FROM user_emails e JOIN users u ON u.id = e.user_id
     WHERE e.directory_id IN (SELECT id FROM directories WHERE organization_id = ?)
       AND e.value_lower = ? AND u.deleted_at IS NULL`,
  )
    .pluck()
    .get(organizationId, lower) as string | undefined;
}

/** Our id of the organization the event names by Auth0 id or by name (slug), if the bridge manages it. */
function findOrganization(db: Db, orgRef: { id?: string | null; name?: string | null }): string | undefined {
  const byId = orgRef.id ? "auth0_org_id = ?" : undefined;
  const byName = orgRef.name ? "slug = ?" : undefined;
  const where = [byId, byName].filter(Boolean).join(" OR ");
  const params = [orgRef.id, orgRef.name].filter((v): v is string => Boolean(v));
  return prepared(db, `SELECT id FROM organizations WHERE ${where}`)
    .pluck()
    .get(...params) as string | undefined;
}

/**
 * The login decision (docs/design.md, "Data flow"): allow or deny from directory truth and holds, with
 * the roles and owned metadata the mapping gives, and no Auth0 call. An enterprise user's first
 * login links its Auth0 id to the directory user and enqueues a reconcile (membership, roles).
 */
export function decidePostLogin(db: Db, event: PostLoginEvent, requestId?: string): PostLoginDecision {
  const orgRef = event.organization;
  if (!orgRef || (!orgRef.id && !orgRef.name)) return { decision: "allow" };
  const organizationId = findOrganization(db, orgRef);
  // Organizations the bridge does not manage are none of its business.
  if (!organizationId) return { decision: "allow" };
  const org = { id: organizationId };

  const userId = findDirectoryUser(db, org.id, event.user.user_id, event.user.email ?? null);
  const inputs = userId ? loadUserInputs(db, userId) : undefined;
  if (!inputs) return { decision: "deny", reason: denialReasons.unknown };

  const mapping = getActiveMapping(db, org.id)!.document;
  // Not linked yet: the account signing in is the one this user would be linked to.
  const d = desiredFor(
    mapping,
    inputs,
    inputs.applied.auth0UserId
      ? {}
      : { memberOfOtherOrganizations: memberOfOtherOrganizations(db, event.user.user_id, org.id) },
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

  if (!linked) {
    db.transaction((tx) => {
      const applied = applyOperation(
        inputs.applied,
        { type: "linkUser", irreversible: false, connection: d.connection, email: d.email ?? "" },
        { auth0UserId: event.user.user_id },
      );
      saveApplied(tx, inputs, applied);
      runSync(
        tx,
        recordAudit({
          actor: { type: "system", id: "post-login-hook" },
          organizationId: org.id,
          directoryId: inputs.row.directoryId,
          action: "user.link",
          targetType: "user",
          targetId: inputs.row.id,
          after: { auth0UserId: event.user.user_id },
          requestId: requestId ?? null,
        }),
      );
      runSync(
        tx,
        enqueueJob({
          organizationId: org.id,
          directoryId: inputs.row.directoryId,
          kind: "user",
          subjectId: inputs.row.id,
          lane: Lane.provision,
        }),
      );
    });
  }
  const appMetadata = Object.fromEntries(Object.entries(d.appMetadata).filter(([, v]) => v !== null));
  return { decision: "allow", roles: d.roles, app_metadata: appMetadata };
}
