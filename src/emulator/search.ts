/**
 * The subset of Auth0's user search v3 (Lucene query syntax) the bridge can use (Auth0 docs
 * "User Search Query Syntax"): `field:value`, `field:"phrase"`, `field:(a OR b)`,
 * `_exists_:field`, AND / OR / NOT (also && || ! -), parentheses, prefix
 * wildcards (`jo*`) and suffix wildcards with ≥3 literal characters (`*usa`), ranges `[a TO b}`
 * with `*` for an open end, nested paths such as `app_metadata.scim.externalId` and
 * `identities.connection` (array levels are skipped). Values of email, name, given_name,
 * family_name and nickname match case-insensitively; everything else is case-sensitive. Empty or
 * null metadata is not indexed. The implicit operator between terms is OR, as in Lucene.
 */
import { invalidQuery } from "./errors.js";
import type { User } from "./types.js";
import { isPlainObject } from "./util.js";

type Value =
  | { kind: "word"; text: string }
  | { kind: "phrase"; text: string }
  | { kind: "range"; lo: string; hi: string; loInclusive: boolean; hiInclusive: boolean };

type Node =
  | { type: "or" | "and"; items: Node[] }
  | { type: "not"; item: Node }
  | { type: "term"; field?: string; value: Value }
  | { type: "exists"; field: string };

type Token =
  { t: "(" | ")" | "[" | "]" | "{" | "}" | ":" | "AND" | "OR" | "NOT" | "TO" } | { t: "word" | "phrase"; v: string };

const CASE_INSENSITIVE = new Set(["email", "name", "given_name", "family_name", "nickname", "email.domain"]);
const DEFAULT_FIELDS = [
  "user_id",
  "email",
  "name",
  "given_name",
  "family_name",
  "nickname",
  "username",
  "phone_number",
];
const MAX_QUERY_LENGTH = 4096;

function tokenize(q: string): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  while (i < q.length) {
    const c = q[i]!;
    if (/\s/.test(c)) {
      i++;
      continue;
    }
    if ("()[]{}:".includes(c)) {
      tokens.push({ t: c as "(" });
      i++;
      continue;
    }
    if (c === '"') {
      let v = "";
      i++;
      while (i < q.length && q[i] !== '"') {
        if (q[i] === "\\" && i + 1 < q.length) i++;
        v += q[i++];
      }
      if (i >= q.length) throw invalidQuery("unterminated phrase in q.");
      i++;
      tokens.push({ t: "phrase", v });
      continue;
    }
    if (c === "&" && q[i + 1] === "&") {
      tokens.push({ t: "AND" });
      i += 2;
      continue;
    }
    if (c === "|" && q[i + 1] === "|") {
      tokens.push({ t: "OR" });
      i += 2;
      continue;
    }
    if ((c === "!" || c === "-") && i + 1 < q.length && !/\s/.test(q[i + 1]!)) {
      tokens.push({ t: "NOT" });
      i++;
      continue;
    }
    let v = "";
    while (i < q.length && !/\s/.test(q[i]!) && !'()[]{}:"'.includes(q[i]!)) {
      if (q[i] === "\\" && i + 1 < q.length) i++;
      v += q[i++];
    }
    if (v === "AND" || v === "OR" || v === "NOT" || v === "TO") tokens.push({ t: v });
    else tokens.push({ t: "word", v });
  }
  return tokens;
}

class Parser {
  private pos = 0;
  constructor(private readonly tokens: Token[]) {}

  parse(): Node {
    const node = this.or(undefined);
    if (this.pos < this.tokens.length) throw invalidQuery(`unexpected '${describe(this.tokens[this.pos]!)}' in q.`);
    return node;
  }

  private peek(): Token | undefined {
    return this.tokens[this.pos];
  }

  private expect(t: Token["t"]): Token {
    const token = this.tokens[this.pos++];
    if (!token || token.t !== t) throw invalidQuery(`expected '${t}' in q.`);
    return token;
  }

  private or(field: string | undefined): Node {
    const items = [this.and(field)];
    while (this.peek()) {
      const t = this.peek()!.t;
      if (t === ")") break;
      if (t === "OR") this.pos++;
      items.push(this.and(field)); // implicit operator: OR (Lucene's default)
    }
    return items.length === 1 ? items[0]! : { type: "or", items };
  }

  private and(field: string | undefined): Node {
    const items = [this.not(field)];
    while (this.peek()?.t === "AND") {
      this.pos++;
      items.push(this.not(field));
    }
    return items.length === 1 ? items[0]! : { type: "and", items };
  }

  private not(field: string | undefined): Node {
    if (this.peek()?.t === "NOT") {
      this.pos++;
      return { type: "not", item: this.not(field) };
    }
    return this.primary(field);
  }

  private primary(field: string | undefined): Node {
    const token = this.tokens[this.pos++];
    if (!token) throw invalidQuery("q ends unexpectedly.");
    if (token.t === "(") {
      const node = this.or(field);
      this.expect(")");
      return node;
    }
    if (token.t === "word" && this.peek()?.t === ":") {
      this.pos++;
      if (token.v === "_exists_") {
        const target = this.tokens[this.pos++];
        if (!target || (target.t !== "word" && target.t !== "phrase"))
          throw invalidQuery("_exists_ needs a field name.");
        return { type: "exists", field: target.v };
      }
      if (this.peek()?.t === "(") {
        this.pos++;
        const node = this.or(token.v);
        this.expect(")");
        return node;
      }
      return { type: "term", field: token.v, value: this.value() };
    }
    this.pos--;
    return { type: "term", field, value: this.value() };
  }

