/**
 * plan(desired, applied): the ordered Auth0 operations that close the gap. Pure.
 *
 * One order serves every case (docs/design.md, "What Auth0 sees"):
 *   1. block → revokeAccess → removeRoles → removeMember → deleteUser   (cut access first; the
 *      reversible cuts come before the irreversible ones the guard may pause)
 *   2. createUser | linkUser → updateUser → addMember → addRoles → unblock → sendInvitation
 *      (never unblock before membership and roles are right; invite only a user the bridge created)
 * Each step is skipped when the applied state already matches, so plan(d, appliedFromDesired(d)) is [].
 * The plan is computed by applying each emitted operation to a running copy of the applied state,
 * so applying it op by op (with successful results) leaves nothing to do.
 */
import { applyOperation, type AppliedState } from "./applied.js";
import type { DesiredUser } from "./desired.js";
import type { Operation, OperationResult } from "./operations.js";
import { jsonEqual, type AppMetadata, type Profile, type ProfileField } from "./types.js";

/** Stands in for the Auth0 id a create or link will return, while the rest of the plan is derived. */
const pendingId = "(pending)";

function profileChanges(d: DesiredUser, a: AppliedState): Profile {
  const changes: Profile = {};
  for (const [field, want] of Object.entries(d.profile) as [ProfileField, string | null][]) {
    const have = a.profile[field];
    if (want === null && (have === undefined || have === null || field === "email")) continue; // never clear an email
    if (want !== have) changes[field] = want;
  }
  return changes;
}

function metadataChanges(d: DesiredUser, a: AppliedState): AppMetadata {
  const changes: AppMetadata = {};
  for (const key of d.ownedAppMetadataKeys) {
    const want = d.appMetadata[key] ?? null;
    // An owned key the bridge never wrote is written (null included): the key is the bridge's alone.
    if (!Object.hasOwn(a.appMetadata, key) || !jsonEqual(a.appMetadata[key], want)) changes[key] = want;
  }
  return changes;
}

export function plan(d: DesiredUser, applied: AppliedState): Operation[] {
  const ops: Operation[] = [];
  // A non-member has no organization roles: Auth0 drops them with the membership.
  let state: AppliedState = applied.member ? applied : { ...applied, roles: [] };
  const emit = (op: Operation, result?: OperationResult): void => {
    ops.push(op);
    state = applyOperation(state, op, result);
  };

  if (state.exists) {
    if (d.blocked && state.blocked !== true) emit({ type: "block", irreversible: false });
    // Revoking only makes sense for a user left without access; otherwise the next sign-in undoes it.
    const cutOff = !d.exists || !d.member || d.blocked;
    if (d.revokeAccess && cutOff && !state.accessRevoked) emit({ type: "revokeAccess", irreversible: false });
    if (!d.exists) {
      // Deleting the user ends its memberships; block and revoke above already cut access.
      emit({ type: "deleteUser", irreversible: true });
      return ops;
    }
    const wanted = new Set(d.member ? d.roles : []);
    const stale = state.roles.filter((r) => !wanted.has(r));
    if (stale.length > 0) emit({ type: "removeRoles", irreversible: false, roles: stale });
    if (!d.member && state.member) emit({ type: "removeMember", irreversible: true });
  } else {
    // Never create or link a user only to deprovision it.
    if (!d.exists || !d.member || d.blocked || d.email === null) return ops;
    if (d.connectionType === "database") {
      const profile = Object.fromEntries(
        Object.entries(d.profile).filter(([field, v]) => field !== "email" && v !== null),
      ) as Profile;
      const appMetadata = Object.fromEntries(d.ownedAppMetadataKeys.map((k) => [k, d.appMetadata[k] ?? null]));
      emit(
        { type: "createUser", irreversible: false, connection: d.connection, email: d.email, profile, appMetadata },
        { auth0UserId: pendingId, created: true },
      );
    } else {
      emit(
        { type: "linkUser", irreversible: false, connection: d.connection, email: d.emailAsSent ?? d.email },
        { auth0UserId: pendingId },
      );
    }
  }

  const profile = profileChanges(d, state);
  const appMetadata = metadataChanges(d, state);
  if (Object.keys(profile).length > 0 || Object.keys(appMetadata).length > 0) {
    emit({ type: "updateUser", irreversible: false, profile, appMetadata });
  }
  if (d.member && !state.member) emit({ type: "addMember", irreversible: false });
  if (d.member) {
    const have = new Set(state.roles);
    const missing = d.roles.filter((r) => !have.has(r));
    if (missing.length > 0) emit({ type: "addRoles", irreversible: false, roles: missing });
  }
  // Only a block the bridge placed (or an unknown state) is lifted; a tenant admin's block stays.
  if (!d.blocked && state.blocked !== false && state.blockedOutside !== true)
    emit({ type: "unblock", irreversible: false });
  if (d.invite && state.created && !state.invited && d.email !== null) {
    const ttl = d.invitationTtlSeconds;
    emit({
      type: "sendInvitation",
      irreversible: false,
      email: d.email,
      ...(ttl === undefined ? {} : { ttlSeconds: ttl }),
    });
  }
  return ops;
}
