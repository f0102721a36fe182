/**
 * Password policies of Auth0 database connections, as a pure checker.
 *
 * Sources (Auth0 docs): "Password Strength in Auth0 Database Connections" (the five levels and
 * their minimum lengths; `password_complexity_options.min_length` supersedes the level's minimum),
 * "Configure Password Policies in Auth0 Database Connections" (history, dictionary of 10,000
 * common passwords compared case-insensitively, personal data), and "Configure the Flexible
 * Password Policy for Auth0 Database Connections" (`password_options`: character types, blocking
 * three or more sequential or identical characters, the 72-byte maximum).
 *
 * Each violation is reported as "<Auth0 error name>: <rule>", the error name being the one the
 * Management API puts in its 400 message (PasswordStrengthError, PasswordDictionaryError,
 * PasswordNoUserInfoError, PasswordHistoryError).
 */
import type { ConnectionOptions, PasswordPolicy } from "./types.js";

export interface PasswordOwner {
  email?: string;
  username?: string;
  name?: string;
  given_name?: string;
  family_name?: string;
  nickname?: string;
  user_metadata?: Record<string, unknown>;
}

/** Minimum length per level ("Password Strength…", table "Minimum Password Length"). */
export const POLICY_MIN_LENGTH: Record<PasswordPolicy, number> = { none: 1, low: 6, fair: 8, good: 8, excellent: 10 };

/** The maximum bcrypt hashes ("The minimum password length you can set is 1 byte, while the maximum is 72 bytes"). */
export const MAX_PASSWORD_BYTES = 72;

