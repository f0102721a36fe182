import { foldCase } from "../../directory/fold.js";
import { invalidPath, invalidValue, isBridgeError } from "../../errors.js";
import { scimLimits, tooManyPatchValues, tooManyValues } from "../limits.js";
import { normalizeValue, type ScimDocument } from "../normalize.js";
import { resolvePath, type AttributeInfo, type ResourceSchema, type SchemaInfo } from "../schema.js";
import { elementFromFilter, matchesElement } from "./match.js";
import { parsePatchPath, type PatchOpName, type PatchOperation, type PatchPath } from "./message.js";

/**
 * Applies PatchOp operations to a resource's canonical document, in memory; the caller validates the
 * result and stores it in one transaction, so either every operation of a request applies or none.
 * Rules beyond RFC 7644 §3.5.2, each from what Entra and Okta send (Microsoft Learn "Known issues and
 * resolutions with SCIM 2.0 protocol compliance of the Microsoft Entra user provisioning service"):
 * - a no-path value object is expanded: dotted keys ("name.givenName") and extension URN keys
 *   ("urn:…:User:employeeNumber") address attributes, as Entra sends them;
 * - `add` on a single-valued attribute replaces it (Entra deprovisions with op "Add" on active);
 * - values are normalised like request bodies: null means absent, "False" is false, a bare manager id
 *   is {value};
 * - add/replace through a value filter that matches nothing creates the value the filter describes;
 * - unknown and read-only attributes (id, meta, schemas, password) are ignored, as in bodies.
 */
export interface TargetedOperation {
  index: number;
  op: PatchOpName;
  path: PatchPath;
  value: unknown;
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);

/** No-path operations become one operation per attribute they name. */
export function expandOperations(rs: ResourceSchema, operations: readonly PatchOperation[]): TargetedOperation[] {
  const out: TargetedOperation[] = [];
  for (const operation of operations) {
    if (operation.path) {
      out.push({ ...operation, path: operation.path });
      continue;
    }
    for (const [key, value] of Object.entries(operation.value as Record<string, unknown>)) {
      const extension = rs.extensions.find((e) => e.urn.toLowerCase() === key.toLowerCase());
      const entries: [string, unknown][] =
        extension && isObject(value)
          ? Object.entries(value).map(([k, v]) => [`${extension.urn}:${k}`, v])
          : [[key, value]];
      for (const [pathText, v] of entries) {
        try {
          out.push({ index: operation.index, op: operation.op, path: parsePatchPath(pathText), value: v });
        } catch (err) {
          if (!isBridgeError(err)) throw err; // a key that is not even a path names no attribute: ignored
        }
      }
    }
  }
  return out;
}

/** The object that holds an attribute: the document for core attributes, its extension object otherwise. */
function holderOf(document: ScimDocument, schema: SchemaInfo, create: boolean): Record<string, unknown> | undefined {
  if (!schema.extension) return document;
  const existing = document[schema.urn];
  if (isObject(existing)) return existing;
  if (!create) return undefined;
  const made: Record<string, unknown> = {};
  document[schema.urn] = made;
  return made;
}

const single = (attribute: AttributeInfo): AttributeInfo => ({ ...attribute, multiValued: false });

function setOrDelete(holder: Record<string, unknown>, key: string, value: unknown): void {
  if (value === undefined) delete holder[key];
  else holder[key] = value;
}

