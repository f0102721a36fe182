/**
 * Legacy password hashes as each kind of legacy store writes them, in the `custom_password_hash`
 * form of Auth0's import schema (bulk-user-import-schema), made here from a known password.
 */
import { createHash, createHmac, pbkdf2Sync, randomBytes, scryptSync } from "node:crypto";
import { argon2id, bcrypt, md4 } from "hash-wasm";

export const ALGORITHMS = [
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
export type Algorithm = (typeof ALGORITHMS)[number];

const b64 = (b: Buffer | Uint8Array) => Buffer.from(b).toString("base64").replace(/=+$/, "");

/** One hash per algorithm, each exercising a different encoding, salt position or parameter. */
export async function legacyHash(algorithm: Algorithm, password: string): Promise<Record<string, unknown>> {
  const salt = randomBytes(12);
  switch (algorithm) {
    case "argon2":
      return {
        algorithm,
        hash: {
          value: await argon2id({
            password,
            salt,
            parallelism: 1,
            iterations: 2,
            memorySize: 1024,
            hashLength: 32,
            outputType: "encoded",
          }),
        },
      };
    case "bcrypt":
      // A PHP-style $2y$ hash of the password with a suffix salt.
      return {
        algorithm,
        hash: {
          value: (
            await bcrypt({ password: `${password}pepper`, salt: randomBytes(16), costFactor: 4, outputType: "encoded" })
          ).replace(/^\$2b\$/, "$2y$"),
        },
        salt: { value: "pepper", position: "suffix" },
      };
    case "hmac":
      return {
        algorithm,
        hash: {
          value: createHmac("sha256", Buffer.from("736868", "hex"))
            .update(Buffer.concat([salt, Buffer.from(password)]))
            .digest("base64"),
          encoding: "base64",
          digest: "sha256",
          key: { value: "736868", encoding: "hex" },
        },
        salt: { value: salt.toString("hex"), encoding: "hex", position: "prefix" },
      };
    case "ldap": {
      const digest = createHash("sha384")
        .update(Buffer.concat([Buffer.from(password), salt]))
        .digest();
      return {
        algorithm,
        hash: { value: `{SSHA384}${Buffer.concat([digest, salt]).toString("base64")}`, encoding: "utf8" },
      };
    }
    case "md4":
      // NTLM-style: MD4 of the UTF-16LE password.
      return {
        algorithm,
        hash: {
          value: Buffer.from(await md4(Buffer.from(password, "utf16le")), "hex").toString("base64"),
          encoding: "base64",
        },
        password: { encoding: "utf16le" },
      };
    case "md5":
      return {
        algorithm,
        hash: {
          value: createHash("md5")
            .update(Buffer.concat([Buffer.from(password), salt]))
            .digest("hex")
            .toUpperCase(),
          encoding: "hex",
        },
        salt: { value: salt.toString("base64"), encoding: "base64", position: "suffix" },
      };
    case "sha1":
      return { algorithm, hash: { value: createHash("sha1").update(password).digest("hex"), encoding: "hex" } };
    case "sha256":
      return {
        algorithm,
        hash: { value: createHash("sha256").update(`abc123${password}`).digest("base64url"), encoding: "base64" },
        salt: { value: "abc123", position: "prefix" },
      };
    case "sha512":
      return {
        algorithm,
        hash: { value: createHash("sha512").update(Buffer.from(password, "latin1")).digest("hex"), encoding: "hex" },
        password: { encoding: "latin1" },
      };
    case "pbkdf2":
      return {
        algorithm,
        hash: {
          value: `$pbkdf2-sha512$i=1000,l=64$${b64(salt)}$${b64(pbkdf2Sync(password, salt, 1000, 64, "sha512"))}`,
          encoding: "utf8",
        },
      };
    case "scrypt":
      return {
        algorithm,
        hash: { value: scryptSync(password, salt, 32, { N: 1024, r: 8, p: 1 }).toString("hex"), encoding: "hex" },
        salt: { value: salt.toString("hex"), encoding: "hex" },
        keylen: 32,
        cost: 1024,
      };
  }
}
