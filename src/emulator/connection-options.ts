/**
 * A connection's `options` object: defaults per strategy, validation of what PATCH
 * /connections/{id} sends, and the questions the user rules ask of it.
 *
 * Sources: node-auth0 7.1.0 `ConnectionOptionsAuth0` / `UpdateConnectionOptions` (names and types),
 * its reference for `connections.update` ("If you use the `options` parameter, the entire
 * `options` object is overridden … If any options are unspecified, the default will be used"),
 * Auth0 docs "Configure Connection Sync with Auth0" and the `ConnectionSetUserRootAttributesEnum`
 * description (`on_each_login` is the default), "Password Strength in Auth0 Database Connections"
 * and "Configure Password Policies in Auth0 Database Connections".
 */
import { invalidBody } from "./errors.js";
import type { Connection, ConnectionOptions, SetUserRootAttributes } from "./types.js";
import { isPlainObject, jsonType } from "./util.js";

export const SET_USER_ROOT_ATTRIBUTES: readonly SetUserRootAttributes[] = [
  "on_each_login",
  "on_first_login",
  "never_on_login",
];
export const PASSWORD_POLICIES = ["none", "low", "fair", "good", "excellent"] as const;
/** Root attributes an IdP overwrites at login ("Configure Connection Sync with Auth0"). */
export const IDP_ROOT_ATTRIBUTES = ["family_name", "given_name", "name", "nickname", "picture"] as const;
/** Auth0's default username length bounds for connections that require one. */
export const DEFAULT_USERNAME_LENGTH = { min: 1, max: 15 } as const;

export const isDatabaseStrategy = (strategy: string): boolean => strategy === "auth0";
export const isPasswordlessStrategy = (strategy: string): boolean => strategy === "email" || strategy === "sms";
/** Enterprise and social connections: the profile comes from an upstream identity provider. */
export const isIdpStrategy = (strategy: string): boolean =>
  !isDatabaseStrategy(strategy) && !isPasswordlessStrategy(strategy);

/**
 * What a connection of this strategy has when nobody set its options. The emulator gives database
 * connections the "good" password policy: the docs call "none" the setting's default, but the
 * emulator errs on the strict side (a policy the bridge must satisfy anyway).
 */
export function defaultOptions(strategy: string): ConnectionOptions {
  if (isDatabaseStrategy(strategy))
    return { passwordPolicy: "good", requires_username: false, brute_force_protection: true };
  if (isIdpStrategy(strategy)) return { set_user_root_attributes: "on_each_login" };
  return {};
}

/** The sync setting in force; absent means Auth0's default `on_each_login`. */
export function rootAttributesMode(connection: Connection): SetUserRootAttributes {
  return connection.options.set_user_root_attributes ?? "on_each_login";
}

export function requiresUsername(connection: Connection): boolean {
  return isDatabaseStrategy(connection.strategy) && connection.options.requires_username === true;
}

export function usernameBounds(connection: Connection): { min: number; max: number } {
  const v = connection.options.validation?.username;
  return v ? { min: v.min, max: v.max } : DEFAULT_USERNAME_LENGTH;
}

const where = (path: string) => ` on property options.${path}.`;

function expectType(value: unknown, type: string, path: string, nullable = true): void {
  if (value === undefined || (nullable && value === null)) return;
  const got = jsonType(value);
  const ok = type === "number" ? got === "integer" || got === "number" : got === type;
  if (!ok) throw invalidBody(`'Expected type ${type} but found type ${got}'${where(path)}`);
}

function expectEnum(value: unknown, allowed: readonly string[], path: string): void {
  if (value === undefined || value === null) return;
  if (typeof value !== "string" || !allowed.includes(value))
    throw invalidBody(`'No enum match for: ${JSON.stringify(value)}'${where(path)}`);
}

function expectInt(value: unknown, min: number, max: number, path: string): void {
  if (value === undefined) return;
  if (typeof value !== "number" || !Number.isInteger(value))
    throw invalidBody(`'Expected type integer but found type ${jsonType(value)}'${where(path)}`);
  if (value < min) throw invalidBody(`'Value ${value} is less than minimum ${min}'${where(path)}`);
  if (value > max) throw invalidBody(`'Value ${value} is greater than maximum ${max}'${where(path)}`);
}

function expectKeys(value: Record<string, unknown>, allowed: string[], path: string): void {
  const extra = Object.keys(value).filter((k) => !allowed.includes(k));
  if (extra.length) throw invalidBody(`'Additional properties not allowed: ${extra.join(",")}'${where(path)}`);
}

/**
 * Check an `options` object as PATCH /connections/{id} receives it. Keys the emulator does not
 * model are kept as sent (Auth0's schema "accepts any additional properties"); the ones it models
 * must have Auth0's types and values.
 */
