/**
 * SCIM attribute paths (RFC 7644 §3.10 attrPath, plus one value filter per segment as in §3.5.2):
 * `userName`, `name.givenName`, `emails[primary eq true].value`, `roles[type eq "x" and value sw "App."].value`,
 * `urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department`, `urn:…:User:manager.value`.
 *
 * A hand-written tokenizer, not a regex: paths come from mapping files, and a parser that fails
 * loudly with a position is both safer (no ReDoS) and kinder to the operator.
 * Attribute names are case-insensitive and string comparisons in filters ignore case (RFC 7643 §2.1,
 * caseExact=false for the sub-attributes IdPs filter on: type, value, display, primary).
 */
import { isRecord, type Scalar } from "./types.js";

const maxPathLength = 256;

type CompareOp = "eq" | "ne" | "co" | "sw" | "ew" | "gt" | "ge" | "lt" | "le";
export interface Comparison {
  attr: string;
  op: CompareOp | "pr";
  value?: Scalar;
}
/** OR of ANDs, the same normal form scimmy's Filter uses. */
export type ValueFilter = Comparison[][];

export interface PathSegment {
  name: string;
  filter?: ValueFilter;
}

export interface ScimPath {
  text: string;
  /** Extension schema URN the path starts in, if any. */
  schema?: string;
  segments: PathSegment[];
}

export class PathSyntaxError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "PathSyntaxError";
  }
}

const compareOps = new Set<string>(["eq", "ne", "co", "sw", "ew", "gt", "ge", "lt", "le"]);
const isNameStart = (c: string): boolean => /^[A-Za-z]$/.test(c);
const isNameChar = (c: string): boolean => /^[A-Za-z0-9_$-]$/.test(c);

class Reader {
  pos = 0;
  constructor(readonly text: string) {}
  peek(): string {
    return this.text[this.pos] ?? "";
  }
  fail(reason: string): never {
    throw new PathSyntaxError(`${reason} at character ${this.pos + 1} of "${this.text}"`);
  }
  skipSpaces(): void {
    while (this.peek() === " ") this.pos++;
  }
  name(what: string): string {
    const start = this.pos;
    if (!isNameStart(this.peek())) this.fail(`expected ${what}`);
    while (isNameChar(this.peek())) this.pos++;
    return this.text.slice(start, this.pos);
  }
  word(): string {
    const start = this.pos;
    while (/^[A-Za-z0-9.+-]$/.test(this.peek())) this.pos++;
    return this.text.slice(start, this.pos);
  }
}

function readValue(r: Reader): Scalar {
  if (r.peek() === '"') {
    r.pos++;
    let out = "";
    for (;;) {
      const c = r.peek();
      if (c === "") r.fail("unterminated string");
      r.pos++;
      if (c === '"') return out;
      if (c === "\\") {
        const next = r.peek();
        if (next === "") r.fail("unterminated string");
        out += next;
        r.pos++;
      } else out += c;
    }
  }
  const word = r.word();
  if (word === "true") return true;
  if (word === "false") return false;
  if (word === "null") return null;
  if (word !== "" && Number.isFinite(Number(word))) return Number(word);
  return r.fail(word === "" ? "expected a value" : `"${word}" is not a value (quote strings)`);
}

function readFilter(r: Reader): ValueFilter {
  const alternatives: ValueFilter = [];
  let conjunction: Comparison[] = [];
  for (;;) {
    r.skipSpaces();
    const attr = r.name("a sub-attribute name in the filter");
    r.skipSpaces();
    const op = r.word().toLowerCase();
    if (op === "pr") conjunction.push({ attr, op });
    else if (compareOps.has(op)) {
      r.skipSpaces();
      conjunction.push({ attr, op: op as CompareOp, value: readValue(r) });
    } else
      r.fail(op === "" ? "expected an operator (eq, ne, co, sw, ew, gt, ge, lt, le, pr)" : `unknown operator "${op}"`);
    r.skipSpaces();
    if (r.peek() === "]") {
      alternatives.push(conjunction);
      return alternatives;
    }
    const logical = r.word().toLowerCase();
    if (logical === "or") {
      alternatives.push(conjunction);
      conjunction = [];
    } else if (logical !== "and") r.fail('expected "and", "or" or "]"');
  }
}

