/**
 * Templates: `"{name.givenName} {name.familyName}"`. A placeholder is a SCIM path, or `{value}` (the
 * value flowing through a transform chain). `{{` and `}}` are literal braces.
 * A placeholder with no value renders as ""; a template whose placeholders are all empty renders as
 * null, so that a following `default` transform can take over.
 */
import { parseScimPath, PathSyntaxError, type ScimPath } from "./scim-path.js";

export type TemplatePart = { literal: string } | { value: true } | { path: ScimPath };

export interface Template {
  source: string;
  parts: TemplatePart[];
  usesValue: boolean;
}

/** Parses a template; throws PathSyntaxError (with the reason) when it is malformed. */
export function parseTemplate(source: string): Template {
  const parts: TemplatePart[] = [];
  let literal = "";
  let usesValue = false;
  for (let i = 0; i < source.length; i++) {
    const c = source[i]!;
    if ((c === "{" || c === "}") && source[i + 1] === c) {
      literal += c;
      i++;
    } else if (c === "}") {
      throw new PathSyntaxError(`unmatched "}" at character ${i + 1} (write "}}" for a literal brace)`);
    } else if (c === "{") {
      const end = source.indexOf("}", i);
      if (end === -1) throw new PathSyntaxError(`unclosed "{" at character ${i + 1} (write "{{" for a literal brace)`);
      const inner = source.slice(i + 1, end).trim();
      if (literal) parts.push({ literal });
      literal = "";
      if (inner === "value") {
        parts.push({ value: true });
        usesValue = true;
      } else parts.push({ path: parseScimPath(inner) });
      i = end;
    } else literal += c;
  }
  if (literal) parts.push({ literal });
  if (!parts.some((p) => !("literal" in p))) throw new PathSyntaxError("the template has no {placeholder}");
  return { source, parts, usesValue };
}

/** Renders with `lookup` giving the text of a placeholder (null when absent). */
export function renderTemplate(
  t: Template,
  lookup: (part: { value: true } | { path: ScimPath }) => string | null,
): string | null {
  let out = "";
  let filled = false;
  for (const part of t.parts) {
    if ("literal" in part) out += part.literal;
    else {
      const text = lookup(part);
      if (text !== null && text !== "") filled = true;
      out += text ?? "";
    }
  }
  return filled ? out : null;
}
