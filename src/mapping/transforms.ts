/**
 * Compiles value sources and transform chains into functions. Compilation happens once per mapping
 * (see compile.ts), so a preview over 10,000 users parses no path, glob or pattern twice.
 */
import { compileGlob, globMatches } from "./glob.js";
import { capture, compileCapture } from "./pattern.js";
import { parseScimPath, resolveScimPath, type ScimPath } from "./scim-path.js";
import type { MetadataSource, ProfileSource, Transform } from "./source-schema.js";
import { parseTemplate, renderTemplate, type Template } from "./template.js";
import { isRecord, sortedUnique, type JsonValue } from "./types.js";

/** What a value source reads: the SCIM user resource and the user's groups. */
export interface SourceInput {
  resource: Record<string, unknown>;
  groups: readonly { displayName: string; externalId?: string | null }[];
}

export type ValueFn = (input: SourceInput) => JsonValue;
type Step = (value: JsonValue, input: SourceInput) => JsonValue;

const pathCache = new Map<string, ScimPath>();
export function cachedPath(text: string): ScimPath {
  let path = pathCache.get(text);
  if (!path) {
    path = parseScimPath(text);
    if (pathCache.size < 10_000) pathCache.set(text, path);
  }
  return path;
}

/** The text a scalar stands for; lists give their first element; objects have none. */
export function textOf(value: unknown): string | null {
  if (typeof value === "string") return value;
  if (typeof value === "number" || typeof value === "boolean") return String(value);
  if (Array.isArray(value)) {
    for (const v of value) {
      const t = textOf(v);
      if (t !== null) return t;
    }
  }
  return null;
}

const isEmpty = (v: JsonValue): boolean => v === null || v === "" || (Array.isArray(v) && v.length === 0);

/** A path's value: one value, or a list when the path crosses an unfiltered multi-valued attribute. */
export function readPath(path: ScimPath, input: SourceInput): JsonValue {
  const { values, multi } = resolveScimPath(input.resource, path);
  if (multi) return values as JsonValue[];
  return (values[0] as JsonValue | undefined) ?? null;
}

function renderWith(template: Template, value: JsonValue, input: SourceInput): string | null {
  return renderTemplate(template, (part) => ("value" in part ? textOf(value) : textOf(readPath(part.path, input))));
}

/** Applies `fn` to a scalar, or to each element of a list (dropping elements that become null). */
const perElement =
  (fn: (v: JsonValue, input: SourceInput) => JsonValue): Step =>
  (value, input) =>
    Array.isArray(value) ? value.map((v) => fn(v, input)).filter((v) => v !== null) : fn(value, input);

function compileTransform(t: Transform): Step {
  if (t === "lowercase") return perElement((v) => (typeof v === "string" ? v.toLowerCase() : v));
  if (t === "uppercase") return perElement((v) => (typeof v === "string" ? v.toUpperCase() : v));
  if (t === "trim") return perElement((v) => (typeof v === "string" ? v.trim() : v));
  if ("template" in t) {
    const template = parseTemplate(t.template);
    return perElement((v, input) => renderWith(template, v, input));
  }
  if ("default" in t) {
    const fallback = t.default;
    return (v) => (isEmpty(v) ? fallback : v);
  }
  if ("lookup" in t) {
    const ignoreCase = t.ignoreCase === true;
    const table = new Map(Object.entries(t.lookup).map(([k, v]) => [ignoreCase ? k.toLowerCase() : k, v]));
    const keep = t.otherwise === "keep";
    return perElement((v) => {
      const key = textOf(v);
      if (key === null || isRecord(v)) return keep ? v : null;
      const hit = table.get(ignoreCase ? key.toLowerCase() : key);
      return hit !== undefined ? hit : keep ? v : null;
    });
  }
  const pattern = compileCapture(t.capture, t.group, t.ignoreCase === true);
  return perElement((v) => {
    const text = typeof v === "string" || typeof v === "number" ? String(v) : null;
    return text === null ? null : capture(pattern, text);
  });
}

function chain(first: ValueFn, transforms: readonly Transform[] | undefined): ValueFn {
  if (!transforms || transforms.length === 0) return first;
  const steps = transforms.map(compileTransform);
  return (input) => steps.reduce<JsonValue>((value, step) => step(value, input), first(input));
}

export function compileSource(source: ProfileSource | MetadataSource): ValueFn {
  if (typeof source === "string") {
    const path = cachedPath(source);
    return (input) => readPath(path, input);
  }
  if ("value" in source) {
    const constant = source.value;
    return () => constant;
  }
  if ("template" in source) {
    const template = parseTemplate(source.template);
    return chain((input) => renderWith(template, null, input), source.transforms);
  }
  if ("from" in source) {
    const paths = (Array.isArray(source.from) ? source.from : [source.from]).map(cachedPath);
    const first: ValueFn = (input) => {
      for (const path of paths) {
        const value = readPath(path, input);
        if (!isEmpty(value)) return value;
      }
      return null;
    };
    return chain(first, source.transforms);
  }
  const attribute = source.groups;
  const glob = source.match === undefined ? undefined : compileGlob(source.match);
  const steps = chain((input) => {
    const names: string[] = [];
    for (const g of input.groups) {
      const name = attribute === "displayName" ? g.displayName : g.externalId;
      if (name && (!glob || globMatches(glob, name))) names.push(name);
    }
    return names;
  }, source.transforms);
  // Sorted, so that app_metadata never depends on the order groups were loaded in.
  return (input) => {
    const value = steps(input);
    return Array.isArray(value) ? sortedUnique(value.map(textOf).filter((t): t is string => t !== null)) : value;
  };
}
