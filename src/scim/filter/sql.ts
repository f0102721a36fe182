import { sql, type SQL } from "drizzle-orm";
import { foldCase } from "../../directory/fold.js";
import { invalidFilter } from "../../errors.js";
import {
  resolveAttribute,
  type AttributeInfo,
  type AttributeType,
  type ResolvedPath,
  type ResourceSchema,
} from "../schema.js";
import type { CompareOperator, CompareValue, FilterNode } from "./ast.js";

/**
 * Filter tree → SQL predicate. Every value is a bound parameter and every attribute goes through the
 * schema and a per-resource allow-list of operands (targets.ts), so no client text ever becomes SQL.
 * Case rules come from the schema (RFC 7643 §2.2 caseExact; userName is not case-exact).
 * Attributes we do not know match nothing, like an absent attribute: a query still answers 200.
 *
 * Two SQL dialects: SQLite (the store today; its output must not change) and PostgreSQL. They differ
 * in truth values (1/0 against true/false), string functions (instr, substr, char against strpos,
 * right, chr) and JSON access (targets.ts); scim_fold exists on both (db/pg/0002_credential_epochs.sql).
 */
export type Dialect = "sqlite" | "postgres";
export interface Operand {
  expr: SQL;
  type: AttributeType;
  caseExact: boolean;
  /** The column stores folded text (foldCase: user_name_lower, value_lower): compare with a folded parameter. */
  lowered?: boolean;
  /** dateTime stored as epoch milliseconds. */
  epochMs?: boolean;
}

/** A multi-valued attribute: "some value satisfies …". */
export interface Collection {
  attribute: AttributeInfo;
  /** SQL dialect of the operands and of `exists` (default sqlite). */
  dialect?: Dialect;
  /** Operand for a sub-attribute of one value, or for the value itself (multi-valued simple attributes). */
  element(sub: AttributeInfo | undefined): Operand | undefined;
  exists(condition: SQL): SQL;
}

export interface SqlTarget {
  schema: ResourceSchema;
  /** SQL dialect of the operands (default sqlite). */
  dialect?: Dialect;
  single(path: ResolvedPath): Operand | undefined;
  /** `subs`: lower-case sub-attribute names the condition uses, so an index table can be chosen when it covers them. */
  collection(path: ResolvedPath, subs: ReadonlySet<string>): Collection | undefined;
  /** Optional shortcut for `attr pr` on a multi-valued attribute (e.g. members → member_count > 0). */
  present?(path: ResolvedPath): SQL | undefined;
}

const truth = { sqlite: { TRUE: sql`1`, FALSE: sql`0` }, postgres: { TRUE: sql`true`, FALSE: sql`false` } };

/** `NOT expr`, where an unknown (NULL) expr counts as false, so its negation holds. */
const notOf = (expr: SQL, dialect: Dialect): SQL =>
  dialect === "postgres" ? sql`(NOT coalesce(${expr}, false))` : sql`(NOT coalesce(${expr}, 0))`;

function absent(node: { kind: "compare"; op: CompareOperator } | { kind: "present" }, dialect: Dialect): SQL {
  // An absent attribute is "not equal" to any value and matches nothing else.
  return node.kind === "compare" && node.op === "ne" ? truth[dialect].TRUE : truth[dialect].FALSE;
}

function subsUsed(node: FilterNode, into: Set<string>): Set<string> {
  switch (node.kind) {
    case "and":
    case "or":
      subsUsed(node.left, into);
      return subsUsed(node.right, into);
    case "not":
      return subsUsed(node.expr, into);
    case "valuePath":
      return into;
    default:
      into.add(node.path.toLowerCase());
      return into;
  }
}

function booleanValue(value: CompareValue, path: string): boolean {
  if (typeof value === "boolean") return value;
  // Entra sends "True"/"False" strings (Microsoft Learn "Known issues … SCIM 2.0 protocol
  // compliance").
  if (typeof value === "string" && /^(true|false)$/i.test(value)) return value.toLowerCase() === "true";
  throw invalidFilter(`"${path}" is boolean; compare it with true or false`);
}

