/**
 * Password checks of the emulated database connections, for the simulated login.
 *
 * Imported hashes follow Auth0's "Bulk User Import Database Schema and Examples"
 * (auth0.com/docs/manage-users/user-migration/bulk-user-import-schema): `password_hash` is bcrypt
 * ($2a$/$2b$), and `custom_password_hash` names one of eleven algorithms with its encodings, salt
 * and parameters. validateCustomHash() enforces that page's rules at import time; verifyPassword()
 * reproduces the hash at login. Once an imported hash matched, the password is rehashed with bcrypt
 * and the imported hash dropped, as Auth0 does ("Upgrade from an outdated hash algorithm to bcrypt",
 * Auth0 Community). Where the docs are silent the emulator refuses rather than guesses.
 *
 * node:crypto lacks md4 and whirlpool (OpenSSL 3 legacy provider) and argon2; hash-wasm (pure
 * WebAssembly, no native build) supplies those, and bcrypt.
 */
import { createHash, createHmac, getHashes, pbkdf2Sync, randomBytes, scryptSync, timingSafeEqual } from "node:crypto";
import {
  argon2Verify,
  bcrypt,
  bcryptVerify,
  createHMAC,
  createMD4,
  createWhirlpool,
  md4,
  pbkdf2 as wasmPbkdf2,
  whirlpool,
} from "hash-wasm";
import { isPlainObject } from "./util.js";

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
export type HashAlgorithm = (typeof HASH_ALGORITHMS)[number];

const HMAC_DIGESTS = ["md4", "md5", "ripemd160", "sha1", "sha224", "sha256", "sha384", "sha512", "whirlpool"];
const PASSWORD_ENCODINGS = ["ascii", "utf8", "utf16le", "ucs2", "latin1", "binary"] as const;
const VALUE_ENCODINGS = ["base64", "hex", "utf8"];
/** RFC 2307 §5.3 schemes Auth0 accepts; {CRYPT} is not supported. */
const LDAP_SCHEMES: Record<string, { digest: string; salted: boolean }> = {
  MD5: { digest: "md5", salted: false },
  SMD5: { digest: "md5", salted: true },
  SHA: { digest: "sha1", salted: false },
  SSHA: { digest: "sha1", salted: true },
  SHA256: { digest: "sha256", salted: false },
  SSHA256: { digest: "sha256", salted: true },
  SHA384: { digest: "sha384", salted: false },
  SSHA384: { digest: "sha384", salted: true },
  SHA512: { digest: "sha512", salted: false },
  SSHA512: { digest: "sha512", salted: true },
};

/** How the emulator keeps a database user's password: never in clear. */
export type StoredPassword =
  | { kind: "bcrypt"; hash: string }
  | { kind: "custom"; spec: Record<string, unknown> }
  /** Management API passwords: salted SHA-256, a fast stand-in for Auth0's bcrypt (emulator only). */
  | { kind: "native"; salt: string; hash: string };

export interface HashProblem {
  path: string;
  message: string;
  /** Auth0's per-user error code (bulk-user-imports "error codes"). */
  code: string;
}

const nodeHashes = new Set(getHashes().map((h) => h.toLowerCase()));
const wasmDigests: Record<string, () => ReturnType<typeof createMD4>> = { md4: createMD4, whirlpool: createWhirlpool };

function digestSupported(name: string): boolean {
  const n = name.toLowerCase();
  return n in wasmDigests || nodeHashes.has(n);
}

async function digest(name: string, data: Buffer): Promise<Buffer> {
  const n = name.toLowerCase();
  if (n === "md4") return Buffer.from(await md4(data), "hex");
  if (n === "whirlpool") return Buffer.from(await whirlpool(data), "hex");
  return createHash(n).update(data).digest();
}

async function hmac(name: string, key: Buffer, data: Buffer): Promise<Buffer> {
  const n = name.toLowerCase();
  const wasm = wasmDigests[n];
  if (wasm) {
    const h = await createHMAC(wasm(), key);
    h.init();
    h.update(data);
    return Buffer.from(h.digest("binary"));
  }
  return createHmac(n, key).update(data).digest();
}

