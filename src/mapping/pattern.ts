/**
 * Pattern capture (`{capture: "^([^@]+)@"}`) without catastrophic backtracking.
 *
 * Node's regex engine backtracks, and there is no linear-time engine on Node 20 without flags. So a
 * capture pattern is analysed before it is accepted, and its input is capped:
 * - no repeated group may contain a repetition or an alternation: `(a+)+`, `(a|aa)*`, `((a|b)c)+`
 *   are the shapes with exponential blow-up (write `[ab]+` instead of `(a|b)+`);
 * - no backreferences (`\1`, `\k<x>`) and no lookaround: both defeat the analysis;
 * - at most 3 unbounded repetitions (`*`, `+`, `{n,}`, `{n,m}` with m > 32), so the remaining
 *   polynomial backtracking is at most n³;
 * - the value is matched only when it has at most 256 characters (otherwise: no match), which
 *   bounds that n³ to a few million steps, milliseconds.
 */

export const maxCaptureInput = 256;
const maxPatternLength = 200;
const maxUnbounded = 3;
const boundedLimit = 32;

interface Frame {
  repeats: boolean;
  alternates: boolean;
}

export interface PatternProblem {
  field: "capture" | "group";
  message: string;
}

/** Why a capture pattern or its group is refused, or null. */
export function captureProblem(pattern: string, group?: number | string): PatternProblem | null {
  const problem = patternProblem(pattern);
  if (problem) return { field: "capture", message: problem };
  const shape = analyse(pattern);
  if (group === undefined || typeof shape === "string") return null;
  if (typeof group === "number") {
    return group <= shape.groups
      ? null
      : {
          field: "group",
          message: `group ${group} does not exist: the pattern has ${shape.groups} capturing group(s)`,
        };
  }
  return shape.names.includes(group) ? null : { field: "group", message: `the pattern has no group named "${group}"` };
}

/** Returns why the pattern is refused, or null. */
export function patternProblem(pattern: string): string | null {
  if (pattern.length === 0) return "the pattern is empty";
  if (pattern.length > maxPatternLength) return `the pattern is longer than ${maxPatternLength} characters`;
  try {
    new RegExp(pattern, "u");
  } catch (e) {
    return `not a valid regular expression: ${(e as Error).message}`;
  }
  const shape = analyse(pattern);
  return typeof shape === "string" ? shape : null;
}

function analyse(p: string): { groups: number; names: string[] } | string {
  const stack: Frame[] = [{ repeats: false, alternates: false }];
  let last: "none" | "atom" | Frame = "none";
  let unbounded = 0;
  let groups = 0;
  const names: string[] = [];
  let i = 0;
  const top = (): Frame => stack[stack.length - 1]!;
  while (i < p.length) {
    const c = p[i]!;
    if (c === "\\") {
      const next = p[i + 1] ?? "";
      if (/[1-9]/.test(next) || next === "k") return "backreferences are not allowed (they can take exponential time)";
      if ((next === "p" || next === "P" || next === "u") && p[i + 2] === "{") i = p.indexOf("}", i) + 1;
      else i += 2;
      last = "atom";
    } else if (c === "[") {
      i++;
      while (i < p.length && p[i] !== "]") i += p[i] === "\\" ? 2 : 1;
      i++;
      last = "atom";
    } else if (c === "(") {
      if (p.startsWith("(?=", i) || p.startsWith("(?!", i) || p.startsWith("(?<=", i) || p.startsWith("(?<!", i)) {
        return "lookahead and lookbehind are not allowed in capture patterns";
      }
      if (p.startsWith("(?<", i)) {
        const end = p.indexOf(">", i);
        names.push(p.slice(i + 3, end));
        groups++;
        i = end + 1;
      } else if (p.startsWith("(?:", i)) i += 3;
      else {
        groups++;
        i++;
      }
      stack.push({ repeats: false, alternates: false });
      last = "none";
    } else if (c === ")") {
      const closed = stack.pop()!;
      top().repeats ||= closed.repeats;
      top().alternates ||= closed.alternates;
      last = closed;
      i++;
    } else if (c === "|") {
      top().alternates = true;
      last = "none";
      i++;
    } else if (c === "*" || c === "+" || c === "?" || c === "{") {
      let max = c === "?" ? 1 : Infinity;
      if (c === "{") {
        // The u flag already refused anything but {n}, {n,} and {n,m} here.
        const end = p.indexOf("}", i);
        const [lower, upper] = p.slice(i + 1, end).split(",");
        max = upper === undefined ? Number(lower) : upper === "" ? Infinity : Number(upper);
        i = end + 1;
      } else i++;
      if (p[i] === "?") i++; // lazy quantifiers backtrack just the same
      if (last !== "none" && last !== "atom" && (last.repeats || last.alternates)) {
        return "nested quantifier: a repeated group may not contain a repetition or alternatives ((a+)+ and (a|aa)* take exponential time; use a character class such as [ab]+)";
      }
      if (max > boundedLimit && ++unbounded > maxUnbounded) {
        return `more than ${maxUnbounded} unbounded repetitions (*, +, {n,}) are not allowed`;
      }
      top().repeats = true;
      last = "none";
    } else {
      last = c === "^" || c === "$" ? "none" : "atom";
      i++;
    }
  }
  return { groups, names };
}

export interface CapturePattern {
  regex: RegExp;
  group: number | string;
}

export function compileCapture(pattern: string, group?: number | string, ignoreCase = false): CapturePattern {
  const problem = captureProblem(pattern, group);
  if (problem) throw new Error(problem.message);
  const regex = new RegExp(pattern, ignoreCase ? "iu" : "u");
  const shape = analyse(pattern);
  const groups = typeof shape === "string" ? 0 : shape.groups;
  return { regex, group: group ?? (groups > 0 ? 1 : 0) };
}

/** The captured text, or null when the value does not match (or is longer than maxCaptureInput). */
export function capture(p: CapturePattern, text: string): string | null {
  if (text.length > maxCaptureInput) return null;
  const m = p.regex.exec(text);
  if (!m) return null;
  const value = typeof p.group === "number" ? m[p.group] : m.groups?.[p.group];
  return value ?? null;
}