export function compare(
  operand: Operand,
  op: CompareOperator,
  value: CompareValue,
  path: string,
  dialect: Dialect = "sqlite",
): SQL {
  const { expr } = operand;
  if (value === null) {
    if (op === "eq") return sql`(${expr} IS NULL)`;
    if (op === "ne") return sql`(${expr} IS NOT NULL)`;
    throw invalidFilter(`null can only be compared with eq or ne ("${path}")`);
  }
  const ordered = (rhs: unknown): SQL => {
    switch (op) {
      case "eq":
        return sql`(${expr} = ${rhs})`;
      case "ne":
        return sql`(${expr} IS NULL OR ${expr} <> ${rhs})`;
      case "gt":
        return sql`(${expr} > ${rhs})`;
      case "ge":
        return sql`(${expr} >= ${rhs})`;
      case "lt":
        return sql`(${expr} < ${rhs})`;
      case "le":
        return sql`(${expr} <= ${rhs})`;
      default:
        throw invalidFilter(`"${op}" cannot be used with "${path}" (${operand.type})`);
    }
  };
  switch (operand.type) {
    case "boolean": {
      // RFC 7644 §3.4.2.2: gt/ge/lt/le on a boolean is invalidFilter.
      if (op !== "eq" && op !== "ne") throw invalidFilter(`"${op}" cannot be used with boolean "${path}"`);
      const b = booleanValue(value, path);
      return ordered(dialect === "postgres" ? b : b ? 1 : 0);
    }
    case "integer":
    case "decimal": {
      const n = typeof value === "number" ? value : Number(value);
      if (typeof value === "boolean" || !Number.isFinite(n))
        throw invalidFilter(`"${path}" is numeric; ${JSON.stringify(String(value))} is not a number`);
      return ordered(n);
    }
    case "dateTime": {
      const date = typeof value === "string" ? new Date(value) : new Date(Number.NaN);
      if (Number.isNaN(date.getTime()))
        throw invalidFilter(`"${path}" is a dateTime; ${JSON.stringify(String(value))} is not one`);
      return ordered(operand.epochMs ? date.getTime() : date.toISOString());
    }
    case "complex":
      throw invalidFilter(`"${path}" is complex; filter on one of its sub-attributes`);
    default:
      return compareText(operand, op, String(value), dialect);
  }
}

function compareText(operand: Operand, op: CompareOperator, text: string, dialect: Dialect): SQL {
  let lhs = operand.expr;
  let rhs: SQL;
  if (operand.caseExact) rhs = sql`${text}`;
  else if (operand.lowered) rhs = sql`${foldCase(text)}`;
  else {
    // scim_fold is foldCase registered on the connection (SQLite's lower() folds ASCII only).
    lhs = sql`scim_fold(${lhs})`;
    rhs = sql`${foldCase(text)}`;
  }
  if (dialect === "postgres") {
    switch (op) {
      case "co":
        return sql`(strpos(${lhs}, ${rhs}) > 0)`;
      case "sw":
        // The same range as on SQLite; text columns are COLLATE "C" (byte order), like SQLite's BINARY.
        return sql`(${lhs} >= ${rhs} AND ${lhs} < ${rhs} || chr(1114111))`;
      case "ew":
        return text === "" ? sql`(${lhs} IS NOT NULL)` : sql`(right(${lhs}, length(${rhs})) = ${rhs})`;
    }
  }
  switch (op) {
    case "eq":
      return sql`(${lhs} = ${rhs})`;
    case "ne":
      return sql`(${lhs} IS NULL OR ${lhs} <> ${rhs})`;
    case "co":
      return sql`(instr(${lhs}, ${rhs}) > 0)`;
    case "sw":
      // A range, so that an index on the column can serve it (U+10FFFF sorts after every continuation).
      return sql`(${lhs} >= ${rhs} AND ${lhs} < ${rhs} || char(1114111))`;
    case "ew":
      return text === "" ? sql`(${lhs} IS NOT NULL)` : sql`(substr(${lhs}, -length(${rhs})) = ${rhs})`;
    case "gt":
      return sql`(${lhs} > ${rhs})`;
    case "ge":
      return sql`(${lhs} >= ${rhs})`;
    case "lt":
      return sql`(${lhs} < ${rhs})`;
    case "le":
      return sql`(${lhs} <= ${rhs})`;
  }
}

