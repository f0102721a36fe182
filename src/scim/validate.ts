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
  const { sample, restore } = sampleValues(rs, document);
  let coerced: unknown;
  try {
    coerced = rs.definition.coerce({ ...sample, schemas: schemasOf(rs, sample) }, "in");
  } catch (err) {
    throw asBridgeError(err);
  }
  const plain = JSON.parse(JSON.stringify(coerced)) as ScimDocument;
  delete plain.schemas;
  delete plain.meta;
  delete plain.id;
  restore(plain);
  return (prune(plain) as ScimDocument | undefined) ?? {};
}

/**
 * A multi-valued complex attribute whose sub-attributes are all strings or booleans without
 * canonical values (emails, phoneNumbers, addresses, roles, …). scimmy accepts one of its values or
 * refuses it by which sub-attributes it carries and their JavaScript types alone, and gives back
 * those of its keys that are sub-attributes returned at all, unchanged (String() of a string, !! of
 * a boolean). scimmy's per-value work (property descriptors, a frozen object, a Proxy per
 * sub-attribute) is about 50 µs a value, so a user with 100 emails cost 5 ms to validate.
 */
interface Sampled {
  /** Sub-attribute names that are returned (scimmy's toJSON drops the others). */
  kept: Set<string>;
  /** Every sub-attribute name, exactly as spelled in the schema. */
  known: Set<string>;
}

const sampledCache = new WeakMap<ResourceSchema, Map<string, Map<string, Sampled>>>();

/** Per holder ("" for core attributes, else the extension URN): the attributes sampled by name. */
function sampledAttributes(rs: ResourceSchema): Map<string, Map<string, Sampled>> {
  let cached = sampledCache.get(rs);
  if (cached) return cached;
  cached = new Map();
  const collect = (definition: SCIMMY.Types.SchemaDefinition, holder: string) => {
    const out = new Map<string, Sampled>();
    for (const a of definition.attributes) {
      if (!(a instanceof SCIMMY.Types.Attribute) || String(a.type) !== "complex" || a.config.multiValued !== true)
        continue;
      const subs = a.subAttributes ?? [];
      const simple = subs.every(
        (s) =>
          (String(s.type) === "string" || String(s.type) === "boolean") &&
          s.config.multiValued !== true &&
          !Array.isArray(s.config.canonicalValues),
      );
      if (!simple || subs.length === 0) continue;
      out.set(a.name, {
        known: new Set(subs.map((s) => s.name)),
        kept: new Set(
          subs.filter((s) => s.config.returned !== false && s.config.returned !== "never").map((s) => s.name),
        ),
      });
    }
    if (out.size > 0) cached!.set(holder, out);
  };
  collect(rs.definition, "");
  for (const a of rs.definition.attributes) if (a instanceof SCIMMY.Types.SchemaDefinition) collect(a, a.id);
  sampledCache.set(rs, cached);
  return cached;
}

const isPlain = (v: unknown): v is Record<string, unknown> =>
  typeof v === "object" && v !== null && !Array.isArray(v) && Object.getPrototypeOf(v) === Object.prototype;

/** What decides scimmy's verdict on one value (see Sampled), or undefined when it may depend on more. */
function signature(value: unknown, known: Set<string>): string | undefined {
  if (!isPlain(value)) return undefined;
  let sig = "";
  for (const [k, v] of Object.entries(value)) {
    if (!known.has(k)) return undefined;
    sig += `${k}\u0000${v === null ? "null" : Array.isArray(v) ? "array" : typeof v}\u0000`;
  }
  return sig;
}

/**
 * The document scimmy is asked about: each sampled attribute carries only the first value of each
 * signature, in order (so a refusal names the same first bad value it would have); `restore` puts
 * every value back into scimmy's answer, as scimmy would have returned it.
 */
function sampleValues(
  rs: ResourceSchema,
  document: ScimDocument,
): { sample: ScimDocument; restore: (plain: ScimDocument) => void } {
  const restores: ((plain: ScimDocument) => void)[] = [];
  let sample = document;
  for (const [holderKey, attributes] of sampledAttributes(rs)) {
    const holder = holderKey === "" ? document : document[holderKey];
    if (!isPlain(holder)) continue;
    for (const [name, info] of attributes) {
      const values = holder[name];
      if (!Array.isArray(values) || values.length < 2) continue;
      const seen = new Set<string>();
      const representatives: unknown[] = [];
      let all = true;
      for (const v of values) {
        const sig = signature(v, info.known);
        if (sig === undefined) {
          all = false;
          break;
        }
        if (seen.has(sig)) continue;
        seen.add(sig);
        representatives.push(v);
      }
      if (!all || representatives.length === values.length) continue;
      if (sample === document) sample = { ...document };
      if (holderKey === "") sample[name] = representatives;
      else sample[holderKey] = { ...(sample[holderKey] as ScimDocument), [name]: representatives };
      restores.push((plain) => {
        const into = holderKey === "" ? plain : plain[holderKey];
        if (!isPlain(into) || !(name in into)) return;
        into[name] = (values as Record<string, unknown>[]).map((v) => {
          const out: Record<string, unknown> = {};
          for (const [k, x] of Object.entries(v)) if (x !== null && info.kept.has(k)) out[k] = x;
          return out;
        });
      });
    }
  }
  return { sample, restore: (plain) => restores.forEach((r) => r(plain)) };
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