/** Parses a path; throws PathSyntaxError naming the position. */
export function parseScimPath(text: string): ScimPath {
  if (text.length === 0) throw new PathSyntaxError("the path is empty");
  if (text.length > maxPathLength) throw new PathSyntaxError(`the path is longer than ${maxPathLength} characters`);
  let schema: string | undefined;
  let offset = 0;
  if (text.toLowerCase().startsWith("urn:")) {
    // The URN itself contains ':' and '.', the attribute part contains no ':' → split at the last ':' before any filter.
    const bracket = text.indexOf("[");
    const cut = text.lastIndexOf(":", bracket === -1 ? text.length : bracket);
    schema = text.slice(0, cut);
    const rest = text.slice(cut + 1);
    offset = cut + 1;
    if (rest === "") throw new PathSyntaxError(`"${text}" names a schema URN but no attribute after it`);
  }
  const r = new Reader(text);
  r.pos = offset;
  const segments: PathSegment[] = [];
  for (;;) {
    const segment: PathSegment = { name: r.name("an attribute name") };
    if (r.peek() === "[") {
      r.pos++;
      segment.filter = readFilter(r);
      r.pos++; // the closing ']'
    }
    segments.push(segment);
    if (r.pos === text.length) break;
    if (r.peek() !== ".") r.fail(`unexpected "${r.peek()}"`);
    r.pos++;
  }
  return schema === undefined ? { text, segments } : { text, schema, segments };
}

/** Case-insensitive own-property lookup (SCIM attribute names are case-insensitive). */
export function getAttribute(obj: Record<string, unknown>, name: string): unknown {
  if (Object.hasOwn(obj, name)) return obj[name];
  const lower = name.toLowerCase();
  for (const key of Object.keys(obj)) if (key.toLowerCase() === lower) return obj[key];
  return undefined;
}

const asBoolean = (v: unknown): boolean | undefined => {
  if (typeof v === "boolean") return v;
  // Entra sends "True"/"False" strings (Microsoft Learn "Known issues … SCIM 2.0 protocol
  // compliance"); compare them as booleans.
  if (typeof v === "string" && /^(true|false)$/i.test(v)) return v.toLowerCase() === "true";
  return undefined;
};

function compare(actual: unknown, c: Comparison): boolean {
  if (c.op === "pr")
    return actual !== undefined && actual !== null && actual !== "" && !(Array.isArray(actual) && actual.length === 0);
  const expected = c.value;
  if (expected === null || expected === undefined) {
    const absent = actual === undefined || actual === null;
    return c.op === "ne" ? !absent : c.op === "eq" && absent;
  }
  if (actual === undefined || actual === null || isRecord(actual) || Array.isArray(actual)) return c.op === "ne";
  const a = asBoolean(actual);
  const e = asBoolean(expected);
  if (a !== undefined && e !== undefined && (typeof actual === "boolean" || typeof expected === "boolean")) {
    return c.op === "eq" ? a === e : c.op === "ne" && a !== e;
  }
  if (typeof actual === "number" && typeof expected === "number") {
    const d = actual - expected;
    return { eq: d === 0, ne: d !== 0, gt: d > 0, ge: d >= 0, lt: d < 0, le: d <= 0, co: false, sw: false, ew: false }[
      c.op
    ];
  }
  const x = String(actual).toLowerCase();
  const y = String(expected).toLowerCase();
  switch (c.op) {
    case "eq":
      return x === y;
    case "ne":
      return x !== y;
    case "co":
      return x.includes(y);
    case "sw":
      return x.startsWith(y);
    case "ew":
      return x.endsWith(y);
    case "gt":
      return x > y;
    case "ge":
      return x >= y;
    case "lt":
      return x < y;
    case "le":
      return x <= y;
  }
}

const matchesFilter = (element: unknown, filter: ValueFilter): boolean =>
  isRecord(element) && filter.some((all) => all.every((c) => compare(getAttribute(element, c.attr), c)));

export interface Resolved {
  values: unknown[];
  /** The path crossed a multi-valued attribute without a filter: the result is a list, not one value. */
  multi: boolean;
}

/**
 * Resolves a path against a SCIM resource. A filtered segment keeps its first match only
 * (primary and type are unique per multi-valued attribute), so `emails[primary eq true].value` is one value.
 */
export function resolveScimPath(resource: Record<string, unknown>, path: ScimPath): Resolved {
  let current: unknown[] = [path.schema === undefined ? resource : getAttribute(resource, path.schema)];
  let multi = false;
  for (const segment of path.segments) {
    const next: unknown[] = [];
    for (const holder of current) {
      if (!isRecord(holder)) continue;
      const found = getAttribute(holder, segment.name);
      if (found === undefined || found === null) continue;
      if (!Array.isArray(found)) {
        if (!segment.filter || matchesFilter(found, segment.filter)) next.push(found);
        continue;
      }
      if (segment.filter) {
        const filter = segment.filter;
        const first = found.find((element) => matchesFilter(element, filter));
        if (first !== undefined) next.push(first);
      } else {
        multi = true;
        next.push(...found);
      }
    }
    current = next;
  }
  return { values: current.filter((v) => v !== undefined && v !== null), multi };
}
