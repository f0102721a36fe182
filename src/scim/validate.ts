import SCIMMY from "scimmy";
import { BridgeError, invalidValue, type ErrorKind } from "../errors.js";
import { assertValueCounts } from "./limits.js";
import type { ScimDocument } from "./normalize.js";
import type { ResourceSchema } from "./schema.js";

/**
 * Validates a canonical document with scimmy's RFC 7643 definitions (types, required attributes,
 * canonical values, dateTime and reference formats) and returns the stored form: plain JSON in
 * schema order, without id, meta and schemas. scimmy's messages become 400 invalidValue.
 */
export function validateDocument(rs: ResourceSchema, document: ScimDocument): ScimDocument {
  assertValueCounts(rs, document);
  let coerced: unknown;
  try {
    coerced = rs.definition.coerce({ ...document, schemas: schemasOf(rs, document) }, "in");
  } catch (err) {
    throw asBridgeError(err);
  }
  const plain = JSON.parse(JSON.stringify(coerced)) as ScimDocument;
  delete plain.schemas;
  delete plain.meta;
  delete plain.id;
  return (prune(plain) as ScimDocument | undefined) ?? {};
}

const passThrough = new Set<ErrorKind>(["invalidValue", "invalidSyntax", "mutability", "invalidPath", "noTarget"]);

function asBridgeError(err: unknown): BridgeError {
  if (err instanceof SCIMMY.Types.Error) {
    const kind = passThrough.has(err.scimType as ErrorKind) ? (err.scimType as ErrorKind) : "invalidValue";
    return new BridgeError(kind, err.message);
  }
  if (err instanceof TypeError) return invalidValue(err.message);
  throw err;
}

/** The schema URNs a document uses: the core one, and each extension that holds a value. */
export function schemasOf(rs: ResourceSchema, document: ScimDocument): string[] {
  return [rs.core.urn, ...rs.extensions.filter((e) => document[e.urn] !== undefined).map((e) => e.urn)];
}

/** Drops nulls, empty objects and empty arrays: all mean "unassigned" (RFC 7643 §2.5). */
function prune(value: unknown): unknown {
  if (Array.isArray(value)) {
    const items = value.map(prune).filter((v) => v !== undefined);
    return items.length > 0 ? items : undefined;
  }
  if (typeof value === "object" && value !== null) {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) {
      const p = prune(v);
      if (p !== undefined) out[k] = p;
    }
    return Object.keys(out).length > 0 ? out : undefined;
  }
  return value === null ? undefined : value;
}
