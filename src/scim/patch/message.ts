import { invalidPath, invalidSyntax, invalidValue, isBridgeError, noTarget, tooMany } from "../../errors.js";
import type { FilterNode } from "../filter/ast.js";
import { parseFilter } from "../filter/parser.js";

/**
 * PatchOp request bodies (RFC 7644 §3.5.2), read leniently where IdPs differ: `op` in any case
 * (Entra sends "Replace"), extra keys in the body or in operations ignored (the Microsoft suite sends
 * "id" and "name"). A path is `attrPath`, `attrPath[valFilter]` or `attrPath[valFilter].subAttr`.
 */
export const patchOpSchema = "urn:ietf:params:scim:api:messages:2.0:PatchOp";

export type PatchOpName = "add" | "remove" | "replace";

export interface PatchPath {
  text: string;
  /** Before any "[": "emails", "name.givenName", "urn:…:User:manager". */
  attrPath: string;
  filter?: FilterNode;
  /** After "].": the sub-attribute of the filtered values. */
  sub?: string;
}

export interface PatchOperation {
  /** 1-based, for error messages. */
  index: number;
  op: PatchOpName;
  path?: PatchPath;
  value: unknown;
}

export const patchLimits = { maxOperations: 1000, maxPathLength: 1024 } as const;

const attrPathPattern = /^[A-Za-z$][\w$.:-]*$/;

const containsValuePath = (node: FilterNode): boolean =>
  node.kind === "valuePath" ||
  ((node.kind === "and" || node.kind === "or") && (containsValuePath(node.left) || containsValuePath(node.right))) ||
  (node.kind === "not" && containsValuePath(node.expr));

/** Paths are quoted with JSON escapes, so that the request log can find where a quoted value ends. */
export function parsePatchPath(text: string): PatchPath {
  const trimmed = text.trim();
  if (trimmed.length === 0 || trimmed.length > patchLimits.maxPathLength)
    throw invalidPath(`invalid path ${JSON.stringify(text.slice(0, 80))}`);
  const open = trimmed.indexOf("[");
  if (open < 0) {
    if (!attrPathPattern.test(trimmed)) throw invalidPath(`invalid path ${JSON.stringify(trimmed)}`);
    return { text: trimmed, attrPath: trimmed };
  }
  const close = trimmed.lastIndexOf("]");
  const attrPath = trimmed.slice(0, open);
  const rest = trimmed.slice(close + 1);
  if (close < open || !attrPathPattern.test(attrPath) || (rest !== "" && !/^\.[A-Za-z$][\w$-]*$/.test(rest))) {
    throw invalidPath(`invalid path ${JSON.stringify(trimmed)}`);
  }
  let filter: FilterNode;
  try {
    filter = parseFilter(trimmed.slice(open + 1, close));
  } catch (err) {
    if (isBridgeError(err)) throw invalidPath(`invalid filter in path ${JSON.stringify(trimmed)}: ${err.message}`);
    throw err;
  }
  if (containsValuePath(filter)) throw invalidPath(`value filters cannot be nested in path ${JSON.stringify(trimmed)}`);
  return { text: trimmed, attrPath, filter, ...(rest ? { sub: rest.slice(1) } : {}) };
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);

export function parsePatchRequest(body: unknown): PatchOperation[] {
  if (!isObject(body)) throw invalidSyntax("the request body must be a PatchOp JSON object");
  const schemas = body.schemas;
  if (
    schemas !== undefined &&
    !(
      Array.isArray(schemas) &&
      schemas.some((s) => typeof s === "string" && s.toLowerCase() === patchOpSchema.toLowerCase())
    )
  ) {
    throw invalidSyntax(`a PatchOp body must list the schema "${patchOpSchema}"`);
  }
  const operations = body.Operations ?? body.operations;
  if (!Array.isArray(operations) || operations.length === 0)
    throw invalidValue('a PatchOp body needs a non-empty "Operations" array');
  if (operations.length > patchLimits.maxOperations)
    throw tooMany(`a PatchOp body may hold at most ${patchLimits.maxOperations} operations`);
  return operations.map((raw: unknown, i): PatchOperation => {
    const index = i + 1;
    if (!isObject(raw)) throw invalidValue(`operation ${index} must be an object`);
    const op = typeof raw.op === "string" ? raw.op.toLowerCase() : undefined;
    if (op !== "add" && op !== "remove" && op !== "replace") {
      // The value sent is not echoed: error details reach the request log, which keeps no request values.
      throw invalidSyntax(`operation ${index}: "op" must be add, remove or replace`);
    }
    if (raw.path !== undefined && raw.path !== null && typeof raw.path !== "string")
      throw invalidPath(`operation ${index}: "path" must be a string`);
    const path = typeof raw.path === "string" ? parsePatchPath(raw.path) : undefined;
    if (op === "remove" && !path) throw noTarget(`operation ${index}: remove needs a path (RFC 7644 §3.5.2.2)`);
    if (op !== "remove" && !path && !isObject(raw.value)) {
      throw invalidValue(`operation ${index}: without a path, "value" must be an object of attributes`);
    }
    if (op === "add" && raw.value === undefined) throw invalidValue(`operation ${index}: add needs a value`);
    return { index, op, ...(path ? { path } : {}), value: raw.value };
  });
}
