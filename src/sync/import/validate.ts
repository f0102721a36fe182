/**
 * The bridge's own check of each migration record, before anything is sent (pure; no I/O). Rules
 * follow Auth0's "Bulk User Import Database Schema and Examples"
 * (auth0.com/docs/manage-users/user-migration/bulk-user-import-schema): `email` required, no
 * properties beyond the schema's, bcrypt-only `password_hash`, `custom_password_hash` per
 * algorithm (fields, encodings, salt, HMAC digest and key, scrypt parameters), reserved
 * `app_metadata` keys; plus the metadata size the user profile allows ("Metadata field names and
 * data types": 10 KB). Messages name the field, never its value when the field is a secret.
 */
import { createHash } from "node:crypto";
import { reservedMetadataKeys } from "../../mapping/schema.js";

export interface RecordProblem {
  record: number;
  field: string;
  message: string;
}

/** A record as the bridge sends it to Auth0, and what the bridge keeps for itself. */
export interface ImportUser {
  /** The Auth0 import object (bridge-only fields removed). */
  user: Record<string, unknown>;
  emailLower: string;
  /** The IdP's externalId for this person, when the file carries one (never sent to Auth0). */
  externalId: string | null;
}

export const HASH_ALGORITHMS = [
  "argon2",
  "bcrypt",
  "hmac",
  "ldap",
  "md4",
  "md5",
  "sha1",
  "sha256",
  "sha512",
  "pbkdf2",
  "scrypt",
] as const;
const HMAC_DIGESTS = ["md4", "md5", "ripemd160", "sha1", "sha224", "sha256", "sha384", "sha512", "whirlpool"];
const VALUE_ENCODINGS = ["base64", "hex", "utf8"];
const PASSWORD_ENCODINGS = ["ascii", "utf8", "utf16le", "ucs2", "latin1", "binary"];
const LDAP_SCHEMES = ["MD5", "SMD5", "SHA", "SSHA", "SHA256", "SSHA256", "SHA384", "SSHA384", "SHA512", "SSHA512"];
const PBKDF2_DIGESTS = new Set([
  "md4",
  "md5",
  "ripemd160",
  "rmd160",
  "sha1",
  "sha224",
  "sha256",
  "sha384",
  "sha512",
  "sha512-224",
  "sha512-256",
  "sha3-224",
  "sha3-256",
  "sha3-384",
  "sha3-512",
  "whirlpool",
  "rsa-md4",
  "rsa-md5",
  "rsa-ripemd160",
  "rsa-sha1",
  "rsa-sha1-2",
  "rsa-sha224",
  "rsa-sha256",
  "rsa-sha384",
  "rsa-sha512",
  "rsa-sha512/224",
  "rsa-sha512/256",
  "rsa-sha3-224",
  "rsa-sha3-256",
  "rsa-sha3-384",
  "rsa-sha3-512",
  "sha512/224",
  "sha512/256",
]);
/** Fields of Auth0's import schema. */
const AUTH0_FIELDS = new Set([
  "email",
  "email_verified",
  "user_id",
  "username",
  "given_name",
  "family_name",
  "name",
  "nickname",
  "picture",
  "blocked",
  "phone_number",
  "phone_verified",
  "app_metadata",
  "user_metadata",
  "password_hash",
  "custom_password_hash",
  "mfa_factors",
]);
/** Bridge-only fields: kept by the bridge, removed before upload (the schema allows no others). */
const BRIDGE_FIELDS = new Set(["external_id"]);
const STRINGS = [
  "email",
  "user_id",
  "username",
  "given_name",
  "family_name",
  "name",
  "nickname",
  "picture",
  "phone_number",
  "password_hash",
  "external_id",
];
const BOOLEANS = ["email_verified", "blocked", "phone_verified"];
export const MAX_METADATA_BYTES = 10 * 1024;

