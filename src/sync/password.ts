import { randomInt } from "node:crypto";

/**
 * The password nobody will ever know: Auth0 requires one on database users, and the invitation
 * (password-change ticket) lets the user choose their own. Never stored, never logged.
 *
 * It must pass every password policy a database connection can have (Auth0 "Password Strength in
 * Auth0 Database Connections", "Flexible password policy"): up to "excellent" (at least 10
 * characters, three of four character kinds, no more than two identical characters in a row), a
 * minimum length, the password dictionary, no personal information (name, username, email), and
 * no three-character sequences. So: every kind of character, no character next to itself or to its
 * neighbour in the alphabet (which rules out runs and sequences such as "aaa", "abc" or "321"),
 * random letters far from any dictionary word, no fragment of the user's own data, and at most 72
 * bytes (bcrypt's limit).
 */
const kinds = ["abcdefghijkmnopqrstuvwxyz", "ABCDEFGHJKLMNPQRSTUVWXYZ", "23456789", "!#$%&*+-=?@^_~"];
const all = kinds.join("");

function pick(from: string, prev: string | undefined): string {
  for (;;) {
    const c = from[randomInt(from.length)]!;
    if (prev === undefined) return c;
    // Neither the same character nor its neighbour, in either case: no "aa", "aA", "ab", "Ba".
    const a = c.toLowerCase().charCodeAt(0);
    const b = prev.toLowerCase().charCodeAt(0);
    if (Math.abs(a - b) > 1 && Math.abs(c.charCodeAt(0) - prev.charCodeAt(0)) > 1) return c;
  }
}

export interface PasswordRules {
  /** `password_complexity_options.min_length` of the connection. */
  minLength?: number;
  /** The user's own data the password must not contain (name, username, email). */
  personalInfo?: (string | null | undefined)[];
}

/** Fragments of personal data that a "no personal info" check could match (lower-cased). */
function fragments(values: (string | null | undefined)[]): string[] {
  const out = new Set<string>();
  for (const v of values) {
    if (!v || v.trim() === "") continue;
    const lower = v.toLowerCase();
    // The whole value whatever its length (Auth0 compares whole values), the email's local part, and longer words.
    out.add(lower);
    const local = lower.split("@")[0]!;
    if (lower.includes("@") && local !== "") out.add(local);
    for (const part of lower.split(/[^a-z0-9]+/)) if (part.length >= 3) out.add(part);
  }
  return [...out];
}

export function throwawayPassword(rules: PasswordRules = {}): string {
  const length = Math.min(72, Math.max(24, rules.minLength ?? 0));
  const banned = fragments(rules.personalInfo ?? []);
  for (;;) {
    // One character of each kind first, in a random order, then any kind.
    const order = [0, 1, 2, 3].sort(() => randomInt(3) - 1);
    let out = "";
    for (const k of order) out += pick(kinds[k]!, out.at(-1));
    while (out.length < length) out += pick(all, out.at(-1));
    const lower = out.toLowerCase();
    if (!banned.some((f) => lower.includes(f))) return out;
  }
}
