import { invalidValue } from "../errors.js";
import type { ScimDocument } from "./normalize.js";
import type { ResourceSchema } from "./schema.js";

/**
 * Per-request bounds that keep every SCIM request's work linear and small, so that one tenant's
 * request cannot hold the process (and every other tenant and login) for seconds. They are
 * documented in docs/ and, where RFC 7644 §5 has a field for them, advertised in
 * /ServiceProviderConfig.
 */
export const scimLimits = {
  /**
   * Values of one multi-valued attribute of a resource (emails, phoneNumbers, addresses, roles,
   * entitlements, …; Group members are rows of their own and bounded by the body size). IdPs send a
   * handful: Entra maps one value per type, Okta at most a few.
   */
  maxValuesPerAttribute: 100,
  /**
   * Values carried by one PATCH's operations on a resource document, summed (a list of 50 emails
   * counts 50). Matching is linear, but each value is still normalised, folded and looked up; this
   * keeps a 1 MiB body from carrying 20,000 of them. Group members are edited as rows and are not
   * counted here.
   */
  maxPatchValues: 1000,
  /**
   * Group members carried by one request: a POST's or PUT's member list, or the members named by a
   * PATCH's operations, summed. Each one is a user lookup, a row written and a reconcile job, all in
   * one transaction; 10,000 is also what Auth0's own inbound SCIM accepts in a Group POST or PUT
   * (Auth0 "Entity Limit Policy"). Larger groups are built and kept up to date with PATCH add and
   * remove, which every IdP uses for membership changes.
   */
  maxMembersPerRequest: 10_000,
} as const;

export const tooManyMembers = () =>
  invalidValue(
    `"members": a request may carry at most ${scimLimits.maxMembersPerRequest} members; add the rest with PATCH "add" operations`,
  );

/** Refuses a raw members value (before it is parsed) holding more than the per-request maximum. */
export function assertMemberCount(count: number): void {
  if (count > scimLimits.maxMembersPerRequest) throw tooManyMembers();
}

export const tooManyPatchValues = () =>
  invalidValue(`a PATCH may carry at most ${scimLimits.maxPatchValues} values across its operations`);

export const tooManyValues = (attribute: string) =>
  invalidValue(`"${attribute}" may hold at most ${scimLimits.maxValuesPerAttribute} values`);

/** Refuses a document any of whose multi-valued attributes holds more than the maximum (400 invalidValue naming it). */
export function assertValueCounts(rs: ResourceSchema, document: ScimDocument): void {
  const check = (holder: unknown, attributes: ResourceSchema["core"]["attributes"]) => {
    if (typeof holder !== "object" || holder === null) return;
    for (const info of attributes.values()) {
      if (!info.multiValued) continue;
      const v = (holder as Record<string, unknown>)[info.name];
      if (Array.isArray(v) && v.length > scimLimits.maxValuesPerAttribute) throw tooManyValues(info.name);
    }
  };
  check(document, rs.core.attributes);
  for (const ext of rs.extensions) check(document[ext.urn], ext.attributes);
}