const EMAIL = /^[^\s@"(),:;<>[\]\\]+@[^\s@"(),:;<>[\]\\]+\.[^\s@"(),:;<>[\]\\]+$/;
const E164 = /^\+[1-9][0-9]{1,14}$/;
const HEX = /^(?:[0-9a-fA-F]{2})+$/;
const BASE64 = /^[A-Za-z0-9+/\-_]+={0,2}$/;
const BCRYPT = /^\$2[ab]\$(0[4-9]|[12][0-9]|3[01])\$[./A-Za-z0-9]{53}$/;
const BCRYPT_CUSTOM = /^\$2[aby]\$(0[4-9]|[12][0-9]|3[01])\$[./A-Za-z0-9]{53}$/;
const ARGON2 = /^\$argon2(id|i|d)\$v=\d+\$m=\d+,t=\d+,p=\d+\$[A-Za-z0-9+/]+\$[A-Za-z0-9+/]+$/;
const PBKDF2 = /^\$pbkdf2-([A-Za-z0-9/-]+)\$((?:[il]=\d+)(?:,[il]=\d+)?)?\$[A-Za-z0-9+/.]+\$[A-Za-z0-9+/.]+$/;

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);

function validEncoded(value: string, encoding: string): boolean {
  if (encoding === "hex") return HEX.test(value);
  if (encoding === "base64") return BASE64.test(value);
  return encoding === "utf8";
}

function decodedLength(value: string, encoding: string): number {
  if (encoding === "hex") return value.length / 2;
  if (encoding === "base64") return Buffer.from(value.replace(/-/g, "+").replace(/_/g, "/"), "base64").length;
  return Buffer.byteLength(value, "utf8");
}

