/**
 * Filter expressions (RFC 7644 §3.4.2.2) as a tree. Attribute paths stay as written; they are
 * resolved against a resource schema when the tree is translated (to SQL, or matched in memory).
 */
export type CompareOperator = "eq" | "ne" | "co" | "sw" | "ew" | "gt" | "lt" | "ge" | "le";
export const compareOperators: ReadonlySet<string> = new Set(["eq", "ne", "co", "sw", "ew", "gt", "lt", "ge", "le"]);

export type CompareValue = string | number | boolean | null;

export type FilterNode =
  | { kind: "and" | "or"; left: FilterNode; right: FilterNode }
  | { kind: "not"; expr: FilterNode }
  | { kind: "compare"; path: string; op: CompareOperator; value: CompareValue }
  | { kind: "present"; path: string }
  /** `attr[filter]`: some value of the multi-valued `attr` satisfies `filter`, whose paths are sub-attributes. */
  | { kind: "valuePath"; path: string; filter: FilterNode };

/**
 * Bounds that keep parsing linear and translation small (OWASP API Security Top 10 2023, API4
 * "Unrestricted Resource Consumption").
 */
export const filterLimits = {
  /** Characters in one filter. */
  maxLength: 4096,
  /** Nesting of parentheses, `not` and `[...]`. */
  maxDepth: 16,
  /** Comparisons and presence tests in one filter. */
  maxTerms: 100,
} as const;