const HEX = /^[0-9a-fA-F]*$/;
const BASE64 = /^[A-Za-z0-9+/\-_]*={0,2}$/;

/** Decodes a value in Auth0's encodings: upper/lower hex, standard or url-safe base64, utf8. */
export function decodeValue(value: string, encoding: string): Buffer | undefined {
  if (encoding === "hex") return HEX.test(value) && value.length % 2 === 0 ? Buffer.from(value, "hex") : undefined;
  if (encoding === "base64")
    return BASE64.test(value) ? Buffer.from(value.replace(/-/g, "+").replace(/_/g, "/"), "base64") : undefined;
  if (encoding === "utf8") return Buffer.from(value, "utf8");
  return undefined;
}

const str = (v: unknown): v is string => typeof v === "string";

/** Parses `$pbkdf2-<digest>$i=<n>,l=<len>$<salt>$<hash>` (B64 without padding; defaults i=100000, l=64). */
export function parsePbkdf2(
  value: string,
): { digest: string; iterations: number; keylen: number; salt: Buffer; hash: Buffer } | undefined {
  const m = /^\$pbkdf2-([A-Za-z0-9-]+)\$([^$]*)\$([A-Za-z0-9+/.]+)\$([A-Za-z0-9+/.]+)$/.exec(value);
  if (!m) return undefined;
  const params = new Map<string, string>();
  if (m[2]) {
    for (const part of m[2].split(",")) {
      const [k, v] = part.split("=");
      if (!k || v === undefined || !/^\d+$/.test(v)) return undefined;
      params.set(k, v);
    }
  }
  const iterations = Number(params.get("i") ?? 100_000);
  const keylen = Number(params.get("l") ?? 64);
  if (iterations < 1 || keylen < 1) return undefined;
  const b64 = (s: string) => Buffer.from(s.replace(/\./g, "+"), "base64");
  return { digest: m[1]!, iterations, keylen, salt: b64(m[3]!), hash: b64(m[4]!) };
}

const ARGON2_PHC = /^\$argon2(id|i|d)\$v=\d+\$m=\d+,t=\d+,p=\d+\$[A-Za-z0-9+/]+\$[A-Za-z0-9+/]+$/;
const BCRYPT = /^\$2[aby]\$\d{2}\$[./A-Za-z0-9]{53}$/;

/**
 * The schema's rules for `custom_password_hash` (bulk-user-import-schema): required algorithm and
 * hash, no other keys, the encodings each algorithm allows, salt only where allowed, HMAC digest and
 * key, scrypt keylen and a power-of-two cost. Returns every problem found.
 */
