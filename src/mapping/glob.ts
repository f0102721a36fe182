/**
 * Globs for group names and attribute values: `*` matches any run of characters (also none),
 * `?` exactly one, `\` makes the next character literal. No regex is built from the pattern,
 * so a pattern from a mapping file cannot backtrack catastrophically: the matcher below is the
 * classic two-pointer wildcard match, O(pattern × text) in the worst case and linear in practice.
 */

const maxGlobLength = 256;

type GlobToken = { kind: "star" } | { kind: "any" } | { kind: "literal"; char: string };

export interface Glob {
  source: string;
  caseSensitive: boolean;
  tokens: GlobToken[];
}

/** Returns why the glob is invalid, or null. */
export function globProblem(source: string): string | null {
  if (source.length === 0) return "the glob is empty";
  if (source.length > maxGlobLength) return `the glob is longer than ${maxGlobLength} characters`;
  let escaped = false;
  for (const c of source) escaped = !escaped && c === "\\";
  return escaped ? 'the glob ends with a lone "\\" (write "\\\\" for a literal backslash)' : null;
}

export function compileGlob(source: string, caseSensitive = false): Glob {
  const problem = globProblem(source);
  if (problem) throw new Error(problem);
  const tokens: GlobToken[] = [];
  const chars = [...source];
  for (let i = 0; i < chars.length; i++) {
    const c = chars[i]!;
    if (c === "\\") tokens.push({ kind: "literal", char: fold(chars[++i]!, caseSensitive) });
    else if (c === "*") {
      if (tokens.at(-1)?.kind !== "star") tokens.push({ kind: "star" }); // "**" is the same as "*"
    } else if (c === "?") tokens.push({ kind: "any" });
    else tokens.push({ kind: "literal", char: fold(c, caseSensitive) });
  }
  return { source, caseSensitive, tokens };
}

const fold = (c: string, caseSensitive: boolean): string => (caseSensitive ? c : c.toLowerCase());

export function globMatches(glob: Glob, text: string): boolean {
  const chars = [...(glob.caseSensitive ? text : text.toLowerCase())];
  const tokens = glob.tokens;
  let t = 0;
  let c = 0;
  let starAt = -1; // token index of the last star seen
  let resumeAt = 0; // text index that star currently swallows up to
  while (c < chars.length) {
    const token = tokens[t];
    if (token && (token.kind === "any" || (token.kind === "literal" && token.char === chars[c]))) {
      t++;
      c++;
    } else if (token?.kind === "star") {
      starAt = t++;
      resumeAt = c;
    } else if (starAt !== -1) {
      t = starAt + 1;
      c = ++resumeAt;
    } else return false;
  }
  while (tokens[t]?.kind === "star") t++;
  return t === tokens.length;
}