/** Problems of one custom_password_hash, as (field, message) pairs. */
export function customHashProblems(spec: unknown): [string, string][] {
  const out: [string, string][] = [];
  const f = "custom_password_hash";
  if (!isObject(spec)) return [[f, "must be an object {algorithm, hash, …}"]];
  for (const k of Object.keys(spec)) {
    if (!["algorithm", "hash", "salt", "password", "keylen", "cost", "blockSize", "parallelization"].includes(k))
      out.push([`${f}.${k}`, "is not a property of custom_password_hash"]);
  }
  const algorithm = spec.algorithm;
  if (typeof algorithm !== "string" || !(HASH_ALGORITHMS as readonly string[]).includes(algorithm)) {
    out.push([
      `${f}.algorithm`,
      `unknown algorithm ${JSON.stringify(algorithm)}; Auth0 accepts ${HASH_ALGORITHMS.join(", ")}`,
    ]);
    return out;
  }
  const hash = spec.hash;
  if (!isObject(hash) || typeof hash.value !== "string" || hash.value === "") {
    out.push([`${f}.hash.value`, "is required"]);
    return out;
  }
  for (const k of Object.keys(hash))
    if (!["value", "encoding", "digest", "key"].includes(k)) out.push([`${f}.hash.${k}`, "is not a property of hash"]);
  const encoding = hash.encoding ?? "utf8";
  const value = hash.value;
  if (typeof encoding !== "string" || !VALUE_ENCODINGS.includes(encoding)) {
    out.push([`${f}.hash.encoding`, "must be base64, hex or utf8"]);
    return out;
  }
  const salt = spec.salt;
  if (salt !== undefined) {
    if (!isObject(salt) || typeof salt.value !== "string")
      out.push([`${f}.salt.value`, "is required when salt is given"]);
    else {
      const se = salt.encoding ?? "utf8";
      if (typeof se !== "string" || !VALUE_ENCODINGS.includes(se))
        out.push([`${f}.salt.encoding`, "must be base64, hex or utf8"]);
      else if (!validEncoded(salt.value, se)) out.push([`${f}.salt.value`, `is not valid ${se}`]);
      if (salt.position !== undefined && salt.position !== "prefix" && salt.position !== "suffix")
        out.push([`${f}.salt.position`, "must be prefix or suffix"]);
      for (const k of Object.keys(salt))
        if (!["value", "encoding", "position"].includes(k)) out.push([`${f}.salt.${k}`, "is not a property of salt"]);
    }
  }
  if (spec.password !== undefined) {
    const pe = isObject(spec.password) ? (spec.password.encoding ?? "utf8") : undefined;
    if (typeof pe !== "string" || !PASSWORD_ENCODINGS.includes(pe))
      out.push([`${f}.password.encoding`, `must be one of ${PASSWORD_ENCODINGS.join(", ")}`]);
  }
  for (const k of ["keylen", "cost", "blockSize", "parallelization"]) {
    if (spec[k] === undefined) continue;
    if (algorithm !== "scrypt") out.push([`${f}.${k}`, "is only for scrypt"]);
    else if (!Number.isInteger(spec[k]) || (spec[k] as number) < 1)
      out.push([`${f}.${k}`, "must be a positive integer"]);
  }
  if (algorithm !== "hmac" && (hash.digest !== undefined || hash.key !== undefined))
    out.push([`${f}.hash`, "digest and key are only for hmac"]);
  const encodings = (list: string[]) => {
    if (!list.includes(encoding)) out.push([`${f}.hash.encoding`, `must be ${list.join(" or ")} for ${algorithm}`]);
    else if (!validEncoded(value, encoding)) out.push([`${f}.hash.value`, `is not valid ${encoding}`]);
  };
  const noSalt = () => {
    if (salt !== undefined) out.push([`${f}.salt`, `is not allowed for ${algorithm} (the salt is part of hash.value)`]);
  };
  switch (algorithm) {
    case "argon2":
      encodings(["utf8"]);
      noSalt();
      if (!ARGON2.test(value))
        out.push([`${f}.hash.value`, "must be an argon2 PHC string ($argon2id$v=19$m=…,t=…,p=…$salt$hash)"]);
      break;
    case "bcrypt":
      encodings(["utf8"]);
      if (!BCRYPT_CUSTOM.test(value))
        out.push([
          `${f}.hash.value`,
          "must be a bcrypt hash starting with $2a$, $2b$ or $2y$ ($2$, $2x$ and $sha1$ are not supported)",
        ]);
      if (
        isObject(salt) &&
        typeof salt.value === "string" &&
        decodedLength(salt.value, typeof salt.encoding === "string" ? salt.encoding : "utf8") >= 72
      ) {
        out.push([`${f}.salt.value`, "bcrypt reads at most 72 bytes, salt included"]);
      }
      break;
    case "ldap": {
      encodings(["utf8"]);
      noSalt();
      const m = /^\{([A-Za-z0-9]+)\}(.*)$/.exec(value);
      if (!m || !LDAP_SCHEMES.includes(m[1]!.toUpperCase()))
        out.push([
          `${f}.hash.value`,
          `must be an RFC 2307 value {SCHEME}base64 with scheme ${LDAP_SCHEMES.join(", ")} ({CRYPT} is not supported)`,
        ]);
      else if (!BASE64.test(m[2]!)) out.push([`${f}.hash.value`, "the part after the scheme must be base64"]);
      break;
    }
    case "pbkdf2": {
      encodings(["utf8"]);
      noSalt();
      const m = PBKDF2.exec(value);
      if (!m)
        out.push([
          `${f}.hash.value`,
          "must be a PHC string $pbkdf2-<digest>$i=<iterations>,l=<keylen>$<B64 salt>$<B64 hash>",
        ]);
      else if (!PBKDF2_DIGESTS.has(m[1]!.toLowerCase()))
        out.push([`${f}.hash.value`, `pbkdf2 digest ${m[1]} is not supported`]);
      break;
    }
    case "hmac": {
      encodings(["hex", "base64"]);
      if (typeof hash.digest !== "string" || !HMAC_DIGESTS.includes(hash.digest))
        out.push([`${f}.hash.digest`, `is required for hmac: one of ${HMAC_DIGESTS.join(", ")}`]);
      const key = hash.key;
      if (!isObject(key) || typeof key.value !== "string" || key.value === "")
        out.push([`${f}.hash.key.value`, "is required for hmac"]);
      else {
        const ke = key.encoding ?? "utf8";
        if (typeof ke !== "string" || !VALUE_ENCODINGS.includes(ke))
          out.push([`${f}.hash.key.encoding`, "must be base64, hex or utf8"]);
        else if (!validEncoded(key.value, ke)) out.push([`${f}.hash.key.value`, `is not valid ${ke}`]);
      }
      break;
    }
    case "scrypt": {
      encodings(["hex", "base64"]);
      if (spec.keylen === undefined) out.push([`${f}.keylen`, "is required for scrypt"]);
      const cost = spec.cost ?? 16384;
      if (!Number.isInteger(cost) || (cost as number) < 2 || ((cost as number) & ((cost as number) - 1)) !== 0)
        out.push([`${f}.cost`, "must be a power of 2 greater than 1"]);
      break;
    }
    default:
      encodings(["hex", "base64"]);
  }
  return out;
}

