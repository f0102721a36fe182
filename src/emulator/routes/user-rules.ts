/**
 * Auth0's rules for user bodies (Auth0 docs "Manage Metadata with the Management API", "Metadata Field
 * Names and Data Types", "Block and Unblock Users"): which properties POST and PATCH accept, metadata
 * key rules, the top-level-only merge of app_metadata/user_metadata with `null` deleting a key and
 * `{}` wiping the object, and that setting a password lifts an admin block. Also what the
 * user's connection allows: its password policy, `username` only where it requires one, and no
 * updates of root attributes an upstream identity provider overwrites at each login.
 */
import { createHash, createHmac, randomBytes } from "node:crypto";
import {
  IDP_ROOT_ATTRIBUTES,
  isIdpStrategy,
  requiresUsername,
  rootAttributesMode,
  usernameBounds,
} from "../connection-options.js";
import { ApiError, conflict, invalidBody } from "../errors.js";
import { passwordErrorMessage, passwordPolicyViolations } from "../password-policy.js";
import { jsonType } from "../router.js";
import type { EmulatorState } from "../state.js";
import type { Connection, User } from "../types.js";
import { isPlainObject, nowIso, randomHex } from "../util.js";
import { storeNativePassword } from "../password-hashes.js";

/** Auth0 docs "Metadata Field Names and Data Types". */
export const RESERVED_APP_METADATA_KEYS = new Set([
  "__tenant",
  "_id",
  "blocked",
  "clientID",
  "created_at",
  "email_verified",
  "email",
  "globalClientID",
  "global_client_id",
  "identities",
  "lastIP",
  "lastLogin",
  "loginsCount",
  "metadata",
  "multifactor_last_modified",
  "multifactor",
  "updated_at",
  "user_id",
]);

const STRING_PROPS = [
  "email",
  "password",
  "username",
  "phone_number",
  "given_name",
  "family_name",
  "name",
  "nickname",
  "picture",
  "connection",
  "client_id",
  "user_id",
];
const BOOLEAN_PROPS = ["blocked", "email_verified", "verify_email", "phone_verified", "verify_phone_number"];
const CREATE_PROPS = new Set([
  "connection",
  "email",
  "password",
  "user_id",
  "username",
  "phone_number",
  "given_name",
  "family_name",
  "name",
  "nickname",
  "picture",
  "blocked",
  "email_verified",
  "verify_email",
  "phone_verified",
  "app_metadata",
  "user_metadata",
]);
const PATCH_PROPS = new Set([
  "blocked",
  "email",
  "email_verified",
  "phone_number",
  "phone_verified",
  "given_name",
  "family_name",
  "name",
  "nickname",
  "picture",
  "password",
  "username",
  "verify_email",
  "verify_phone_number",
  "connection",
  "client_id",
  "app_metadata",
  "user_metadata",
]);
/** Root attributes PATCH may unset with null. */
const NULLABLE_ROOT = new Set(["given_name", "family_name", "name", "nickname", "picture", "phone_number", "username"]);
const EMAIL = /^[^\s@]+@[^\s@]+\.[^\s@]+$/;

/**
 * "Auth0 introduced a 10KB limit on the serialized representation of user profile data" (Auth0
 * docs "Migrate Oversized User Profiles"). Auth0 still accepts writes within an "extended
 * allowance" of about ten times that, with a warning; the emulator refuses above 10 KB.
 */
