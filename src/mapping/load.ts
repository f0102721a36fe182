/**
 * Reads a mapping file's text (YAML, or JSON, which is YAML 1.2) and validates it. Problems carry
 * the line and column in the file, so `scim-bridge mapping validate` points at the place to edit.
 * Pure: the caller reads the file.
 */
import { isMap, isPair, isScalar, isSeq, LineCounter, parseDocument, type Node as YamlNode } from "yaml";
import { BridgeError } from "../errors.js";
import type { MappingDocument } from "./schema.js";
import { MappingError, validateMapping, type MappingIssue } from "./validate.js";

const maxFileBytes = 1_000_000;

export type ParsedFile =
  { ok: true; mapping: MappingDocument } | { ok: false; issues: MappingIssue[]; syntax: boolean };

/** Non-throwing form: syntax errors and validation problems, each with line and column. */
export function checkMappingFile(text: string, filename: string): ParsedFile {
  if (text.length > maxFileBytes) {
    return {
      ok: false,
      syntax: true,
      issues: [{ path: "(document)", message: `the file is larger than ${maxFileBytes} bytes` }],
    };
  }
  const lineCounter = new LineCounter();
  // Duplicate keys are errors (uniqueKeys), so a key written twice is never silently overridden.
  const doc = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true });
  const at = (offset: number): { line: number; column: number } => {
    const { line, col } = lineCounter.linePos(offset);
    return { line, column: col };
  };
  if (doc.errors.length > 0) {
    const issues = doc.errors.map((e) => ({
      path: "(document)",
      message: `${/\.json$/i.test(filename) ? "JSON/YAML" : "YAML"} syntax: ${e.message.split("\n")[0]}`,
      ...at(e.pos[0]),
    }));
    return { ok: false, syntax: true, issues };
  }
  const result = validateMapping(doc.toJS({ maxAliasCount: 100 }));
  if (result.ok) return result;
  return {
    ok: false,
    syntax: false,
    issues: result.issues.map((issue) => ({ ...issue, ...at(locate(doc.contents, issue.path)) })),
  };
}

/** Parses and validates a mapping file; throws MappingError (invalidValue) or invalidSyntax, naming file:line:column. */
export function loadMappingFile(text: string, filename: string): MappingDocument {
  const result = checkMappingFile(text, filename);
  if (result.ok) return result.mapping;
  if (result.syntax) {
    const lines = result.issues.map((i) => `  ${filename}:${i.line ?? 1}:${i.column ?? 1}: ${i.message}`);
    throw new BridgeError("invalidSyntax", `cannot read mapping ${filename}:\n${lines.join("\n")}`);
  }
  throw new MappingError(result.issues, filename);
}

/** Splits `roles.rules[2]["a.b"].when` back into keys. */
function pathKeys(path: string): (string | number)[] {
  if (path === "(document)") return [];
  const keys: (string | number)[] = [];
  const re = /([^.[\]]+)|\[(\d+)\]|\[("(?:[^"\\]|\\.)*")\]/g;
  for (const m of path.matchAll(re)) {
    if (m[1] !== undefined) keys.push(m[1]);
    else if (m[2] !== undefined) keys.push(Number(m[2]));
    else if (m[3] !== undefined) keys.push(JSON.parse(m[3]) as string);
  }
  return keys;
}

/** Offset of the deepest key or list item on `path` that exists in the file (the parent's, for a missing key). */
function locate(root: unknown, path: string): number {
  let node = root as YamlNode | null;
  let offset = node?.range?.[0] ?? 0;
  for (const key of pathKeys(path)) {
    if (isMap(node)) {
      const pair = node.items.find((p) => isPair(p) && isScalar(p.key) && String(p.key.value) === String(key));
      if (!pair) break;
      offset = (pair.key as YamlNode).range?.[0] ?? offset; // the key: a problem's line starts there
      node = pair.value as YamlNode | null;
    } else if (isSeq(node) && typeof key === "number") {
      node = (node.items[key] as YamlNode | undefined) ?? null;
      if (!node) break;
      offset = node.range?.[0] ?? offset;
    } else break;
  }
  return offset;
}
