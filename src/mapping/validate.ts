/**
 * Validation with messages for people: every problem as `<path>: <reason>`, where the path is the
 * place in the file (`roles.rules[2].when.group`) and the reason says what to write instead.
 * zod's raw union errors ("Invalid input") are resolved to the branch the author evidently meant.
 */
import type { z } from "zod";
import { BridgeError } from "../errors.js";
import { mappingSchema, type MappingDocument } from "./schema.js";

export interface MappingIssue {
  path: string;
  message: string;
  /** 1-based position in the source file, when the document came from loadMappingFile. */
  line?: number;
  column?: number;
}

export type MappingValidation = { ok: true; mapping: MappingDocument } | { ok: false; issues: MappingIssue[] };

/** A mapping that failed validation; `issues` lists every problem. */
export class MappingError extends BridgeError {
  readonly issues: MappingIssue[];
  constructor(issues: MappingIssue[], source?: string) {
    const lines = issues.map(
      (i) => `  ${i.line === undefined ? "" : `${source ?? ""}:${i.line}:${i.column}: `}${i.path}: ${i.message}`,
    );
    super("invalidValue", `invalid mapping${source ? ` ${source}` : ""}:\n${lines.join("\n")}`);
    this.name = "MappingError";
    this.issues = issues;
  }
}

type Key = PropertyKey;
type Issue = z.core.$ZodIssue;

export function formatPath(path: readonly Key[]): string {
  let out = "";
  for (const k of path) {
    if (typeof k === "number") out += `[${k}]`;
    else if (typeof k === "string" && /^[A-Za-z_$][\w$-]*$/.test(k)) out += out === "" ? k : `.${k}`;
    else out += `[${JSON.stringify(String(k))}]`;
  }
  return out === "" ? "(document)" : out;
}

// Keys people reach for that the bridge refuses on purpose, with the reason (docs/design.md, "What Auth0 sees").
const refusedKeys: Record<string, string> = {
  password: "the bridge never sets a password: a password reset through the Management API lifts a block",
  blocked: "blocking follows policies.deactivation/deletion and holds, not a profile field",
  email_verified: "new users get email_verified: false; verification is left to Auth0",
};

function describe(v: unknown): string {
  if (v === null) return "null";
  if (Array.isArray(v)) return "a list";
  if (typeof v === "object") return "an object";
  if (typeof v === "string") return `"${v}"`;
  return String(v);
}

function flatten(issues: readonly Issue[], base: readonly Key[], out: MappingIssue[]): void {
  for (const issue of issues) {
    const path = [...base, ...issue.path];
    switch (issue.code) {
      case "unrecognized_keys":
        for (const key of issue.keys) {
          const allowed = allowedKeys(path);
          const hint = allowed.length > 0 ? ` (allowed: ${allowed.join(", ")})` : "";
          out.push({ path: formatPath([...path, key]), message: refusedKeys[key] ?? `unknown key "${key}"${hint}` });
        }
        break;
      case "invalid_union": {
        if (issue.input === undefined) {
          out.push({ path: formatPath(path), message: "required" });
          break;
        }
        const best = bestBranch(issue.errors);
        if (best) flatten(best, path, out);
        else out.push({ path: formatPath(path), message: issue.message });
        break;
      }
      case "invalid_key":
        flatten(issue.issues, path, out);
        break;
      case "invalid_type":
        out.push({
          path: formatPath(path),
          message:
            issue.input === undefined
              ? `required: expected ${issue.expected}`
              : path.length === 0
                ? `the mapping must be an object (got ${describe(issue.input)})`
                : `expected ${issue.expected}, got ${describe(issue.input)}`,
        });
        break;
      case "invalid_value": {
        const options = issue.values.map((v) => JSON.stringify(v)).join(", ");
        const message =
          issue.input === undefined
            ? `required: one of ${options}`
            : `expected one of ${options} (got ${describe(issue.input)})`;
        out.push({ path: formatPath(path), message });
        break;
      }
      default:
        out.push({ path: formatPath(path), message: issue.message });
    }
  }
}