export const MAX_PROFILE_BYTES = 10 * 1024;
/** Characters Auth0 allows in a username (letters, digits and `_ + - . ! # $ ' ^ \` ~ @`). */
const USERNAME = /^[A-Za-z0-9_+\-.!#$'^`~@]+$/;
/** Key for the digests of past passwords (password_history); never the passwords themselves. */
const DIGEST_KEY = randomBytes(32);

export const isDatabase = (c: Connection): boolean => c.strategy === "auth0";
export const isPasswordless = (c: Connection): boolean => c.strategy === "email" || c.strategy === "sms";

function checkShape(body: Record<string, unknown>, allowed: Set<string>, nullable: Set<string>): void {
  const extra = Object.keys(body).filter((k) => !allowed.has(k));
  if (extra.length) throw invalidBody(`'Additional properties not allowed: ${extra.join(",")}'.`);
  for (const [key, value] of Object.entries(body)) {
    if (value === null && nullable.has(key)) continue;
    const want = STRING_PROPS.includes(key) ? "string" : BOOLEAN_PROPS.includes(key) ? "boolean" : "object";
    const got = jsonType(value);
    if (want !== got) throw invalidBody(`'Expected type ${want} but found type ${got}' on property ${key}.`);
  }
  if (typeof body.email === "string" && !EMAIL.test(body.email)) {
    throw invalidBody(`'Object didn't pass validation for format email: ${body.email}' on property email.`);
  }
}

/** Metadata field names may not contain "." or "$"; app_metadata may not use reserved keys. */
export function checkMetadata(name: "app_metadata" | "user_metadata", value: Record<string, unknown>): void {
  for (const key of Object.keys(value)) {
    if (name === "app_metadata" && RESERVED_APP_METADATA_KEYS.has(key)) {
      throw invalidBody(`'${key}' is a reserved key and cannot be used in app_metadata.`);
    }
  }
  const walk = (v: unknown, path: string): void => {
    if (Array.isArray(v)) return v.forEach((item) => walk(item, path));
    if (!isPlainObject(v)) return;
    for (const [key, inner] of Object.entries(v)) {
      if (key.includes(".") || key.includes("$"))
        throw invalidBody(`field names cannot contain '.' or '$' (${path}.${key}).`);
      walk(inner, `${path}.${key}`);
    }
  };
  walk(value, name);
}

/** `picture` must be an absolute URI (Auth0: "Object didn't pass validation for format uri"). */
function checkPicture(picture: unknown): void {
  if (typeof picture !== "string") return;
  let ok = /^[A-Za-z][A-Za-z0-9+.-]*:\S+$/.test(picture);
  if (ok) {
    try {
      new URL(picture);
    } catch {
      ok = false;
    }
  }
  if (!ok) throw invalidBody(`'Object didn't pass validation for format uri: ${picture}' on property picture.`);
}

/**
 * `username` is "Only valid if the connection requires a username" (node-auth0 UserCreate /
 * UserUpdate); there it must fit the connection's length bounds and be unique in the connection.
 */
function checkUsername(state: EmulatorState, connection: Connection, username: unknown, userId?: string): void {
  if (username === undefined) return;
  if (!requiresUsername(connection)) {
    throw new ApiError(400, "Cannot set username for connection without requires_username", "operation_not_supported");
  }
  if (typeof username !== "string")
    throw invalidBody("'Expected type string but found type null' on property username.");
  const { min, max } = usernameBounds(connection);
  if (username.length < min)
    throw invalidBody(`'String is too short (${username.length} chars), minimum ${min}' on property username.`);
  if (username.length > max)
    throw invalidBody(`'String is too long (${username.length} chars), maximum ${max}' on property username.`);
  if (!USERNAME.test(username))
    throw invalidBody(`'String does not match pattern ${USERNAME.source}: ${username}' on property username.`);
  for (const other of state.users.values()) {
    if (
      other.user_id !== userId &&
      other.username === username &&
      other.identities.some((i) => i.connection === connection.name)
    ) {
      throw conflict("The username provided is in use already.", "auth0_idp_error");
    }
  }
}

function digest(userId: string, password: string): string {
  return createHmac("sha256", DIGEST_KEY).update(`${userId}\0${password}`).digest("hex");
}

/** The connection's password policy (and history), with Auth0's 400 on the first violation. */
function checkPassword(state: EmulatorState, connection: Connection, password: string, user: User): void {
  const violations = passwordPolicyViolations(password, connection.options, user);
  if (violations.length) throw new ApiError(400, passwordErrorMessage(violations[0]!), "invalid_password");
  const history = connection.options.password_history;
  if (history?.enable === true) {
    const recent = (state.passwordDigests.get(user.user_id) ?? []).slice(-(history.size ?? 5));
    if (recent.includes(digest(user.user_id, password)))
      throw new ApiError(400, passwordErrorMessage("PasswordHistoryError"), "invalid_password");
  }
}

function recordPassword(state: EmulatorState, userId: string, password: string): void {
  const list = state.passwordDigests.get(userId) ?? [];
  list.push(digest(userId, password));
  state.passwordDigests.set(userId, list.slice(-24)); // "Auth0 retains up to 24 passwords of history"
}

function checkProfileSize(user: User): void {
  const size = Buffer.byteLength(JSON.stringify(userJson(user)));
  if (size > MAX_PROFILE_BYTES) {
    throw invalidBody(`'The user profile would be ${size} bytes; the limit is ${MAX_PROFILE_BYTES} bytes'.`);
  }
}

function gravatar(email: string | undefined): string {
  const hash = createHash("md5")
    .update((email ?? "").trim().toLowerCase())
    .digest("hex");
  return `https://s.gravatar.com/avatar/${hash}?s=480&r=pg&d=https%3A%2F%2Fcdn.auth0.com%2Favatars%2Fdefault.png`;
}

function withoutNulls(value: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== null));
}

