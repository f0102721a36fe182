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
} as const;

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