const CLASSES = {
  lowercase: { test: /[a-z]/, label: "lower case letters (a-z)" },
  uppercase: { test: /[A-Z]/, label: "upper case letters (A-Z)" },
  number: { test: /[0-9]/, label: "numbers (such as 0-9)" },
  // ASCII punctuation and space only: a letter outside a-z/A-Z (é, ß) is no special character here.
  special: { test: /[ !"#$%&'()*+,\-./:;<=>?@[\\\]^_`{|}~]/, label: "special characters (such as !@#$%^&*)" },
} as const;
type CharacterClass = keyof typeof CLASSES;
const ALL_CLASSES = Object.keys(CLASSES) as CharacterClass[];

/**
 * The head of SecLists' "10k-most-common" list, which Auth0 names as its default dictionary. The
 * emulator ships only these entries; the real list has 10,000 (see docs/emulator.md, deviations).
 */
export const COMMON_PASSWORDS: readonly string[] = [
  "123456",
  "password",
  "12345678",
  "qwerty",
  "123456789",
  "12345",
  "1234",
  "111111",
  "1234567",
  "dragon",
  "123123",
  "baseball",
  "abc123",
  "football",
  "monkey",
  "letmein",
  "696969",
  "shadow",
  "master",
  "666666",
  "qwertyuiop",
  "123321",
  "mustang",
  "1234567890",
  "michael",
  "654321",
  "superman",
  "1qaz2wsx",
  "7777777",
  "121212",
  "000000",
  "qazwsx",
  "123qwe",
  "killer",
  "trustno1",
  "jordan",
  "jennifer",
  "zxcvbnm",
  "asdfgh",
  "hunter",
  "buster",
  "soccer",
  "harley",
  "batman",
  "andrew",
  "tigger",
  "sunshine",
  "iloveyou",
  "2000",
  "charlie",
  "robert",
  "thomas",
  "hockey",
  "ranger",
  "daniel",
  "starwars",
  "klaster",
  "112233",
  "george",
  "computer",
  "michelle",
  "jessica",
  "pepper",
  "1111",
  "zxcvbn",
  "555555",
  "11111111",
  "131313",
  "freedom",
  "777777",
  "pass",
  "maggie",
  "159753",
  "aaaaaa",
  "ginger",
  "princess",
  "joshua",
  "cheese",
  "amanda",
  "summer",
  "love",
  "ashley",
  "6969",
  "nicole",
  "chelsea",
  "biteme",
  "matthew",
  "access",
  "yankees",
  "987654321",
  "dallas",
  "austin",
  "thunder",
  "taylor",
  "matrix",
  "welcome",
  "password1",
  "p@ssw0rd",
  "admin",
  "passw0rd",
];

function bytes(s: string): number {
  return Buffer.byteLength(s, "utf8");
}

function hasRun(password: string, length: number, step: 0 | 1): boolean {
  const cps = [...password].map((c) => c.codePointAt(0)!);
  for (let i = 0; i + length <= cps.length; i++) {
    let up = true;
    let down = true;
    for (let j = 1; j < length; j++) {
      const d = cps[i + j]! - cps[i + j - 1]!;
      if (d !== step) up = false;
      if (d !== -step) down = false;
    }
    if (up || down) return true;
  }
  return false;
}

/** Lower-cased, non-empty profile values a password may not contain. */
function personalValues(owner: PasswordOwner | undefined, fields?: string[]): string[] {
  if (!owner) return [];
  const meta = owner.user_metadata ?? {};
  const pick = (field: string): unknown => {
    if (field === "email") return owner.email?.split("@")[0];
    if (field.startsWith("user_metadata.")) return meta[field.slice("user_metadata.".length)];
    return (owner as Record<string, unknown>)[field];
  };
  // The legacy fields, plus given_name and family_name (stricter than the documented list).
  const names = fields ?? [
    "name",
    "username",
    "nickname",
    "given_name",
    "family_name",
    "email",
    "user_metadata.name",
    "user_metadata.first",
    "user_metadata.last",
  ];
  return names
    .map(pick)
    .filter((v): v is string => typeof v === "string" && v.trim() !== "")
    .map((v) => v.toLowerCase());
}

function strength(
  password: string,
  minLength: number,
  classes: CharacterClass[],
  need: number,
  noIdentical: boolean,
  noSequential: boolean,
): string[] {
  const out: string[] = [];
  if ([...password].length < minLength) out.push(`PasswordStrengthError: At least ${minLength} characters in length`);
  if (need > 0) {
    const present = classes.filter((c) => CLASSES[c].test.test(password)).length;
    if (present < need) {
      out.push(
        `PasswordStrengthError: Contain at least ${need} of the following ${classes.length} types of characters: ${classes.map((c) => CLASSES[c].label).join(", ")}`,
      );
    }
  }
  if (noIdentical && hasRun(password, 3, 0))
    out.push('PasswordStrengthError: No more than 2 identical characters in a row (such as, "aaa" not allowed)');
  if (noSequential && hasRun(password, 3, 1))
    out.push('PasswordStrengthError: No 3 or more sequential characters (such as "abc" or "321")');
  return out;
}

/**
 * Why Auth0 would refuse `password` on a database connection with these options ([] = accepted).
 * `user` is the profile the password belongs to, for the personal-data rule.
 */
export function passwordPolicyViolations(password: string, options: ConnectionOptions, user?: PasswordOwner): string[] {
  const out: string[] = [];
  const flexible = options.password_options as Record<string, Record<string, unknown> | undefined> | undefined;
  if (flexible && typeof flexible === "object") {
    const c = flexible.complexity ?? {};
    const types = (Array.isArray(c.character_types) ? c.character_types : []).filter((t): t is CharacterClass =>
      ALL_CLASSES.includes(t as CharacterClass),
    );
    const rule = c.character_type_rule === "three_of_four" ? "three_of_four" : "all";
    const minLength = typeof c.min_length === "number" ? c.min_length : 1;
    out.push(
      ...strength(
        password,
        minLength,
        rule === "three_of_four" ? ALL_CLASSES : types,
        rule === "three_of_four" ? 3 : types.length,
        c.identical_characters === "block",
        c.sequential_characters === "block",
      ),
    );
    if (c.max_length_exceeded === "error" && bytes(password) > MAX_PASSWORD_BYTES)
      out.push(`PasswordStrengthError: At most ${MAX_PASSWORD_BYTES} bytes`);
    const d = flexible.dictionary;
    if (d?.active === true) out.push(...dictionary(password, Array.isArray(d.custom) ? (d.custom as string[]) : []));
    const p = flexible.profile_data;
    if (p?.active === true)
      out.push(
        ...personal(password, user, Array.isArray(p.blocked_fields) ? (p.blocked_fields as string[]) : undefined),
      );
    return out;
  }

  const policy: PasswordPolicy = options.passwordPolicy ?? "none";
  const minLength = options.password_complexity_options?.min_length ?? POLICY_MIN_LENGTH[policy];
  if (policy === "fair")
    out.push(...strength(password, minLength, ["lowercase", "uppercase", "number"], 3, false, false));
  else if (policy === "good" || policy === "excellent")
    out.push(...strength(password, minLength, ALL_CLASSES, 3, policy === "excellent", false));
  else out.push(...strength(password, minLength, [], 0, false, false));
  if (options.password_dictionary?.enable === true)
    out.push(...dictionary(password, options.password_dictionary.dictionary ?? []));
  if (options.password_no_personal_info?.enable === true) out.push(...personal(password, user));
  return out;
}

function dictionary(password: string, custom: string[]): string[] {
  const lower = password.toLowerCase();
  const hit = COMMON_PASSWORDS.includes(lower) || custom.some((w) => w.toLowerCase() === lower);
  return hit ? ["PasswordDictionaryError: Password is too common"] : [];
}

function personal(password: string, user: PasswordOwner | undefined, fields?: string[]): string[] {
  const lower = password.toLowerCase();
  return personalValues(user, fields).some((v) => lower.includes(v))
    ? ["PasswordNoUserInfoError: Password contains user information"]
    : [];
}

/**
 * The Management API's 400 message for the first violation (auth0/auth0-java#283; Auth0 docs
 * "Password Strength in Auth0 Database Connections").
 */
export function passwordErrorMessage(violation: string): string {
  const name = violation.split(":")[0];
  switch (name) {
    case "PasswordDictionaryError":
      return "PasswordDictionaryError: Password is too common";
    case "PasswordNoUserInfoError":
      return "PasswordNoUserInfoError: Password contains user information";
    case "PasswordHistoryError":
      return "PasswordHistoryError: Password has previously been used";
    default:
      return "PasswordStrengthError: Password is too weak";
  }
}