export function validateOptions(raw: unknown): ConnectionOptions {
  if (!isPlainObject(raw))
    throw invalidBody(`'Expected type object but found type ${jsonType(raw)}' on property options.`);
  const o = raw as ConnectionOptions;
  expectEnum(o.set_user_root_attributes, SET_USER_ROOT_ATTRIBUTES, "set_user_root_attributes");
  if (o.set_user_root_attributes === null)
    throw invalidBody(`'Expected type string but found type null'${where("set_user_root_attributes")}`);
  expectEnum(o.passwordPolicy, PASSWORD_POLICIES, "passwordPolicy");
  expectType(o.requires_username, "boolean", "requires_username", false);

  expectType(o.password_complexity_options, "object", "password_complexity_options");
  if (isPlainObject(o.password_complexity_options)) {
    expectKeys(o.password_complexity_options, ["min_length"], "password_complexity_options");
    // "The minimum password length you can set is 1 byte, while the maximum is 72 bytes."
    expectInt(o.password_complexity_options.min_length, 1, 72, "password_complexity_options.min_length");
  }
  expectType(o.password_dictionary, "object", "password_dictionary");
  if (isPlainObject(o.password_dictionary)) {
    const d = o.password_dictionary as Record<string, unknown>;
    expectKeys(d, ["enable", "dictionary"], "password_dictionary");
    if (typeof d.enable !== "boolean")
      throw invalidBody(`'Missing required property: enable'${where("password_dictionary")}`);
    expectType(d.dictionary, "array", "password_dictionary.dictionary", false);
    if (Array.isArray(d.dictionary)) {
      // node-auth0: "Custom Password Dictionary. An array of up to 200 entries." (each up to 50 characters)
      if (d.dictionary.length > 200)
        throw invalidBody(
          `'Array is too long (${d.dictionary.length}), maximum 200'${where("password_dictionary.dictionary")}`,
        );
      for (const w of d.dictionary) {
        if (typeof w !== "string")
          throw invalidBody(
            `'Expected type string but found type ${jsonType(w)}'${where("password_dictionary.dictionary")}`,
          );
        if (w.length > 50)
          throw invalidBody(
            `'String is too long (${w.length} chars), maximum 50'${where("password_dictionary.dictionary")}`,
          );
      }
    }
  }
  for (const key of ["password_no_personal_info", "password_history"] as const) {
    expectType(o[key], "object", key);
    if (isPlainObject(o[key])) {
      const v = o[key] as Record<string, unknown>;
      expectKeys(v, key === "password_history" ? ["enable", "size"] : ["enable"], key);
      if (typeof v.enable !== "boolean") throw invalidBody(`'Missing required property: enable'${where(key)}`);
      // "Auth0 retains up to 24 passwords of history"
      if (key === "password_history") expectInt(v.size, 1, 24, "password_history.size");
    }
  }
  expectType(o.validation, "object", "validation");
  if (isPlainObject(o.validation)) {
    expectKeys(o.validation, ["username"], "validation");
    const u = o.validation.username;
    expectType(u, "object", "validation.username");
    if (isPlainObject(u)) {
      expectKeys(u, ["min", "max"], "validation.username");
      expectInt(u.min, 1, 128, "validation.username.min");
      expectInt(u.max, 1, 128, "validation.username.max");
      if (typeof u.min !== "number" || typeof u.max !== "number")
        throw invalidBody(`'Missing required property: min, max'${where("validation.username")}`);
      if (u.min > u.max) throw invalidBody(`'min must not be greater than max'${where("validation.username")}`);
    }
  }
  expectType(o.password_options, "object", "password_options", false);
  if (isPlainObject(o.password_options)) {
    const c = o.password_options.complexity;
    expectType(c, "object", "password_options.complexity", false);
    if (isPlainObject(c)) {
      expectInt(c.min_length, 1, 72, "password_options.complexity.min_length");
      if (c.character_types !== undefined) {
        if (!Array.isArray(c.character_types))
          throw invalidBody(`'Expected type array'${where("password_options.complexity.character_types")}`);
        for (const t of c.character_types)
          expectEnum(t, ["uppercase", "lowercase", "number", "special"], "password_options.complexity.character_types");
      }
      expectEnum(c.character_type_rule, ["all", "three_of_four"], "password_options.complexity.character_type_rule");
      expectEnum(c.identical_characters, ["allow", "block"], "password_options.complexity.identical_characters");
      expectEnum(c.sequential_characters, ["allow", "block"], "password_options.complexity.sequential_characters");
      expectEnum(c.max_length_exceeded, ["truncate", "error"], "password_options.complexity.max_length_exceeded");
    }
    for (const [section, key, max] of [
      ["dictionary", "custom", 200],
      ["profile_data", "blocked_fields", 12],
    ] as const) {
      const v = o.password_options[section];
      expectType(v, "object", `password_options.${section}`, false);
      if (!isPlainObject(v)) continue;
      expectType(v.active, "boolean", `password_options.${section}.active`, false);
      const list = v[key];
      if (list === undefined) continue;
      if (!Array.isArray(list))
        throw invalidBody(
          `'Expected type array but found type ${jsonType(list)}'${where(`password_options.${section}.${key}`)}`,
        );
      if (list.length > max)
        throw invalidBody(
          `'Array is too long (${list.length}), maximum ${max}'${where(`password_options.${section}.${key}`)}`,
        );
      for (const item of list) {
        if (typeof item !== "string")
          throw invalidBody(
            `'Expected type string but found type ${jsonType(item)}'${where(`password_options.${section}.${key}`)}`,
          );
      }
    }
  }
  return structuredClone(o);
}