/** POST /users — only database and passwordless connections (Management API v2 reference, "Create a user"). */
export function createUser(state: EmulatorState, body: Record<string, unknown>): User {
  checkShape(body, CREATE_PROPS, new Set());
  checkPicture(body.picture);
  if (typeof body.connection !== "string") throw invalidBody("'Missing required property: connection'.");
  const connection = state.connectionByName(body.connection);
  if (!connection) throw new ApiError(400, "The connection does not exist.", "inexistent_connection");
  if (!isDatabase(connection) && !isPasswordless(connection)) {
    throw new ApiError(
      400,
      `Connection ${connection.name} (strategy ${connection.strategy}) is not a database or passwordless connection; users of enterprise connections are created at login.`,
      "operation_not_supported",
    );
  }
  const required = isDatabase(connection)
    ? ["email", "password"]
    : connection.strategy === "email"
      ? ["email"]
      : ["phone_number"];
  if (requiresUsername(connection)) required.push("username");
  for (const prop of required) if (body[prop] === undefined) throw invalidBody(`'Missing required property: ${prop}'.`);

  // Auth0 stores database emails lower-cased (SDK reference); duplicates are per connection.
  const email =
    typeof body.email === "string" ? (isDatabase(connection) ? body.email.toLowerCase() : body.email) : undefined;
  const localId = typeof body.user_id === "string" ? body.user_id : randomHex(12);
  const userId = `${connection.strategy === "auth0" ? "auth0" : connection.strategy}|${localId}`;
  checkUsername(state, connection, body.username, userId);
  for (const other of state.users.values()) {
    const sameConnection = other.identities.some((i) => i.connection === connection.name);
    if (other.user_id === userId || (sameConnection && email !== undefined && other.email === email)) {
      throw conflict("The user already exists.", "auth0_idp_error");
    }
  }
  const app = isPlainObject(body.app_metadata) ? body.app_metadata : {};
  const usr = isPlainObject(body.user_metadata) ? body.user_metadata : {};
  checkMetadata("app_metadata", app);
  checkMetadata("user_metadata", usr);

  const now = nowIso();
  const user: User = {
    user_id: userId,
    ...(email !== undefined ? { email } : {}),
    email_verified: body.email_verified === true,
    ...(typeof body.username === "string" ? { username: body.username } : {}),
    ...(typeof body.phone_number === "string"
      ? { phone_number: body.phone_number, phone_verified: body.phone_verified === true }
      : {}),
    ...(typeof body.given_name === "string" ? { given_name: body.given_name } : {}),
    ...(typeof body.family_name === "string" ? { family_name: body.family_name } : {}),
    name: typeof body.name === "string" ? body.name : (email ?? (body.phone_number as string | undefined) ?? userId),
    nickname: typeof body.nickname === "string" ? body.nickname : (email?.split("@")[0] ?? userId),
    picture: typeof body.picture === "string" ? body.picture : gravatar(email),
    ...(typeof body.blocked === "boolean" ? { blocked: body.blocked } : {}),
    app_metadata: withoutNulls(app),
    user_metadata: withoutNulls(usr),
    identities: [{ connection: connection.name, provider: connection.strategy, user_id: localId, isSocial: false }],
    created_at: now,
    updated_at: now,
    logins_count: 0,
  };
  if (isDatabase(connection) && typeof body.password === "string")
    checkPassword(state, connection, body.password, user);
  checkProfileSize(user);
  state.saveUser(user);
  if (typeof body.password === "string") {
    recordPassword(state, userId, body.password);
    if (isDatabase(connection)) state.passwords.set(user.user_id, storeNativePassword(body.password));
  }
  return user;
}

function mergeTopLevel(current: Record<string, unknown>, patch: Record<string, unknown>): Record<string, unknown> {
  if (Object.keys(patch).length === 0) return {}; // {"app_metadata":{}} wipes it
  const merged = { ...current };
  for (const [key, value] of Object.entries(patch)) {
    if (value === null) delete merged[key];
    else merged[key] = value; // nested objects are replaced whole
  }
  return merged;
}