/** How badly a union branch missed the input's shape; the branch that missed least is the one meant. */
function shapeMisses(issues: readonly Issue[]): number {
  let misses = 0;
  for (const issue of issues) {
    const atRoot = issue.path.length === 0;
    if (issue.code === "unrecognized_keys") misses += issue.keys.length;
    else if (issue.path.length === 1 && issue.input === undefined)
      misses += 1; // a required key is missing
    else if (issue.code === "invalid_type" && atRoot) misses += 10;
    else if (issue.code === "invalid_value" && atRoot) misses += typeof issue.input === "string" ? 1 : 10;
    else if (issue.code === "invalid_union" && atRoot) misses += 5;
  }
  return misses;
}

function bestBranch(branches: readonly (readonly Issue[])[]): readonly Issue[] | undefined {
  const scored = branches
    .map((issues) => ({ issues, misses: shapeMisses(issues) }))
    .sort((a, b) => a.misses - b.misses);
  const [first, second] = scored;
  return first && (!second || first.misses < second.misses) ? first.issues : undefined;
}

// Walks the schema to list the keys an object at `path` may have, for "unknown key" hints.
function allowedKeys(path: readonly Key[]): string[] {
  let layer: z.core.$ZodType[] = [mappingSchema];
  for (const key of [...path, undefined]) {
    const next: z.core.$ZodType[] = [];
    const visit = (s: z.core.$ZodType): void => {
      const def = s._zod.def as unknown as Record<string, unknown> & { type: string };
      const inner = (def.innerType ?? def.in) as z.core.$ZodType | undefined;
      if (inner) return visit(inner);
      if (def.type === "union") return (def.options as z.core.$ZodType[]).forEach(visit);
      if (key === undefined) {
        if (def.type === "object") next.push(s);
        return;
      }
      if (def.type === "object") {
        const child = (def.shape as Record<string, z.core.$ZodType>)[String(key)];
        if (child) next.push(child);
      } else if (def.type === "array" && typeof key === "number") next.push(def.element as z.core.$ZodType);
      else if (def.type === "record") next.push(def.valueType as z.core.$ZodType);
    };
    layer.forEach(visit);
    layer = next;
  }
  const keys = layer.flatMap((s) => Object.keys((s._zod.def as unknown as { shape: object }).shape));
  return [...new Set(keys)];
}

/** Own `__proto__` keys (YAML and JSON.parse create them) would be dropped silently by zod: refuse them by name. */
function protoKeys(value: unknown, path: Key[], out: MappingIssue[]): void {
  if (typeof value !== "object" || value === null) return;
  for (const [key, child] of Object.entries(value)) {
    const at = [...path, Array.isArray(value) ? Number(key) : key];
    if (key === "__proto__") out.push({ path: formatPath(at), message: '"__proto__" is not allowed as a key' });
    else protoKeys(child, at, out);
  }
}

export function validateMapping(input: unknown): MappingValidation {
  const refused: MappingIssue[] = [];
  protoKeys(input, [], refused);
  if (refused.length > 0) return { ok: false, issues: refused };
  const result = mappingSchema.safeParse(input, { reportInput: true });
  if (result.success) return { ok: true, mapping: result.data };
  const issues: MappingIssue[] = [];
  flatten(result.error.issues, [], issues);
  return { ok: false, issues: dedupe(issues) };
}

const dedupe = (issues: MappingIssue[]): MappingIssue[] => {
  const seen = new Set<string>();
  return issues.filter((i) => !seen.has(`${i.path}\n${i.message}`) && seen.add(`${i.path}\n${i.message}`));
};

/** Validates and returns the complete document (policies filled); throws MappingError listing every problem. */
export function parseMapping(input: unknown): MappingDocument {
  const result = validateMapping(input);
  if (!result.ok) throw new MappingError(result.issues);
  return result.mapping;
}
