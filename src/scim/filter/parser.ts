import { invalidFilter } from "../../errors.js";
import { compareOperators, filterLimits, type CompareOperator, type CompareValue, type FilterNode } from "./ast.js";
import { tokenize, type Token } from "./lexer.js";

/**
 * Recursive-descent parser for the whole RFC 7644 §3.4.2.2 grammar: precedence not > and > or,
 * nested parentheses, `not (…)`, value paths `emails[type eq "work" and primary eq true]`, escaped
 * quotes, and the value-path sub-attribute form Entra sends (`emails[type eq "work"].value eq "x"`).
 * scimmy 1.3.5's parser rejects `((a eq "x"))` and `"O\"Brien"` and reads `not (a or b)` as
 * `not a or not b` (observed), hence this one. Lenient where IdPs are: operators and
 * keywords in any case, `not` without parentheses, unquoted values (Entra's older docs). Anything
 * it cannot read is 400 invalidFilter, never "all rows".
 */
const attrPathPattern = /^[A-Za-z$][\w$.:-]*$/;
const numberPattern = /^-?(0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?$/;

class Parser {
  private pos = 0;
  private depth = 0;
  private terms = 0;

  constructor(private readonly tokens: Token[]) {}

  parse(): FilterNode {
    if (this.tokens.length === 0) throw invalidFilter("filter is empty");
    const node = this.parseOr(false);
    const extra = this.tokens[this.pos];
    if (extra) throw invalidFilter(`unexpected ${describe(extra)} at position ${extra.pos + 1}`);
    return node;
  }

  private peekKeyword(...keywords: string[]): boolean {
    const t = this.tokens[this.pos];
    return t?.type === "word" && keywords.includes(t.value.toLowerCase());
  }

  private enter(): void {
    if (++this.depth > filterLimits.maxDepth)
      throw invalidFilter(`filter nesting exceeds ${filterLimits.maxDepth} levels`);
  }

  private expect(type: ")" | "]"): void {
    const t = this.tokens[this.pos];
    if (t?.type !== type)
      throw invalidFilter(
        `expected "${type}" ${t ? `before ${describe(t)} at position ${t.pos + 1}` : "at end of filter"}`,
      );
    this.pos++;
  }

  private parseOr(inValuePath: boolean): FilterNode {
    let left = this.parseAnd(inValuePath);
    while (this.peekKeyword("or")) {
      this.pos++;
      left = { kind: "or", left, right: this.parseAnd(inValuePath) };
    }
    return left;
  }

  private parseAnd(inValuePath: boolean): FilterNode {
    let left = this.parseUnary(inValuePath);
    while (this.peekKeyword("and")) {
      this.pos++;
      left = { kind: "and", left, right: this.parseUnary(inValuePath) };
    }
    return left;
  }

  private parseUnary(inValuePath: boolean): FilterNode {
    const t = this.tokens[this.pos];
    if (!t) throw invalidFilter("filter ends where an expression was expected");
    if (this.peekKeyword("not") && this.tokens[this.pos + 1] !== undefined && this.tokens[this.pos + 1]?.type !== "[") {
      this.pos++;
      this.enter();
      const expr = this.parseUnary(inValuePath);
      this.depth--;
      return { kind: "not", expr };
    }
    if (t.type === "(") {
      this.pos++;
      this.enter();
      const inner = this.parseOr(inValuePath);
      this.expect(")");
      this.depth--;
      return inner;
    }
    if (t.type !== "word") throw invalidFilter(`unexpected ${describe(t)} at position ${t.pos + 1}`);
    return this.parseAttributeExpression(inValuePath);
  }

  private parseAttributeExpression(inValuePath: boolean): FilterNode {
    const pathToken = this.tokens[this.pos++] as Extract<Token, { type: "word" }>;
    const path = pathToken.value;
    if (!attrPathPattern.test(path))
      throw invalidFilter(`"${path}" at position ${pathToken.pos + 1} is not an attribute path`);
    if (this.tokens[this.pos]?.type === "[") {
      if (inValuePath) throw invalidFilter(`value filters cannot be nested (position ${pathToken.pos + 1})`);
      this.pos++;
      this.enter();
      const filter = this.parseOr(true);
      this.expect("]");
      this.depth--;
      const next = this.tokens[this.pos];
      if (next?.type === "word" && next.glued && next.value.startsWith(".")) {
        // emails[type eq "work"].value eq "x" ≡ emails[type eq "work" and value eq "x"]
        this.pos++;
        const subPath = next.value.slice(1);
        if (!attrPathPattern.test(subPath)) throw invalidFilter(`"${next.value}" is not a sub-attribute`);
        return { kind: "valuePath", path, filter: { kind: "and", left: filter, right: this.parseOperation(subPath) } };
      }
      return { kind: "valuePath", path, filter };
    }
    return this.parseOperation(path);
  }

  private parseOperation(path: string): FilterNode {
    const opToken = this.tokens[this.pos];
    if (opToken?.type !== "word") throw invalidFilter(`expected an operator after "${path}"`);
    const op = opToken.value.toLowerCase();
    this.pos++;
    if (++this.terms > filterLimits.maxTerms)
      throw invalidFilter(`filter has more than ${filterLimits.maxTerms} comparisons`);
    if (op === "pr") return { kind: "present", path };
    if (!compareOperators.has(op))
      throw invalidFilter(`"${opToken.value}" at position ${opToken.pos + 1} is not a filter operator`);
    const valueToken = this.tokens[this.pos];
    if (valueToken?.type === "string") {
      this.pos++;
      return { kind: "compare", path, op: op as CompareOperator, value: valueToken.value };
    }
    if (valueToken?.type === "word") {
      this.pos++;
      return { kind: "compare", path, op: op as CompareOperator, value: literal(valueToken.value) };
    }
    throw invalidFilter(`"${path} ${op}" needs a value`);
  }
}

function literal(word: string): CompareValue {
  const lower = word.toLowerCase();
  if (lower === "true") return true;
  if (lower === "false") return false;
  if (lower === "null") return null;
  if (numberPattern.test(word)) return Number(word);
  return word; // an unquoted string (not RFC ABNF, but Entra's older documentation sends it)
}

function describe(t: Token): string {
  if (t.type === "string") return "a string";
  if (t.type === "word") return `"${t.value.slice(0, 40)}"`;
  return `"${t.type}"`;
}

export function parseFilter(text: string): FilterNode {
  if (text.length > filterLimits.maxLength)
    throw invalidFilter(`filter is longer than ${filterLimits.maxLength} characters`);
  return new Parser(tokenize(text)).parse();
}