function applyOne(rs: ResourceSchema, document: ScimDocument, operation: TargetedOperation): void {
  const { op, path, value } = operation;
  const resolved = resolvePath(rs, path.attrPath);
  if (!resolved) return; // unknown attribute or schema: ignored
  if (!resolved.attribute) {
    // The extension itself: remove it, or add/replace each attribute it carries.
    if (path.filter || path.sub)
      throw invalidPath(`operation ${operation.index}: invalid path ${JSON.stringify(path.text)}`);
    if (op === "remove") delete document[resolved.schema.urn];
    else if (isObject(value)) {
      for (const [k, v] of Object.entries(value)) {
        applyOne(rs, document, { ...operation, path: parsePatchPath(`${resolved.schema.urn}:${k}`), value: v });
      }
    }
    return;
  }
  const { attribute, schema } = resolved;
  if (attribute.readOnly || (resolved.sub?.readOnly ?? false)) return;
  if (path.filter && resolved.sub)
    throw invalidPath(`operation ${operation.index}: invalid path ${JSON.stringify(path.text)}`);
  const sub = resolved.sub ?? (path.sub !== undefined ? attribute.sub.get(path.sub.toLowerCase()) : undefined);
  if (path.sub !== undefined && !sub) return; // unknown sub-attribute: ignored
  const holder = holderOf(document, schema, op !== "remove");
  if (!holder) return;
  const name = attribute.name;

  if (!attribute.multiValued) {
    if (path.filter)
      throw invalidPath(`operation ${operation.index}: "${name}" is single-valued and takes no value filter`);
    if (sub) {
      const parent = isObject(holder[name]) ? { ...(holder[name] as Record<string, unknown>) } : {};
      const v = op === "remove" ? undefined : normalizeValue(sub, value);
      if (op === "add" && v === undefined) return;
      setOrDelete(parent, sub.name, v);
      setOrDelete(holder, name, Object.keys(parent).length > 0 ? parent : undefined);
      return;
    }
    const v = op === "remove" ? undefined : normalizeValue(attribute, value);
    if (op === "add" && v === undefined) return;
    // RFC 7644 §3.5.2.1/§3.5.2.3: a complex value's sub-attributes are merged, others left unchanged.
    const merged =
      attribute.type === "complex" && op !== "remove" && isObject(holder[name]) && isObject(v)
        ? { ...(holder[name] as object), ...v }
        : v;
    setOrDelete(holder, name, merged);
    return;
  }

  const copy = (e: unknown): unknown => (isObject(e) ? { ...e } : e);
  // The working document is this request's one copy (applyToDocument): values are edited in place,
  // so an operation costs in proportion to the attribute's values and its own, never the request's.
  let values: unknown[] = Array.isArray(holder[name]) ? (holder[name] as unknown[]) : [];
  const touched = new Set<unknown>();
  if (path.filter) {
    const filter = path.filter;
    const matches = (e: unknown) => isObject(e) && matchesElement(filter, e, attribute);
    if (op === "remove") {
      if (sub) for (const e of values) if (matches(e)) delete (e as Record<string, unknown>)[sub.name];
      if (!sub) values = values.filter((e) => !matches(e));
    } else {
      const v = sub ? normalizeValue(sub, value) : normalizeValue(single(attribute), value);
      if (!sub && v !== undefined && !isObject(v))
        throw invalidValue(`operation ${operation.index}: "${name}" takes an object value here`);
      const hits = values.filter(matches) as Record<string, unknown>[];
      if (hits.length === 0 && v !== undefined) {
        const created = {
          ...elementFromFilter(filter, attribute, path.text),
          ...(sub ? { [sub.name]: v } : (v as object)),
        };
        values.push(created);
        touched.add(created);
      }
      for (const e of hits) {
        if (sub) setOrDelete(e, sub.name, v);
        else if (op === "replace") {
          for (const k of Object.keys(e)) delete e[k];
          Object.assign(
            e,
            v === undefined ? {} : { ...tryElementFromFilter(filter, attribute, path.text), ...(v as object) },
          );
        } else Object.assign(e, v);
        touched.add(e);
      }
    }
  } else if (sub) {
    const v = op === "remove" ? undefined : normalizeValue(sub, value);
    if (values.length === 0 && v !== undefined) values.push({});
    for (const e of values) {
      if (!isObject(e)) continue;
      setOrDelete(e, sub.name, v);
      touched.add(e);
    }
  } else if (op === "remove") {
    // Entra removes members/values by listing them: only those go (Microsoft Learn "Develop and plan
    // provisioning for a SCIM endpoint in Microsoft Entra ID", group PATCH examples).
    const listed = normalizeValue(attribute, value) as unknown[] | undefined;
    if (listed === undefined) values = [];
    else {
      // Keyed: each listed value is looked up in an index of the listed ones, not compared with each value.
      const index = new ValueIndex(attribute, listed);
      values = values.filter((e) => !index.describedBy(e));
    }
  } else {
    const given = (normalizeValue(attribute, value) as unknown[] | undefined) ?? [];
    if (op === "replace") values = given.map(copy);
    let added = values;
    if (op === "add") {
      const index = new ValueIndex(attribute, values);
      added = given.filter((e) => !index.describes(e)).map(copy);
      values.push(...added);
    }
    for (const e of added) touched.add(e);
  }
  if (values.length > scimLimits.maxValuesPerAttribute) throw tooManyValues(name);
  demoteOtherPrimaries(values, touched);
  setOrDelete(holder, name, values.length > 0 ? values : undefined);
}

function tryElementFromFilter(...args: Parameters<typeof elementFromFilter>): Record<string, unknown> {
  try {
    return elementFromFilter(...args);
  } catch {
    return {};
  }
}