export function validateCustomHash(spec: unknown, base = "custom_password_hash"): HashProblem[] {
  const out: HashProblem[] = [];
  const bad = (path: string, message: string, code = "FORMAT") =>
    out.push({ path: `${base}${path ? `.${path}` : ""}`, message, code });
  if (!isPlainObject(spec)) {
    bad("", "Expected type object", "INVALID_TYPE");
    return out;
  }
  const allowed = new Set(["algorithm", "hash", "salt", "password", "keylen", "cost", "blockSize", "parallelization"]);
  for (const key of Object.keys(spec))
    if (!allowed.has(key)) bad(key, "Additional properties not allowed", "OBJECT_REQUIRED");
  const algorithm = spec.algorithm;
  if (!str(algorithm) || !(HASH_ALGORITHMS as readonly string[]).includes(algorithm)) {
    bad(
      "algorithm",
      `No enum match for: ${JSON.stringify(algorithm)} (expected one of ${HASH_ALGORITHMS.join(", ")})`,
      "ENUM_MISMATCH",
    );
    return out;
  }
  const hash = spec.hash;
  if (!isPlainObject(hash) || !str(hash.value) || hash.value === "") {
    bad("hash.value", "Missing required property: hash.value", "OBJECT_REQUIRED");
    return out;
  }
  for (const key of Object.keys(hash))
    if (!["value", "encoding", "digest", "key"].includes(key))
      bad(`hash.${key}`, "Additional properties not allowed", "OBJECT_REQUIRED");
  const encoding = hash.encoding ?? "utf8";
  if (!str(encoding) || !VALUE_ENCODINGS.includes(encoding))
    bad("hash.encoding", `No enum match for: ${JSON.stringify(encoding)}`, "ENUM_MISMATCH");
  const salt = spec.salt;
  if (salt !== undefined) {
    if (!isPlainObject(salt) || !str(salt.value))
      bad("salt.value", "Missing required property: salt.value", "OBJECT_REQUIRED");
    else {
      const se = salt.encoding ?? "utf8";
      if (!str(se) || !VALUE_ENCODINGS.includes(se))
        bad("salt.encoding", `No enum match for: ${JSON.stringify(se)}`, "ENUM_MISMATCH");
      else if (!decodeValue(salt.value, se)) bad("salt.value", `Value is not valid ${se}`);
      const position = salt.position ?? "prefix";
      if (position !== "prefix" && position !== "suffix")
        bad("salt.position", `No enum match for: ${JSON.stringify(position)}`, "ENUM_MISMATCH");
      for (const key of Object.keys(salt))
        if (!["value", "encoding", "position"].includes(key))
          bad(`salt.${key}`, "Additional properties not allowed", "OBJECT_REQUIRED");
    }
  }
  if (spec.password !== undefined) {
    const pe = isPlainObject(spec.password) ? (spec.password.encoding ?? "utf8") : undefined;
    if (!str(pe) || !(PASSWORD_ENCODINGS as readonly string[]).includes(pe))
      bad("password.encoding", `No enum match for: ${JSON.stringify(pe)}`, "ENUM_MISMATCH");
  }
  for (const key of ["keylen", "cost", "blockSize", "parallelization"]) {
    if (spec[key] === undefined) continue;
    if (algorithm !== "scrypt") bad(key, `${key} is only allowed for scrypt`);
    else if (!Number.isInteger(spec[key]) || (spec[key] as number) < 1)
      bad(key, `${key} must be a positive integer`, "INVALID_TYPE");
  }
  const value = hash.value;
  const needEncoding = (list: string[]) => {
    if (str(encoding) && !list.includes(encoding))
      bad("hash.encoding", `${algorithm} needs hash.encoding ${list.join(" or ")}`, "ENUM_MISMATCH");
  };
  const noSalt = () => {
    if (salt !== undefined) bad("salt", `${algorithm} takes no salt object (the salt is inside hash.value)`);
  };
  switch (algorithm as HashAlgorithm) {
    case "argon2":
      needEncoding(["utf8"]);
      noSalt();
      if (!ARGON2_PHC.test(value))
        bad(
          "hash.value",
          "argon2 hash.value must be a PHC string: $argon2id$v=19$m=…,t=…,p=…$<salt>$<hash>",
          "PATTERN",
        );
      break;
    case "bcrypt":
      needEncoding(["utf8"]);
      if (!BCRYPT.test(value))
        bad("hash.value", "bcrypt hash.value must start with $2a$, $2b$ or $2y$ and be 60 characters", "PATTERN");
      break;
    case "ldap": {
      needEncoding(["utf8"]);
      noSalt();
      const m = /^\{([A-Za-z0-9]+)\}(.+)$/.exec(value);
      const scheme = m ? LDAP_SCHEMES[m[1]!.toUpperCase()] : undefined;
      if (!m || !scheme)
        bad(
          "hash.value",
          "ldap hash.value must be an RFC 2307 userPassword value with scheme MD5, SMD5, SHA, SSHA, SHA256, SSHA256, SHA384, SSHA384, SHA512 or SSHA512 ({CRYPT} is not supported)",
          "PATTERN",
        );
      else if (!BASE64.test(m[2]!)) bad("hash.value", "the ldap hash after the scheme must be base64", "FORMAT");
      break;
    }
    case "pbkdf2": {
      needEncoding(["utf8"]);
      noSalt();
      const parsed = parsePbkdf2(value);
      if (!parsed)
        bad(
          "hash.value",
          "pbkdf2 hash.value must be a PHC string: $pbkdf2-<digest>$i=<iterations>,l=<keylen>$<B64 salt>$<B64 hash>",
          "PATTERN",
        );
      else if (!digestSupported(parsed.digest))
        bad("hash.value", `pbkdf2 digest "${parsed.digest}" is not supported`, "ENUM_MISMATCH");
      break;
    }
    case "hmac": {
      needEncoding(["hex", "base64"]);
      if (!str(hash.digest) || !HMAC_DIGESTS.includes(hash.digest))
        bad("hash.digest", `hmac needs hash.digest, one of ${HMAC_DIGESTS.join(", ")}`, "ENUM_MISMATCH");
      const key = hash.key;
      if (!isPlainObject(key) || !str(key.value) || key.value === "")
        bad("hash.key.value", "hmac needs hash.key.value", "OBJECT_REQUIRED");
      else {
        const ke = key.encoding ?? "utf8";
        if (!str(ke) || !VALUE_ENCODINGS.includes(ke))
          bad("hash.key.encoding", `No enum match for: ${JSON.stringify(ke)}`, "ENUM_MISMATCH");
        else if (!decodeValue(key.value, ke)) bad("hash.key.value", `Value is not valid ${ke}`);
      }
      break;
    }
    case "scrypt": {
      needEncoding(["hex", "base64"]);
      if (spec.keylen === undefined) bad("keylen", "scrypt needs keylen", "OBJECT_REQUIRED");
      const cost = spec.cost ?? 16384;
      if (!Number.isInteger(cost) || (cost as number) < 2 || ((cost as number) & ((cost as number) - 1)) !== 0)
        bad("cost", "cost must be a power of 2 greater than 1");
      break;
    }
    default:
      needEncoding(["hex", "base64"]);
  }
  if (algorithm !== "hmac" && (hash.digest !== undefined || hash.key !== undefined))
    bad("hash", "digest and key belong to hmac only");
  if (
    ["md4", "md5", "sha1", "sha256", "sha512", "hmac", "scrypt"].includes(algorithm) &&
    str(encoding) &&
    str(value) &&
    !decodeValue(value, encoding)
  ) {
    bad("hash.value", `hash.value is not valid ${encoding}`);
  }
  if (algorithm === "bcrypt" && isPlainObject(salt) && str(salt.value)) {
    const bytes = decodeValue(salt.value, str(salt.encoding) ? salt.encoding : "utf8")?.length ?? 0;
    if (bytes >= 72) bad("salt.value", "bcrypt reads at most 72 bytes, salt included");
  }
  return out;
}

