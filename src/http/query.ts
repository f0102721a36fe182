/**
 * Express 5 query parser: flat URLSearchParams semantics (no nested qs objects, "+" is a space, the
 * last of repeated keys wins). SCIM query parameters are flat strings; startIndex/count are parsed
 * by the SCIM layer. Keys are kept as sent: RFC 7644 names them in camelCase.
 */
export function parseQueryString(text: string): Record<string, string> {
  const out: Record<string, string> = Object.create(null) as Record<string, string>;
  for (const [key, value] of new URLSearchParams(text)) out[key] = value;
  return out;
}
