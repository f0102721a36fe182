import { resolvePath, type ResourceSchema } from "./schema.js";
import type { ScimDocument } from "./normalize.js";

/**
 * `attributes` and `excludedAttributes` (RFC 7644 §3.9, §3.4.2.5). id and schemas are always
 * returned. Names in any case, URN-qualified or not; unknown names are ignored. A value filter inside
 * `attributes` (`emails[type eq "work"]`, which the Microsoft suite sends though RFC 7644 §3.9 has no such
 * form) selects the whole attribute.
 */
type Selection = Map<string, Map<string, Set<string> | "all"> | "all">;

export interface Projection {
  include?: Selection;
  exclude?: Selection;
}

const list = (value: unknown): string[] => {
  const items = Array.isArray(value) ? value : typeof value === "string" ? [value] : [];
  return items
    .filter((v): v is string => typeof v === "string")
    .flatMap((v) => v.split(","))
    .map((v) => v.trim().replace(/\[.*\]$/s, ""))
    .filter((v) => v.length > 0);
};

function select(rs: ResourceSchema, names: string[]): Selection | undefined {
  if (names.length === 0) return undefined;
  const selection: Selection = new Map();
  for (const name of names) {
    const resolved = resolvePath(rs, name);
    if (!resolved) continue;
    const holderKey = resolved.schema.extension ? resolved.schema.urn : "";
    if (!resolved.attribute) {
      selection.set(holderKey, "all");
      continue;
    }
    let holder = selection.get(holderKey);
    if (holder === "all") continue;
    if (!holder) selection.set(holderKey, (holder = new Map()));
    const current = holder.get(resolved.attribute.name);
    if (!resolved.sub) holder.set(resolved.attribute.name, "all");
    else if (current !== "all") holder.set(resolved.attribute.name, (current ?? new Set()).add(resolved.sub.name));
  }
  return selection;
}

export function parseProjection(rs: ResourceSchema, attributes: unknown, excludedAttributes: unknown): Projection {
  return { include: select(rs, list(attributes)), exclude: select(rs, list(excludedAttributes)) };
}

/** Whether a core attribute appears in the response: lets callers skip loading what is not wanted (members). */
export function returns(projection: Projection, attribute: string): boolean {
  const pick = (s: Selection | undefined) => {
    const core = s?.get("");
    return core === "all" ? "all" : core?.get(attribute);
  };
  if (projection.include) return pick(projection.include) !== undefined;
  return pick(projection.exclude) !== "all";
}

const pickSubs = (value: unknown, subs: Set<string>, keep: boolean): unknown => {
  const one = (v: unknown): unknown => {
    if (typeof v !== "object" || v === null) return keep ? undefined : v;
    const entries = Object.entries(v).filter(([k]) => subs.has(k) === keep);
    return entries.length > 0 ? Object.fromEntries(entries) : undefined;
  };
  if (Array.isArray(value)) {
    const items = value.map(one).filter((v) => v !== undefined);
    return items.length > 0 ? items : undefined;
  }
  return one(value);
};

function applySelection(
  holder: Record<string, unknown>,
  selection: Map<string, Set<string> | "all">,
  keep: boolean,
): Record<string, unknown> {
  const out: Record<string, unknown> = keep ? {} : { ...holder };
  for (const [name, subs] of selection) {
    if (!(name in holder)) continue;
    const value = subs === "all" ? (keep ? holder[name] : undefined) : pickSubs(holder[name], subs, keep);
    if (value === undefined) delete out[name];
    else out[name] = value;
  }
  return out;
}

export function project(document: ScimDocument, projection: Projection): ScimDocument {
  const { include, exclude } = projection;
  if (!include && !exclude) return document;
  const keep = include !== undefined;
  const selection = (include ?? exclude)!;
  const coreSelection = selection.get("");
  let out: ScimDocument =
    coreSelection === "all"
      ? keep
        ? { ...document }
        : {}
      : applySelection(document, coreSelection ?? new Map(), keep);
  for (const [key, holder] of selection) {
    if (key === "" || !(key in document)) continue;
    const ext = document[key] as Record<string, unknown>;
    const value = holder === "all" ? (keep ? ext : undefined) : applySelection(ext, holder, keep);
    if (value === undefined || Object.keys(value).length === 0) delete out[key];
    else out[key] = value;
  }
  if (!keep) for (const key of selection.keys()) if (key !== "" && selection.get(key) === "all") delete out[key];
  // Returned "always" (RFC 7643 §7): id; schemas describes whatever is returned.
  out = { schemas: document.schemas, id: document.id, ...out };
  return out;
}

/** Whether the request names an extension in `attributes` (its attributes are returned "request"). */
export const requests = (projection: Projection, urn: string): boolean => projection.include?.has(urn) === true;