/**
 * "Does a value described by `wanted` (possibly partial, e.g. {value}) exist?" in O(1) per question:
 * the values are indexed by the sub-attributes a question names, with the schema's case rules
 * (caseExact=false sub-attributes compared folded). One index per distinct set of names asked about;
 * normalised values carry only schema sub-attributes, so there are few such sets.
 */
class ValueIndex {
  private readonly bySignature = new Map<string, Set<string>>();
  private primitives?: Set<string>;

  constructor(
    private readonly attribute: AttributeInfo,
    private readonly values: readonly unknown[],
  ) {}

  /** Some indexed value is described by `wanted` (every key of `wanted` equal in it). */
  describes(wanted: unknown): boolean {
    if (!isObject(wanted)) {
      this.primitives ??= new Set(this.values.filter((v) => !isObject(v)).map(primitiveKey));
      return this.primitives.has(primitiveKey(wanted));
    }
    const keys = Object.keys(wanted).sort();
    if (keys.length === 0) return false;
    const key = elementKey(this.attribute, wanted, keys);
    return key !== undefined && this.indexFor(keys).has(key);
  }

  /** `actual` is described by some indexed value (the indexed values are the partial ones). */
  describedBy(actual: unknown): boolean {
    if (!isObject(actual)) {
      this.primitives ??= new Set(this.values.filter((v) => !isObject(v)).map(primitiveKey));
      return this.primitives.has(primitiveKey(actual));
    }
    for (const [signature, set] of this.partialIndexes()) {
      const key = elementKey(this.attribute, actual, signature);
      if (key !== undefined && set.has(key)) return true;
    }
    return false;
  }

  private indexFor(keys: string[]): Set<string> {
    const signature = keys.join("\u0000");
    let set = this.bySignature.get(signature);
    if (!set) {
      set = new Set();
      for (const v of this.values) {
        if (!isObject(v)) continue;
        const key = elementKey(this.attribute, v, keys);
        if (key !== undefined) set.add(key);
      }
      this.bySignature.set(signature, set);
    }
    return set;
  }

  private partial?: [string[], Set<string>][];

  /** The indexed values grouped by the keys they carry. */
  private partialIndexes(): [string[], Set<string>][] {
    if (this.partial) return this.partial;
    const groups = new Map<string, [string[], Set<string>]>();
    for (const v of this.values) {
      if (!isObject(v)) continue;
      const keys = Object.keys(v).sort();
      if (keys.length === 0) continue;
      const key = elementKey(this.attribute, v, keys);
      if (key === undefined) continue;
      const signature = keys.join("\u0000");
      const group = groups.get(signature) ?? [keys, new Set<string>()];
      group[1].add(key);
      groups.set(signature, group);
    }
    return (this.partial = [...groups.values()]);
  }
}

const primitiveKey = (v: unknown): string => `${typeof v}:${String(v)}`;

/** The comparison key of `element` restricted to `keys`; undefined when a value cannot equal anything (an object). */
function elementKey(
  attribute: AttributeInfo,
  element: Record<string, unknown>,
  keys: readonly string[],
): string | undefined {
  let key = "";
  for (let i = 0; i < keys.length; i++) {
    const k = keys[i]!;
    const v = element[k];
    if (typeof v === "object" && v !== null) return undefined;
    const sub = attribute.sub.get(k) ?? attribute.sub.get(k.toLowerCase());
    if (i > 0) key += "\u0000";
    key += sub && !sub.caseExact && typeof v === "string" ? `string:${foldCase(v)}` : primitiveKey(v);
  }
  return key;
}

/** RFC 7644 §3.5.2: setting one value primary makes every other value of the attribute non-primary. */
function demoteOtherPrimaries(values: unknown[], touched: Set<unknown>): void {
  const promoted = [...touched].some((e) => isObject(e) && e.primary === true);
  if (!promoted) return;
  for (const e of values) if (isObject(e) && !touched.has(e) && e.primary === true) e.primary = false;
}

export function applyToDocument(
  rs: ResourceSchema,
  document: ScimDocument,
  operations: readonly TargetedOperation[],
): ScimDocument {
  let carried = 0;
  for (const operation of operations) carried += Array.isArray(operation.value) ? operation.value.length : 1;
  if (carried > scimLimits.maxPatchValues) throw tooManyPatchValues();
  // The request's one copy: operations edit it in place.
  const working = structuredClone(document);
  for (const operation of operations) applyOne(rs, working, operation);
  return working;
}