/** PATCH /users/{id}: root attributes replaced (null unsets), metadata merged at the top level only. */
export function patchUser(state: EmulatorState, user: User, body: Record<string, unknown>): User {
  checkShape(body, PATCH_PROPS, NULLABLE_ROOT);
  const primary = state.connectionByName(user.identities[0]?.connection ?? "");
  const database = primary ? isDatabase(primary) : false;
  if (typeof body.connection === "string" && !state.connectionByName(body.connection)) {
    throw new ApiError(400, "The connection does not exist.", "inexistent_connection");
  }
  if (body.email_verified !== undefined && primary && !database && primary.strategy !== "email") {
    throw new ApiError(
      400,
      "email_verified is not supported for enterprise and passwordless SMS users.",
      "operation_not_supported",
    );
  }
  if (body.password !== undefined && !database) {
    throw new ApiError(
      400,
      "Cannot update password of a user that is not in a database connection.",
      "operation_not_supported",
    );
  }
  checkPicture(body.picture);
  if (primary && isIdpStrategy(primary.strategy)) {
    // Configure Connection Sync with Auth0: with "Sync user profile attributes at each login"
    // (on_each_login, the default) the IdP owns these; an IdP user's email is never writable.
    const owned = rootAttributesMode(primary) === "on_each_login" ? IDP_ROOT_ATTRIBUTES.filter((k) => k in body) : [];
    const refused = [...("email" in body ? ["email"] : []), ...owned].sort();
    if (refused.length) {
      throw new ApiError(
        400,
        `The following user attributes cannot be updated: ${refused.join(", ")}. The connection (${primary.name}) must either be a database connection (using the Auth0 store), a passwordless connection (email or sms) or has disabled 'Sync user profile attributes at each login'. For more information, see https://auth0.com/docs/dashboard/guides/connections/configure-connection-sync`,
        "operation_not_supported",
      );
    }
  }
  if (primary && "username" in body) checkUsername(state, primary, body.username, user.user_id);
  if (isPlainObject(body.app_metadata)) checkMetadata("app_metadata", body.app_metadata);
  if (isPlainObject(body.user_metadata)) checkMetadata("user_metadata", body.user_metadata);

  const next: User = structuredClone(user);
  if (typeof body.email === "string") {
    const email = database ? body.email.toLowerCase() : body.email;
    const connectionName = user.identities[0]?.connection;
    for (const other of state.users.values()) {
      if (
        other.user_id !== user.user_id &&
        other.email === email &&
        other.identities.some((i) => i.connection === connectionName)
      ) {
        throw conflict("The user already exists.", "auth0_idp_error");
      }
    }
    next.email = email;
    if (body.email_verified === undefined) next.email_verified = false;
  }
  for (const key of NULLABLE_ROOT) {
    if (!(key in body)) continue;
    const value = body[key];
    if (value === null) delete (next as unknown as Record<string, unknown>)[key];
    else (next as unknown as Record<string, unknown>)[key] = value;
  }
  if (typeof body.email_verified === "boolean") next.email_verified = body.email_verified;
  if (typeof body.phone_verified === "boolean") next.phone_verified = body.phone_verified;
  // A password reset through the Management API also removes admin blocks (Auth0 docs "Block and Unblock Users").
  if (typeof body.password === "string" && body.blocked === undefined) next.blocked = false;
  if (typeof body.blocked === "boolean") next.blocked = body.blocked;
  if (isPlainObject(body.app_metadata)) next.app_metadata = mergeTopLevel(next.app_metadata, body.app_metadata);
  if (isPlainObject(body.user_metadata)) next.user_metadata = mergeTopLevel(next.user_metadata, body.user_metadata);
  next.updated_at = nowIso();
  // "If you use Management API to set or update a user's password via the Update a User endpoint,
  // the strength policy you set in Auth0 Dashboard applies" (Password Strength in Auth0 Database Connections).
  if (primary && database && typeof body.password === "string") checkPassword(state, primary, body.password, next);
  checkProfileSize(next);
  state.saveUser(next);
  if (typeof body.password === "string") {
    recordPassword(state, next.user_id, body.password);
    state.passwords.set(next.user_id, storeNativePassword(body.password));
  }
  return next;
}

/** The wire form of a user: empty metadata objects are left out, as Auth0 does. */
export function userJson(user: User): Record<string, unknown> {
  const { app_metadata, user_metadata, ...rest } = user;
  return {
    ...rest,
    ...(Object.keys(app_metadata).length ? { app_metadata } : {}),
    ...(Object.keys(user_metadata).length ? { user_metadata } : {}),
  };
}