/**
 * A stable Auth0 user id for a record that brings none: derived from the organization and the
 * email, so the bridge knows every migrated user's id without searching, and a resumed import
 * sends the same id again (which Auth0 then refuses as a duplicate instead of creating a twin).
 */
export function migratedUserId(organizationId: string, emailLower: string): string {
  return `m${createHash("sha256").update(`${organizationId}\n${emailLower}`).digest("hex").slice(0, 23)}`;
}

/** Checks one record; returns its problems, or the user to send. */
export function validateRecord(
  record: number,
  value: unknown,
  organizationId: string,
): { problems: RecordProblem[]; user?: ImportUser } {
  const problems: RecordProblem[] = [];
  const bad = (field: string, message: string) => problems.push({ record, field, message });
  if (!isObject(value)) {
    bad("", "must be a JSON object");
    return { problems };
  }
  for (const k of Object.keys(value))
    if (!AUTH0_FIELDS.has(k) && !BRIDGE_FIELDS.has(k)) bad(k, "is not a field of Auth0's user import schema");
  for (const k of STRINGS) if (value[k] !== undefined && typeof value[k] !== "string") bad(k, "must be a string");
  for (const k of BOOLEANS)
    if (value[k] !== undefined && typeof value[k] !== "boolean") bad(k, "must be true or false");
  const email = value.email;
  if (email === undefined || email === "") bad("email", "is required");
  else if (typeof email === "string" && !EMAIL.test(email)) bad("email", "is not a valid email address");
  if (typeof value.user_id === "string" && value.user_id.startsWith("auth0|"))
    bad("user_id", "must not start with auth0| (Auth0 adds the prefix; strip it from re-imported exports)");
  if (typeof value.user_id === "string" && value.user_id === "") bad("user_id", "must not be empty");
  if (typeof value.phone_number === "string" && !E164.test(value.phone_number))
    bad("phone_number", "must be in E.164 form, e.g. +12125550001");
  if (value.password_hash !== undefined && value.custom_password_hash !== undefined)
    bad("custom_password_hash", "cannot be given together with password_hash");
  if (typeof value.password_hash === "string" && !BCRYPT.test(value.password_hash))
    bad(
      "password_hash",
      "must be a bcrypt hash starting with $2a$ or $2b$ (use custom_password_hash for other algorithms)",
    );
  if (value.custom_password_hash !== undefined)
    for (const [field, message] of customHashProblems(value.custom_password_hash)) bad(field, message);
  for (const k of ["app_metadata", "user_metadata"]) {
    const md = value[k];
    if (md === undefined) continue;
    if (!isObject(md)) {
      bad(k, "must be an object");
      continue;
    }
    const size = Buffer.byteLength(JSON.stringify(md));
    if (size > MAX_METADATA_BYTES) bad(k, `is ${size} bytes; Auth0 allows ${MAX_METADATA_BYTES} bytes of metadata`);
    if (k === "app_metadata")
      for (const key of Object.keys(md))
        if (reservedMetadataKeys.has(key)) bad(`app_metadata.${key}`, "is a key Auth0 reserves");
    const walk = (v: unknown, path: string): void => {
      if (Array.isArray(v)) return v.forEach((x) => walk(x, path));
      if (!isObject(v)) return;
      for (const [key, inner] of Object.entries(v)) {
        if (key.includes(".") || key.includes("$"))
          bad(`${path}.${key}`, "metadata field names cannot contain '.' or '$'");
        walk(inner, `${path}.${key}`);
      }
    };
    walk(md, k);
  }
  if (
    value.mfa_factors !== undefined &&
    (!Array.isArray(value.mfa_factors) || value.mfa_factors.length < 1 || value.mfa_factors.length > 10)
  ) {
    bad("mfa_factors", "must be a list of 1 to 10 factors");
  }
  if (problems.length > 0 || typeof email !== "string") return { problems };
  const emailLower = email.toLowerCase();
  const user: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) if (AUTH0_FIELDS.has(k)) user[k] = v;
  user.email = emailLower;
  if (user.user_id === undefined) user.user_id = migratedUserId(organizationId, emailLower);
  return {
    problems,
    user: {
      user,
      emailLower,
      externalId: typeof value.external_id === "string" && value.external_id !== "" ? value.external_id : null,
    },
  };
}
