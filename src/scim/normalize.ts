import { invalidSyntax } from "../errors.js";
import type { ScimDocument } from "./documents.js";
import type { AttributeInfo, ResourceSchema, SchemaInfo } from "./schema.js";

/**
 * The quirk normaliser: turns what Entra, Okta and RFC-ish clients send into one
 * canonical JSON shape before scimmy validates it.
 * - attribute names in any case → their canonical spelling (RFC 7643 §2.1);
 * - null, "" for complex values, empty arrays and empty objects → absent (RFC 7643 §2.5; Entra sends
 *   `"phoneNumbers": null`, which stock scimmy rejects);
 * - "True"/"False" in any case → booleans for boolean attributes (Entra; scimmyjs/scimmy#51,
 *   scimmyjs/scimmy#86);
 * - the enterprise manager as a bare id or as `[{value, $ref}]` → `{value}` (Entra: Microsoft Learn "Develop and
 *   plan provisioning for a SCIM endpoint in Microsoft Entra ID"; Captain-P-Goldfish/SCIM-SDK#686);
 * - unknown attributes, unknown schema URNs (Entra's ADSCIM Group URN) and read-only ones (id, meta,
 *   schemas, groups) are dropped, and so is password: never stored, never returned.
 * Only schema attributes are copied, by their canonical names, so `__proto__` and friends never land.
 */
export type { ScimDocument } from "./documents.js";

const isPlainObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === "object" && v !== null && !Array.isArray(v);

const lowerKeyed = (o: Record<string, unknown>): Map<string, unknown> => {
  const m = new Map<string, unknown>();
  for (const [k, v] of Object.entries(o)) m.set(k.toLowerCase(), v);
  return m;
};

/** Boolean strings Entra sends. */
export function coerceBoolean(value: unknown): unknown {
  if (typeof value === "string" && /^\s*(true|false)\s*$/i.test(value)) return value.trim().toLowerCase() === "true";
  return value;
}

function normalizeComplex(attribute: AttributeInfo, value: Record<string, unknown>): ScimDocument | undefined {
  const out: ScimDocument = {};
  let any = false;
  // Per value of every multi-valued attribute (a PATCH may carry a thousand): no entry arrays, and
  // the lower-casing only for names not already in lower case.
  for (const key of Object.keys(value)) {
    const info = attribute.sub.get(key) ?? attribute.sub.get(key.toLowerCase());
    if (!info || info.readOnly) continue;
    const v = normalizeValue(info, value[key]);
    if (v !== undefined) {
      out[info.name] = v;
      any = true;
    }
  }
  return any ? out : undefined;
}

/** One attribute's value, canonical; undefined means "absent". */
export function normalizeValue(attribute: AttributeInfo, value: unknown): unknown {
  if (value === null || value === undefined) return undefined;
  if (attribute.multiValued) {
    const values = Array.isArray(value) ? value : [value];
    const out: unknown[] = [];
    for (const v of values) {
      const n = attribute.type === "complex" ? normalizeElement(attribute, v) : normalizeScalar(attribute, v);
      if (n !== undefined) out.push(n);
    }
    return out.length > 0 ? out : undefined;
  }
  if (attribute.type === "complex") {
    // The enterprise manager as Entra sends it: "<id>" or [{"value": "<id>", "$ref": …}] (one level only).
    const one = Array.isArray(value) && value.length === 1 && !Array.isArray(value[0]) ? value[0] : value;
    if (typeof one === "string" && attribute.sub.has("value")) return one === "" ? undefined : { value: one };
    return isPlainObject(one) ? normalizeComplex(attribute, one) : one;
  }
  return normalizeScalar(attribute, value);
}

function normalizeElement(attribute: AttributeInfo, value: unknown): unknown {
  if (value === null || value === undefined) return undefined;
  if (isPlainObject(value)) return normalizeComplex(attribute, value);
  // A bare value for a complex multi-valued attribute (e.g. roles: ["admin"]) means its "value".
  if (typeof value === "string" && attribute.sub.has("value")) return { value };
  return value;
}

function normalizeScalar(attribute: AttributeInfo, value: unknown): unknown {
  if (value === null || value === undefined) return undefined;
  return attribute.type === "boolean" ? coerceBoolean(value) : value;
}

function normalizeExtension(schema: SchemaInfo, value: unknown, into: ScimDocument): void {
  if (!isPlainObject(value)) return;
  for (const [key, v] of Object.entries(value)) {
    const info = schema.attributes.get(key.toLowerCase());
    if (!info || info.readOnly) continue;
    const n = normalizeValue(info, v);
    if (n !== undefined) into[info.name] = n;
  }
}

/**
 * A POST or PUT body → canonical document (without id, meta and schemas). `keep` names attributes
 * handled outside the document (Group members), returned raw beside it.
 */
export function normalizeResource(
  rs: ResourceSchema,
  body: unknown,
  keep: readonly string[] = [],
): { document: ScimDocument; kept: Map<string, unknown> } {
  if (!isPlainObject(body))
    throw invalidSyntax(`the request body must be a JSON object (a ${rs.resourceType} resource)`);
  const document: ScimDocument = {};
  const kept = new Map<string, unknown>();
  const extensions = new Map<string, ScimDocument>();
  for (const [key, value] of lowerKeyed(body)) {
    if (keep.includes(key)) {
      kept.set(key, value);
      continue;
    }
    const info = rs.core.attributes.get(key);
    if (info) {
      if (info.readOnly) continue;
      const v = normalizeValue(info, value);
      if (v !== undefined) document[info.name] = v;
      continue;
    }
    for (const ext of rs.extensions) {
      const urn = ext.urn.toLowerCase();
      const into = extensions.get(ext.urn) ?? {};
      if (key === urn) normalizeExtension(ext, value, into);
      // "urn:…:User:employeeNumber": a flattened extension attribute.
      else if (key.startsWith(urn + ":")) normalizeExtension(ext, { [key.slice(urn.length + 1)]: value }, into);
      else continue;
      extensions.set(ext.urn, into);
    }
  }
  for (const [urn, values] of extensions) if (Object.keys(values).length > 0) document[urn] = values;
  return { document, kept };
}
