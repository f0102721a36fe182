/**
 * Bad migration files: one clear report naming every problem by record number and field, and not a
 * single call to Auth0. --dry-run of a good file plans the jobs and sends nothing either.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { userImports, users } from "../../db/schema.js";
import { runImport } from "../../src/sync/import/service.js";
import { createTestBridge, type TestBridge } from "../helpers/scim.js";
import { applyDatabaseMapping, startSyncHarness, type SyncHarness } from "../helpers/sync-harness.js";
import { importDeps, jsonl, operator, writeTemp } from "./helpers.js";

let bridge: TestBridge;
let sync: SyncHarness;

beforeAll(async () => {
  bridge = await createTestBridge();
  // No worker: the only way a call could reach Auth0 here is the import itself.
  sync = await startSyncHarness(bridge.store, { start: false });
  await applyDatabaseMapping(bridge.store, bridge.organizationId);
});
afterAll(async () => {
  await sync.close();
  await bridge.close();
});
beforeEach(() => sync.emulator.clearCalls());

const md5 = { algorithm: "md5", hash: { value: "5d41402abc4b2a76b9719d911017c592", encoding: "hex" } };

async function check(name: string, content: string, format: "jsonl" | "json" | "csv" = "jsonl") {
  const report = await runImport(importDeps(bridge.db, sync), {
    organization: bridge.organizationId,
    filePath: writeTemp(name, content),
    format,
    actor: operator,
  });
  expect(report.state).toBe("invalid");
  // Nothing reached Auth0 and nothing was recorded.
  expect(sync.emulator.calls()).toEqual([]);
  expect(bridge.db.select().from(userImports).all()).toEqual([]);
  expect(bridge.db.select().from(users).all()).toEqual([]);
  return report.problems.map((p) => `${p.record} ${p.field}: ${p.message}`);
}

describe("a malformed file is refused whole, with every problem named", () => {
  it("bad JSON on one line of a JSON Lines file, and the other lines still checked", async () => {
    const problems = await check(
      "users.jsonl",
      `${JSON.stringify({ email: "a@example.com" })}\n{"email": "b@example.com",\n${JSON.stringify({ email: "not-an-email" })}\n`,
    );
    expect(problems).toHaveLength(2);
    expect(problems[0]).toMatch(/^2 : not valid JSON/);
    expect(problems[1]).toBe("3 email: is not a valid email address");
  });

  it("a JSON file that is not an array, or an array left open", async () => {
    expect(await check("users.json", `{"email": "a@example.com"}`, "json")).toEqual([
      "1 : the file is not a JSON array (it must start with '[')",
    ]);
    expect((await check("users2.json", `[{"email": "a@example.com"}, {"email": "b@exa`, "json"))[0]).toMatch(
      /^2 : not valid JSON/,
    );
  });

  it("wrong encodings, unknown algorithms and missing algorithm fields", async () => {
    const problems = await check(
      "users.jsonl",
      jsonl([
        {
          email: "hex@example.com",
          custom_password_hash: {
            algorithm: "md5",
            hash: { value: "zz41402abc4b2a76b9719d911017c592", encoding: "hex" },
          },
        },
        {
          email: "enc@example.com",
          custom_password_hash: { algorithm: "sha1", hash: { value: "aaf4", encoding: "utf16" } },
        },
        { email: "algo@example.com", custom_password_hash: { algorithm: "sha3", hash: { value: "aa" } } },
        {
          email: "hmac@example.com",
          custom_password_hash: {
            algorithm: "hmac",
            hash: { value: "cg7f42jH39/2EaAU4wNd4s2lKIk=", encoding: "base64" },
          },
        },
        {
          email: "scrypt@example.com",
          custom_password_hash: { algorithm: "scrypt", hash: { value: "09", encoding: "hex" }, cost: 1000 },
        },
        { email: "ldap@example.com", custom_password_hash: { algorithm: "ldap", hash: { value: "{CRYPT}abc" } } },
        {
          email: "pbkdf2@example.com",
          custom_password_hash: {
            algorithm: "pbkdf2",
            hash: { value: "pbkdf2:sha256:1000$abc$def" },
            salt: { value: "x" },
          },
        },
        { email: "bcrypt@example.com", password_hash: "$2x$10$C9hB01.YxRSTcn/ZOOo4j.TW7xCKKFKBSF.C7E0xiUwumqIDqWUXG" },
        {
          email: "both@example.com",
          password_hash: "$2b$10$nFguVi9LsCAcvTZFKQlRKeLVydo8ETv483lkNsSFI/Wl1Rz1Ypo1K",
          custom_password_hash: md5,
        },
        {
          email: "argon@example.com",
          custom_password_hash: {
            algorithm: "argon2",
            hash: { value: "$argon2id$v=19$m=65536,t=2,p=1$J6Q/82PCyaNpYKRELJyTZg", encoding: "hex" },
          },
        },
      ]),
    );
    expect(problems).toEqual([
      "1 custom_password_hash.hash.value: is not valid hex",
      "2 custom_password_hash.hash.encoding: must be base64, hex or utf8",
      '3 custom_password_hash.algorithm: unknown algorithm "sha3"; Auth0 accepts argon2, bcrypt, hmac, ldap, md4, md5, sha1, sha256, sha512, pbkdf2, scrypt',
      "4 custom_password_hash.hash.digest: is required for hmac: one of md4, md5, ripemd160, sha1, sha224, sha256, sha384, sha512, whirlpool",
      "4 custom_password_hash.hash.key.value: is required for hmac",
      "5 custom_password_hash.keylen: is required for scrypt",
      "5 custom_password_hash.cost: must be a power of 2 greater than 1",
      "6 custom_password_hash.hash.value: must be an RFC 2307 value {SCHEME}base64 with scheme MD5, SMD5, SHA, SSHA, SHA256, SSHA256, SHA384, SSHA384, SHA512, SSHA512 ({CRYPT} is not supported)",
      "7 custom_password_hash.salt: is not allowed for pbkdf2 (the salt is part of hash.value)",
      "7 custom_password_hash.hash.value: must be a PHC string $pbkdf2-<digest>$i=<iterations>,l=<keylen>$<B64 salt>$<B64 hash>",
      "8 password_hash: must be a bcrypt hash starting with $2a$ or $2b$ (use custom_password_hash for other algorithms)",
      "9 custom_password_hash: cannot be given together with password_hash",
      "10 custom_password_hash.hash.encoding: must be utf8 for argon2",
      "10 custom_password_hash.hash.value: must be an argon2 PHC string ($argon2id$v=19$m=…,t=…,p=…$salt$hash)",
    ]);
  });

  it("duplicate emails (in any case), identifiers, unknown fields, reserved metadata keys and oversized records", async () => {
    const problems = await check(
      "users.jsonl",
      jsonl([
        { email: "ada@example.com", user_id: "u1" },
        { email: "ADA@example.com" },
        { email: "bob@example.com", user_id: "u1", organization: "acme" },
        { email: "cy@example.com", app_metadata: { blocked: true, "a.b": 1 } },
        { email: "dee@example.com", user_metadata: { notes: "x".repeat(11_000) } },
        { email: "eve@example.com", user_id: "auth0|abc" },
        { given_name: "No Email" },
      ]),
    );
    expect(problems).toEqual([
      "2 email: duplicates record 1 (Auth0 refuses duplicates within an import)",
      "3 organization: is not a field of Auth0's user import schema",
      "4 app_metadata.blocked: is a key Auth0 reserves",
      "4 app_metadata.a.b: metadata field names cannot contain '.' or '$'",
      "5 user_metadata: is 11012 bytes; Auth0 allows 10240 bytes of metadata",
      "6 user_id: must not start with auth0| (Auth0 adds the prefix; strip it from re-imported exports)",
      "7 email: is required",
    ]);
  });

  it("a CSV file with a broken JSON cell and a short row", async () => {
    const problems = await check(
      "users.csv",
      `email,given_name,custom_password_hash\nada@example.com,Ada,"{""algorithm"":""md5"""\nbob@example.com,Bob\n`,
      "csv",
    );
    expect(problems).toEqual([
      "1 : column custom_password_hash is not valid JSON",
      "2 : has 2 columns where the header has 3",
    ]);
    expect(await check("users2.csv", `email,name\nada@example.com,"Ada\n`, "csv")).toEqual([
      '1 : a quoted field is never closed (a " is missing)',
    ]);
  });

  it("an empty file", async () => {
    expect(await check("users.jsonl", "\n\n")).toEqual(["0 : the file holds no users"]);
  });
});

describe("--dry-run", () => {
  it("validates and plans Auth0-sized jobs without sending anything", async () => {
    const records = Array.from({ length: 3000 }, (_, i) => ({
      email: `user${i}@example.com`,
      custom_password_hash: md5,
      user_metadata: { bio: "x".repeat(300) },
    }));
    const report = await runImport(importDeps(bridge.db, sync), {
      organization: bridge.organizationId,
      filePath: writeTemp("users.json", JSON.stringify(records)),
      format: "json",
      dryRun: true,
      actor: operator,
    });
    expect(report).toMatchObject({ state: "planned", records: 3000, problemCount: 0 });
    // About 520 bytes a record as sent (with its user_id): four jobs of at most 500,000 bytes.
    expect(report.chunks).toBe(4);
    expect(sync.emulator.calls()).toEqual([]);
    expect(bridge.db.select().from(userImports).all()).toEqual([]);
  });

  it("reads CSV with quoted commas, line breaks and JSON cells", async () => {
    const csv = `email,name,custom_password_hash,blocked\r\n"ada@example.com","Lovelace, Ada","{""algorithm"":""md5"",""hash"":{""value"":""5d41402abc4b2a76b9719d911017c592"",""encoding"":""hex""}}",false\r\nbob@example.com,"Bob\nSmith",,true\r\n`;
    const report = await runImport(importDeps(bridge.db, sync), {
      organization: bridge.organizationId,
      filePath: writeTemp("users.csv", csv),
      format: "csv",
      dryRun: true,
      actor: operator,
    });
    expect(report.problems).toEqual([]);
    expect(report).toMatchObject({ state: "planned", records: 2, chunks: 1 });
  });
});
