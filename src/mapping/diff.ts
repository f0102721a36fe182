/**
 * diffDesired(before, after): what a mapping change would change for one user, in the terms an
 * operator reviews (used by preview): membership, roles, profile, metadata, blocked.
 */
import type { DesiredUser } from "./desired.js";
import { jsonEqual, type ProfileField } from "./types.js";

/** Membership as Auth0 would see it: no user, a user outside the organization, or a member. */
export type Membership = "none" | "user" | "member";

export interface DesiredDiff {
  membership?: { before: Membership; after: Membership };
  roles?: { added: string[]; removed: string[] };
  profile?: { fields: ProfileField[] };
  metadata?: { keys: string[] };
  blocked?: { before: boolean; after: boolean };
}

export type ChangeKind = keyof DesiredDiff;
export const changeKinds: readonly ChangeKind[] = ["membership", "roles", "profile", "metadata", "blocked"];

const membershipOf = (d: DesiredUser): Membership => (!d.exists ? "none" : d.member ? "member" : "user");

export function diffDesired(before: DesiredUser, after: DesiredUser): DesiredDiff {
  const diff: DesiredDiff = {};
  const m0 = membershipOf(before);
  const m1 = membershipOf(after);
  if (m0 !== m1) diff.membership = { before: m0, after: m1 };

  const r0 = new Set(before.roles);
  const r1 = new Set(after.roles);
  const added = after.roles.filter((r) => !r0.has(r));
  const removed = before.roles.filter((r) => !r1.has(r));
  if (added.length > 0 || removed.length > 0) diff.roles = { added, removed };

  // Only what `after` declares or owns can change in Auth0 (a field or key it drops is left as it
  // is), and only for a user that will exist: a user about to be deleted gets no profile writes.
  const fields = after.exists ? (Object.keys(after.profile) as ProfileField[]) : [];
  const changedFields = fields.filter((f) => (before.profile[f] ?? null) !== (after.profile[f] ?? null)).sort();
  if (changedFields.length > 0) diff.profile = { fields: changedFields };

  const changedKeys = (after.exists ? after.ownedAppMetadataKeys : [])
    .filter((k) => !jsonEqual(before.appMetadata[k] ?? null, after.appMetadata[k] ?? null))
    .sort();
  if (changedKeys.length > 0) diff.metadata = { keys: changedKeys };

  if (before.blocked !== after.blocked) diff.blocked = { before: before.blocked, after: after.blocked };
  return diff;
}
