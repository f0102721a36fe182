/**
 * The Auth0 operations plan() emits, as a discriminated union on `type`. The executor (src/sync)
 * turns each into Management API calls; it addresses the user by the current applied auth0UserId.
 *
 * `irreversible` marks what the mass-deprovision guard (docs/design.md, invariant 8) must pause:
 * - deleteUser: the Auth0 user, its identities, MFA enrolments and history are gone for good;
 * - removeMember: Auth0 drops the member's organization roles with it, including roles granted
 *   outside the bridge, and the removal takes seconds to propagate. The bridge can re-add its own
 *   membership and roles, but not what others granted.
 * Everything else is reversible and runs even while the guard holds: block/unblock, revokeAccess
 * (the user signs in again), removeRoles (only roles the bridge itself granted), profile updates.
 * No operation ever sets a password: a password reset lifts a block (Auth0 docs "Block and Unblock Users").
 */
import type { AppMetadata, Profile } from "./types.js";

export interface CreateUser {
  type: "createUser";
  irreversible: false;
  connection: string;
  email: string;
  /** Profile fields with a value (email excluded: see `email`). */
  profile: Profile;
  /** Every owned key; null = absent. */
  appMetadata: AppMetadata;
}
/**
 * Executor contract for createUser (idempotent, so a crash between POST and recording it never
 * duplicates a user, docs/design.md, invariant 2): look the email up (users-by-email, lower-cased) in `connection`;
 * - found: adopt it, PATCH `profile` and `app_metadata: appMetadata` (nulls included), result {auth0UserId, created: false};
 * - not found: POST /users {connection, email, ...profile, app_metadata without nulls, a random
 *   password that is thrown away, email_verified: false}, result {auth0UserId, created: true}.
 * After an adoption, plan again: the adopted user's block state is unknown (an unblock may follow).
 */

/**
 * Enterprise connections: Auth0 creates the user at first login. Find it by email in `connection`;
 * never create. `email` is exactly as the IdP sent it: users-by-email is case-sensitive and Auth0
 * keeps the IdP's casing for such users.
 */
export interface LinkUser {
  type: "linkUser";
  irreversible: false;
  connection: string;
  email: string;
}
/** PATCH /users/{id}: changed profile fields and owned app_metadata keys (null deletes a key). */
export interface UpdateUser {
  type: "updateUser";
  irreversible: false;
  profile: Profile;
  appMetadata: AppMetadata;
}
export interface AddMember {
  type: "addMember";
  irreversible: false;
}
export interface RemoveMember {
  type: "removeMember";
  irreversible: true;
}
export interface AddRoles {
  type: "addRoles";
  irreversible: false;
  roles: string[];
}
export interface RemoveRoles {
  type: "removeRoles";
  irreversible: false;
  roles: string[];
}
export interface Block {
  type: "block";
  irreversible: false;
}
export interface Unblock {
  type: "unblock";
  irreversible: false;
}
/** POST /users/{id}/revoke-access: sessions and refresh tokens. */
export interface RevokeAccess {
  type: "revokeAccess";
  irreversible: false;
}
export interface DeleteUser {
  type: "deleteUser";
  irreversible: true;
}
/** Password-change ticket (POST /tickets/password-change) as the invitation; `ttlSeconds` from the mapping. */
export interface SendInvitation {
  type: "sendInvitation";
  irreversible: false;
  email: string;
  ttlSeconds?: number;
}

export type Operation =
  | CreateUser
  | LinkUser
  | UpdateUser
  | AddMember
  | RemoveMember
  | AddRoles
  | RemoveRoles
  | Block
  | Unblock
  | RevokeAccess
  | DeleteUser
  | SendInvitation;

export type OperationType = Operation["type"];

/** What an executed operation reported back; see applyOperation. */
export interface OperationResult {
  /** createUser and linkUser: the Auth0 user id; linkUser without it means "not found yet". */
  auth0UserId?: string | null;
  /** createUser: true when POSTed, false when an existing user was adopted. */
  created?: boolean;
  /** createUser (adopted) and linkUser: whether the Auth0 user found was blocked (by someone else). */
  blocked?: boolean;
}