/** The typed password in the hash's password encoding, with its salt before or after. */
function saltedInput(spec: Record<string, unknown>, password: string): Buffer {
  const pe = isPlainObject(spec.password) && str(spec.password.encoding) ? spec.password.encoding : "utf8";
  const pwd = Buffer.from(password, pe as BufferEncoding);
  const salt = spec.salt;
  if (!isPlainObject(salt) || !str(salt.value) || spec.algorithm === "scrypt") return pwd;
  const bytes = decodeValue(salt.value, str(salt.encoding) ? salt.encoding : "utf8") ?? Buffer.alloc(0);
  return salt.position === "suffix" ? Buffer.concat([pwd, bytes]) : Buffer.concat([bytes, pwd]);
}

const same = (a: Buffer, b: Buffer | undefined): boolean =>
  b !== undefined && a.length === b.length && a.length > 0 && timingSafeEqual(a, b);

/** Reproduces an imported custom hash for a typed password. */
export async function verifyCustomHash(spec: Record<string, unknown>, password: string): Promise<boolean> {
  if (validateCustomHash(spec).length > 0) return false;
  const algorithm = spec.algorithm as HashAlgorithm;
  const hash = spec.hash as {
    value: string;
    encoding?: string;
    digest?: string;
    key?: { value: string; encoding?: string };
  };
  const input = saltedInput(spec, password);
  const expected = decodeValue(hash.value, hash.encoding ?? "utf8");
  switch (algorithm) {
    case "argon2":
      return argon2Verify({ password: input, hash: hash.value });
    case "bcrypt":
      return bcryptVerify({ password: input, hash: hash.value.replace(/^\$2y\$/, "$2b$") });
    case "ldap": {
      const m = /^\{([A-Za-z0-9]+)\}(.+)$/.exec(hash.value)!;
      const scheme = LDAP_SCHEMES[m[1]!.toUpperCase()]!;
      const raw = decodeValue(m[2]!, "base64")!;
      const len = createHash(scheme.digest).digest().length;
      const salt = scheme.salted ? raw.subarray(len) : Buffer.alloc(0);
      return same(await digest(scheme.digest, Buffer.concat([input, salt])), raw.subarray(0, len));
    }
    case "pbkdf2": {
      const p = parsePbkdf2(hash.value)!;
      const d = p.digest.toLowerCase();
      const wasm = wasmDigests[d];
      const got = wasm
        ? Buffer.from(
            await wasmPbkdf2({
              password: input,
              salt: p.salt,
              iterations: p.iterations,
              hashLength: p.keylen,
              hashFunction: wasm(),
              outputType: "binary",
            }),
          )
        : pbkdf2Sync(input, p.salt, p.iterations, p.keylen, d);
      return same(got, p.hash);
    }
    case "hmac": {
      const key = decodeValue(hash.key!.value, hash.key!.encoding ?? "utf8")!;
      return same(await hmac(hash.digest!, key, input), expected);
    }
    case "scrypt": {
      const salt =
        isPlainObject(spec.salt) && str(spec.salt.value)
          ? decodeValue(spec.salt.value, str(spec.salt.encoding) ? spec.salt.encoding : "utf8")!
          : Buffer.alloc(0);
      const N = (spec.cost as number | undefined) ?? 16384;
      const r = (spec.blockSize as number | undefined) ?? 8;
      const p = (spec.parallelization as number | undefined) ?? 1;
      try {
        return same(
          scryptSync(input, salt, spec.keylen as number, { N, r, p, maxmem: 256 * N * r * p + 1024 * 1024 }),
          expected,
        );
      } catch {
        return false;
      }
    }
    default:
      return same(await digest(algorithm, input), expected);
  }
}

/** A Management API password (POST/PATCH /users), kept only as a salted digest. */
export function storeNativePassword(password: string): StoredPassword {
  const salt = randomBytes(16).toString("hex");
  return { kind: "native", salt, hash: createHash("sha256").update(salt).update(password, "utf8").digest("hex") };
}

export async function verifyPassword(stored: StoredPassword | undefined, password: string): Promise<boolean> {
  if (!stored) return false; // imported without a hash: Auth0 sets a random one, so only a reset helps
  if (stored.kind === "native") {
    const got = createHash("sha256").update(stored.salt).update(password, "utf8").digest();
    return same(got, Buffer.from(stored.hash, "hex"));
  }
  if (stored.kind === "bcrypt") return bcryptVerify({ password, hash: stored.hash.replace(/^\$2y\$/, "$2b$") });
  return verifyCustomHash(stored.spec, password);
}

/** After a login that matched an imported hash, Auth0 keeps a bcrypt hash of the password instead. */
export async function rehash(password: string): Promise<StoredPassword> {
  return {
    kind: "bcrypt",
    hash: await bcrypt({ password, salt: randomBytes(16), costFactor: 10, outputType: "encoded" }),
  };
}
