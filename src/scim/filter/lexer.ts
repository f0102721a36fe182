import { unstorableRefusal, unstorableText } from "../../directory/text.js";
import { invalidFilter } from "../../errors.js";

/**
 * Tokens of a filter: brackets, JSON strings, and words (attribute paths, operators, keywords and
 * unquoted values). One pass, no regular expressions over the whole input, so time is linear.
 */
export type Token =
  | { type: "(" | ")" | "[" | "]"; pos: number }
  | { type: "string"; value: string; pos: number }
  | {
      type: "word";
      value: string;
      pos: number;
      /** directly after "]" with no space, e.g. "].value" */ glued: boolean;
    };

const isSpace = (c: string): boolean => c === " " || c === "\t" || c === "\n" || c === "\r";
const isBreak = (c: string): boolean => isSpace(c) || c === "(" || c === ")" || c === "[" || c === "]" || c === '"';

const unstorable = (start: number) => invalidFilter(unstorableRefusal(`the value at position ${start + 1}`));

export function tokenize(text: string): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  while (i < text.length) {
    const c = text[i]!;
    if (isSpace(c)) {
      i++;
      continue;
    }
    if (c === "(" || c === ")" || c === "[" || c === "]") {
      tokens.push({ type: c, pos: i });
      i++;
      continue;
    }
    if (c === '"') {
      const start = i;
      i++;
      while (i < text.length && text[i] !== '"') i += text[i] === "\\" ? 2 : 1;
      if (i >= text.length) throw invalidFilter(`unterminated string starting at position ${start + 1}`);
      i++;
      let value: unknown;
      try {
        value = JSON.parse(text.slice(start, i));
      } catch {
        throw invalidFilter(`invalid escape in string starting at position ${start + 1}`);
      }
      // A value no store keeps (src/directory/text.ts) matches nothing stored, and PostgreSQL refuses it
      // as a parameter: refused on both dialects, as in a body (assertStorableJson).
      if (unstorableText.test(value as string)) throw unstorable(start);
      tokens.push({ type: "string", value: value as string, pos: start });
      continue;
    }
    const start = i;
    while (i < text.length && !isBreak(text[i]!)) i++;
    if (unstorableText.test(text.slice(start, i))) throw unstorable(start);
    const previous = tokens[tokens.length - 1];
    tokens.push({
      type: "word",
      value: text.slice(start, i),
      pos: start,
      glued: previous?.type === "]" && previous.pos === start - 1,
    });
  }
  return tokens;
}