function present(operand: Operand): SQL {
  return operand.type === "string" || operand.type === "reference"
    ? sql`(${operand.expr} IS NOT NULL AND ${operand.expr} <> '')`
    : sql`(${operand.expr} IS NOT NULL)`;
}

/** A condition on the values of one collection (inside `attr[…]`), as SQL over that collection's rows. */
export function elementCondition(node: FilterNode, collection: Collection): SQL {
  const dialect = collection.dialect ?? "sqlite";
  switch (node.kind) {
    case "and":
      return sql`(${elementCondition(node.left, collection)} AND ${elementCondition(node.right, collection)})`;
    case "or":
      return sql`(${elementCondition(node.left, collection)} OR ${elementCondition(node.right, collection)})`;
    case "not":
      return notOf(elementCondition(node.expr, collection), dialect);
    case "valuePath":
      throw invalidFilter("value filters cannot be nested");
    default: {
      const sub = collection.attribute.sub.get(node.path.toLowerCase());
      const operand = sub || collection.attribute.sub.size === 0 ? collection.element(sub) : undefined;
      if (!operand) return absent(node, dialect);
      return node.kind === "present"
        ? present(operand)
        : compare(operand, node.op, node.value, `${collection.attribute.name}.${node.path}`, dialect);
    }
  }
}

/** The whole filter as a predicate on the target's main table. */
export function filterToSql(node: FilterNode, target: SqlTarget): SQL {
  const dialect = target.dialect ?? "sqlite";
  const { TRUE, FALSE } = truth[dialect];
  switch (node.kind) {
    case "and":
      return sql`(${filterToSql(node.left, target)} AND ${filterToSql(node.right, target)})`;
    case "or":
      return sql`(${filterToSql(node.left, target)} OR ${filterToSql(node.right, target)})`;
    case "not":
      return notOf(filterToSql(node.expr, target), dialect);
    case "valuePath": {
      const path = resolveAttribute(target.schema, node.path);
      if (!path || path.sub || path.attribute.type !== "complex") return FALSE;
      if (!path.attribute.multiValued) {
        // A single-valued complex attribute: `name[givenName eq "x"]` ≡ `name.givenName eq "x"`.
        const single: Collection = {
          attribute: path.attribute,
          dialect,
          element: (sub) => (sub ? target.single({ ...path, sub }) : undefined),
          exists: (condition) => condition,
        };
        return elementCondition(node.filter, single);
      }
      const collection = target.collection(path, subsUsed(node.filter, new Set()));
      return collection ? collection.exists(elementCondition(node.filter, collection)) : FALSE;
    }
    default: {
      const path = resolveAttribute(target.schema, node.path);
      if (!path) return absent(node, dialect);
      if (!path.attribute.multiValued) {
        const operand = target.single(path);
        if (!operand) return absent(node, dialect);
        return node.kind === "present" ? present(operand) : compare(operand, node.op, node.value, node.path, dialect);
      }
      if (node.kind === "present" && !path.sub) {
        const shortcut = target.present?.(path);
        if (shortcut) return shortcut;
      }
      // `emails.value eq x` and `emails co x` (RFC 7644 §3.4.2.2: a complex attribute compares its "value").
      const sub = path.sub ?? path.attribute.sub.get("value");
      const collection = target.collection(path, new Set(sub ? [sub.name.toLowerCase()] : []));
      if (!collection) return absent(node, dialect);
      const operand = collection.element(sub);
      if (!operand) return node.kind === "present" ? collection.exists(TRUE) : absent(node, dialect);
      if (node.kind === "present") return collection.exists(present(operand));
      if (node.op === "ne") {
        // No value equals it (RFC 7644 leaves multi-valued "ne" open; this keeps ne ≡ not eq).
        return sql`(NOT ${collection.exists(compare(operand, "eq", node.value, node.path, dialect))})`;
      }
      return collection.exists(compare(operand, node.op, node.value, node.path, dialect));
    }
  }
}
