/**
 * Applied state: what the bridge last wrote to Auth0 successfully for one user (docs/design.md, "Concepts").
 * The executor persists applyOperation(...) after every successful operation, so a crash mid-plan
 * resumes from exactly what was done (docs/design.md, invariant 2). Stored as JSON in user_sync.applied.
 */
import type { DesiredUser } from "./desired.js";
import type { Operation, OperationResult } from "./operations.js";
import { sortedUnique, type AppMetadata, type Profile } from "./types.js";

export interface AppliedState {
  auth0UserId: string | null;
  exists: boolean;
  /** The bridge created this Auth0 user (only such users get an invitation). */
  created: boolean;
  member: boolean;
  /** Roles the bridge granted (roles granted by others are never touched). */
  roles: string[];
  /** null: unknown, for a user the bridge linked or adopted but never blocked or unblocked. */
  blocked: boolean | null;
  /** Profile fields as last written; a field that is absent was never written. */
  profile: Profile;
  /** Owned app_metadata keys as last written (null = deleted); an absent key was never written. */
  appMetadata: AppMetadata;
  invited: boolean;
  /** Access was revoked during the current deprovisioning; reset when access is given back. */
  accessRevoked: boolean;
  /** The bridge deleted the Auth0 user. */
  deleted: boolean;
  /**
   * The user is blocked in Auth0 by someone other than the bridge (a tenant administrator): the
   * bridge only lifts blocks it placed itself, so it never unblocks this one.
   */
  blockedOutside?: boolean;
  /** Enterprise connection: no Auth0 user with this email yet; it appears at the first login. */
  awaitingFirstLogin?: boolean;
}

/** A user the bridge never synced. */
export const initialApplied = (): AppliedState => ({
  auth0UserId: null,
  exists: false,
  created: false,
  member: false,
  roles: [],
  blocked: null,
  profile: {},
  appMetadata: {},
  invited: false,
  accessRevoked: false,
  deleted: false,
});

/** The applied state once `d` is fully applied (what plan(d, ·) compares against; used by tests and tools). */
export function appliedFromDesired(d: DesiredUser, auth0UserId = "auth0|applied"): AppliedState {
  if (!d.exists) return { ...initialApplied(), deleted: true };
  return {
    auth0UserId,
    exists: true,
    created: true,
    member: d.member,
    roles: d.member ? [...d.roles] : [],
    blocked: d.blocked,
    profile: { ...d.profile },
    appMetadata: Object.fromEntries(d.ownedAppMetadataKeys.map((k) => [k, d.appMetadata[k] ?? null])),
    invited: d.invite,
    accessRevoked: d.revokeAccess && (!d.member || d.blocked),
    deleted: false,
  };
}

/**
 * Once the user has access again (a member, not blocked), the revocation belongs to the past, so
 * the next deprovisioning revokes again. A user still cut off keeps the mark (no second revoke).
 */
const regained = (s: AppliedState): AppliedState =>
  s.member && s.blocked === false ? { ...s, accessRevoked: false } : s;

const withoutNulls = (p: Profile): Profile => Object.fromEntries(Object.entries(p).filter(([, v]) => v !== null));

/** The applied state after `op` succeeded. Pure; throws only when a result the op needs is missing. */
export function applyOperation(applied: AppliedState, op: Operation, result: OperationResult = {}): AppliedState {
  switch (op.type) {
    case "createUser": {
      if (!result.auth0UserId) throw new Error("applyOperation(createUser) needs result.auth0UserId");
      const created = result.created !== false;
      return {
        ...initialApplied(),
        auth0UserId: result.auth0UserId,
        exists: true,
        created,
        blocked: created ? false : (result.blocked ?? null),
        ...(result.blocked === true ? { blockedOutside: true } : {}),
        profile: { ...withoutNulls(op.profile), email: op.email },
        appMetadata: { ...op.appMetadata },
      };
    }
    case "linkUser":
      if (!result.auth0UserId) return { ...applied, awaitingFirstLogin: true }; // it appears at first login
      return {
        ...initialApplied(),
        auth0UserId: result.auth0UserId,
        exists: true,
        blocked: result.blocked ?? null,
        ...(result.blocked === true ? { blockedOutside: true } : {}),
      };
    case "updateUser":
      return {
        ...applied,
        profile: { ...applied.profile, ...op.profile },
        appMetadata: { ...applied.appMetadata, ...op.appMetadata },
      };
    case "addMember":
      // A new membership starts without roles (the old ones went with the removal).
      return regained({ ...applied, member: true, roles: applied.member ? applied.roles : [] });
    case "removeMember":
      return { ...applied, member: false, roles: [] };
    case "addRoles":
      return { ...applied, roles: sortedUnique([...applied.roles, ...op.roles]) };
    case "removeRoles": {
      const gone = new Set(op.roles);
      return { ...applied, roles: applied.roles.filter((r) => !gone.has(r)) };
    }
    case "block":
      return { ...applied, blocked: true };
    case "unblock": {
      const { blockedOutside: _, ...rest } = applied;
      return regained({ ...rest, blocked: false });
    }
    case "revokeAccess":
      return { ...applied, accessRevoked: true };
    case "deleteUser":
      return { ...initialApplied(), deleted: true };
    case "sendInvitation":
      return { ...applied, invited: true };
  }
}
