import { foldCase } from "../../directory/fold.js";
import { noTarget } from "../../errors.js";
import type { CompareValue, FilterNode } from "../filter/ast.js";
import type { AttributeInfo } from "../schema.js";

/**
 * Value filters of PATCH paths (`emails[type eq "work"]`) evaluated on the values of one resource,
 * with the schema's case rules. scimmy's Filter.match compares case-sensitively and throws on values
 * that lack the attribute (observed with scimmy 1.3.5), so this small evaluator replaces it.
 */
type Element = Record<string, unknown>;

function compareValues(sub: AttributeInfo, actual: unknown, op: string, expected: CompareValue): boolean {
  if (expected === null) return op === "eq" ? actual === undefined : op === "ne" ? actual !== undefined : false;
  if (actual === undefined || actual === null) return op === "ne";
  if (sub.type === "boolean") {
    const want = typeof expected === "string" ? expected.toLowerCase() === "true" : expected === true;
    return op === "eq" ? actual === want : op === "ne" ? actual !== want : false;
  }
  if (sub.type === "integer" || sub.type === "decimal" || sub.type === "dateTime") {
    const a = sub.type === "dateTime" ? Date.parse(String(actual)) : Number(actual);
    const e = sub.type === "dateTime" ? Date.parse(String(expected)) : Number(expected);
    if (Number.isNaN(a) || Number.isNaN(e)) return false;
    return ordered(op, a, e);
  }
  const fold = (s: string) => (sub.caseExact ? s : foldCase(s));
  const a = fold(String(actual));
  const e = fold(String(expected));
  if (op === "co") return a.includes(e);
  if (op === "sw") return a.startsWith(e);
  if (op === "ew") return a.endsWith(e);
  return ordered(op, a, e);
}

function ordered<T extends string | number>(op: string, a: T, e: T): boolean {
  switch (op) {
    case "eq":
      return a === e;
    case "ne":
      return a !== e;
    case "gt":
      return a > e;
    case "ge":
      return a >= e;
    case "lt":
      return a < e;
    case "le":
      return a <= e;
    default:
      return false;
  }
}

export function matchesElement(node: FilterNode, element: Element, attribute: AttributeInfo): boolean {
  switch (node.kind) {
    case "and":
      return matchesElement(node.left, element, attribute) && matchesElement(node.right, element, attribute);
    case "or":
      return matchesElement(node.left, element, attribute) || matchesElement(node.right, element, attribute);
    case "not":
      return !matchesElement(node.expr, element, attribute);
    case "valuePath":
      return false;
    default: {
      const sub = attribute.sub.get(node.path.toLowerCase());
      if (!sub) return node.kind === "compare" && node.op === "ne";
      const actual = element[sub.name];
      if (node.kind === "present") return actual !== undefined && actual !== null && actual !== "";
      return compareValues(sub, actual, node.op, node.value);
    }
  }
}

/**
 * The value a filter describes, for Entra's "add or replace where none matches yet" (Microsoft
 * Learn "Known issues … SCIM 2.0 protocol compliance": `emails[type eq "work"].value` on a user
 * without a work email creates one). Only `eq` conjunctions describe a value; anything else is 400
 * noTarget (RFC 7644 §3.5.2.3).
 */
export function elementFromFilter(node: FilterNode, attribute: AttributeInfo, path: string): Element {
  const out: Element = {};
  const visit = (n: FilterNode): void => {
    if (n.kind === "and") {
      visit(n.left);
      visit(n.right);
      return;
    }
    const sub =
      n.kind === "compare" && n.op === "eq" && n.value !== null ? attribute.sub.get(n.path.toLowerCase()) : undefined;
    if (!sub || n.kind !== "compare")
      throw noTarget(`no value matches ${JSON.stringify(path)} and the filter does not describe a new one`);
    out[sub.name] = sub.type === "boolean" && typeof n.value === "string" ? n.value.toLowerCase() === "true" : n.value;
  };
  visit(node);
  return out;
}