  private value(): Value {
    const token = this.tokens[this.pos++];
    if (!token) throw invalidQuery("q ends unexpectedly.");
    if (token.t === "word") return { kind: "word", text: token.v };
    if (token.t === "phrase") return { kind: "phrase", text: token.v };
    if (token.t === "[" || token.t === "{") {
      const lo = this.tokens[this.pos++];
      this.expect("TO");
      const hi = this.tokens[this.pos++];
      const close = this.tokens[this.pos++];
      if (!lo || !hi || !("v" in lo) || !("v" in hi) || !close || (close.t !== "]" && close.t !== "}"))
        throw invalidQuery("malformed range in q.");
      return { kind: "range", lo: lo.v, hi: hi.v, loInclusive: token.t === "[", hiInclusive: close.t === "]" };
    }
    throw invalidQuery(`unexpected '${describe(token)}' in q.`);
  }
}

function describe(token: Token): string {
  return "v" in token ? token.v : token.t;
}

/** Parse (and validate) a q string; throws 400 invalid_query_string. */
export function parseQuery(q: string): Node {
  if (q.length > MAX_QUERY_LENGTH) throw invalidQuery("q is too long.");
  const node = new Parser(tokenize(q)).parse();
  validate(node);
  return node;
}

function validate(node: Node): void {
  if (node.type === "or" || node.type === "and") return node.items.forEach(validate);
  if (node.type === "not") return validate(node.item);
  if (node.type !== "term") return;
  const onUserMetadata = node.field?.startsWith("user_metadata.") ?? false;
  if (node.value.kind === "range" && onUserMetadata)
    throw invalidQuery("range searches are not available on user_metadata fields.");
  if (node.value.kind === "word" && node.value.text.includes("*")) {
    if (onUserMetadata) throw invalidQuery("wildcard searches are not available on user_metadata fields.");
    const text = node.value.text;
    if (text.startsWith("*") && text.replace(/\*/g, "").length < 3) {
      throw invalidQuery("for suffix matching, literals must have 3 characters or more.");
    }
  }
}

/** Whatever sits at a dotted path; array levels are skipped. */
function rawAt(doc: unknown, path: string): unknown[] {
  if (path === "email.domain") {
    const email = (doc as { email?: unknown }).email;
    return typeof email === "string" && email.includes("@") ? [email.slice(email.lastIndexOf("@") + 1)] : [];
  }
  let current: unknown[] = [doc];
  for (const part of path.split(".")) {
    const next: unknown[] = [];
    for (const item of current.flatMap((c) => (Array.isArray(c) ? c : [c]))) {
      if (isPlainObject(item) && part in item) next.push(item[part]);
    }
    current = next;
  }
  return current.flatMap((v) => (Array.isArray(v) ? v : [v]));
}

/** Empty arrays, empty objects and null are not indexed, so `_exists_` does not see them. */
function indexed(value: unknown): boolean {
  if (value === null || value === undefined || value === "") return false;
  if (Array.isArray(value)) return value.some(indexed);
  if (isPlainObject(value)) return Object.values(value).some(indexed);
  return true;
}

/** Scalar values at a dotted path, as strings. */
function valuesAt(doc: unknown, path: string): string[] {
  return rawAt(doc, path)
    .filter(
      (v): v is string | number | boolean => typeof v === "string" || typeof v === "number" || typeof v === "boolean",
    )
    .map(String);
}

function matchValue(actual: string, value: Value, insensitive: boolean): boolean {
  const norm = (s: string) => (insensitive ? s.toLowerCase() : s);
  const a = norm(actual);
  if (value.kind === "range") {
    const cmp = (x: string, y: string) => {
      const nx = Number(x);
      const ny = Number(y);
      return !Number.isNaN(nx) && !Number.isNaN(ny) && x !== "" && y !== "" ? nx - ny : x < y ? -1 : x > y ? 1 : 0;
    };
    const loOk = value.lo === "*" || (value.loInclusive ? cmp(actual, value.lo) >= 0 : cmp(actual, value.lo) > 0);
    const hiOk = value.hi === "*" || (value.hiInclusive ? cmp(actual, value.hi) <= 0 : cmp(actual, value.hi) < 0);
    return loOk && hiOk;
  }
  const v = norm(value.text);
  if (value.kind === "phrase") return a === v || ` ${a} `.includes(` ${v} `);
  if (v.includes("*")) {
    const re = new RegExp(
      `^${v
        .split("*")
        .map((s) => s.replace(/[.+?^${}()|[\]\\]/g, "\\$&"))
        .join(".*")}$`,
    );
    return re.test(a) || a.split(/\s+/).some((w) => re.test(w));
  }
  return a === v || a.split(/\s+/).includes(v);
}

export function matches(node: Node, doc: User): boolean {
  switch (node.type) {
    case "or":
      return node.items.some((n) => matches(n, doc));
    case "and":
      return node.items.every((n) => matches(n, doc));
    case "not":
      return !matches(node.item, doc);
    case "exists":
      return rawAt(doc, node.field).some(indexed);
    case "term": {
      const fields = node.field ? [node.field] : DEFAULT_FIELDS;
      return fields.some((f) =>
        valuesAt(doc, f).some((actual) => matchValue(actual, node.value, CASE_INSENSITIVE.has(f))),
      );
    }
  }
}
