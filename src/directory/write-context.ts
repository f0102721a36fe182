import type { Actor } from "./audit.js";

/**
 * Who made a change, in answer to which request, and when. Every store write takes one: the actor and
 * request id reach its audit entry, and one clock reading stamps every row and entry the change writes.
 */
export interface Change {
  actor: Actor;
  requestId: string | null;
  at: number;
}

/** A change to one directory's users and groups (SCIM writes): its rows are scoped by the tenant it names. */
export interface WriteContext extends Change {
  organizationId: string;
  directoryId: string;
  /**
   * A SCIM request whose token came from the cache: the scim_tokens epoch it is cached under, which
   * a write that can compares in its first statement (createUser), throwing CredentialEpochMoved.
   */
  credentialEpoch?: number;
}

/** A change by `actor` now (or at `at`), outside any request unless one is named. */
export const changeBy = (actor: Actor, options: { requestId?: string | null; at?: number } = {}): Change => ({
  actor,
  requestId: options.requestId ?? null,
  at: options.at ?? Date.now(),
});

/** Attribute names whose values differ: what an audit entry says changed, without the values themselves. */
export function changedAttributes(before: Record<string, unknown>, after: Record<string, unknown>): string[] {
  const keys = new Set([...Object.keys(before), ...Object.keys(after)]);
  return [...keys].filter((k) => JSON.stringify(before[k]) !== JSON.stringify(after[k])).sort();
}

export { isForeignKeyViolation, isUniqueViolation } from "./sql.js";
