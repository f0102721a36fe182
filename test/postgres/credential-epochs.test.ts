/**
 * credential_epochs on PostgreSQL (db/pg custom migration): every change that ends a SCIM token's
 * validity moves the scim_tokens epoch that token caches compare, cascades from a deleted directory
 * or organization included, and writes that cannot end a token's validity leave it alone. The same
 * coverage as the SQLite triggers of src/directory/database.ts.
 */
import pg from "pg";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { migratePostgres } from "../../src/directory/postgres.js";
import { freshDatabase, postgresUnavailable, type TestDatabase } from "../support/postgres.js";

describe.skipIf(postgresUnavailable !== "")("credential_epochs on PostgreSQL", () => {
  let database: TestDatabase;
  let client: pg.Client;
  const now = 1_800_000_000_000;

  // int8 as a JS number on this connection only (node-postgres returns it as a string by default).
  const types = {
    getTypeParser: (oid: number, format?: "text" | "binary") =>
      oid === 20 ? (v: string) => Number(v) : pg.types.getTypeParser(oid, format as "text"),
  };

  const epoch = async (): Promise<number> =>
    (await client.query<{ epoch: number }>("SELECT epoch FROM credential_epochs WHERE name = 'scim_tokens'")).rows[0]!
      .epoch;

  /** How far `write` moves the epoch. */
  const moves = async (write: string, params: unknown[] = []): Promise<number> => {
    const before = await epoch();
    await client.query(write, params);
    return (await epoch()) - before;
  };

  beforeAll(async () => {
    database = await freshDatabase();
    await migratePostgres(database.url);
    client = new pg.Client({ connectionString: database.url, types });
    await client.connect();
  });
  afterAll(async () => {
    await client?.end();
    await database?.drop();
  });

  beforeEach(async () => {
    await client.query("DELETE FROM organizations");
    for (const org of ["org_1", "org_2"]) {
      await client.query(
        `INSERT INTO organizations (id, slug, display_name, user_model, connection, created_at, updated_at)
         VALUES ($1, $1, $1, 'isolated', 'db', $2, $2)`,
        [org, now],
      );
    }
    await client.query(
      `INSERT INTO directories (id, organization_id, name, created_at) VALUES
       ('dir_a', 'org_1', 'Okta', $1), ('dir_b', 'org_1', 'Entra', $1), ('dir_c', 'org_2', 'Okta', $1)`,
      [now],
    );
    await client.query(
      `INSERT INTO scim_tokens (id, directory_id, token_hash, hint, created_at) VALUES
       ('tok_a', 'dir_a', 'hash_a', 'a', $1), ('tok_b', 'dir_b', 'hash_b', 'b', $1), ('tok_c', 'dir_c', 'hash_c', 'c', $1)`,
      [now],
    );
  });

  it("starts at 0: the migration seeds the row token caches read", async () => {
    const fresh = await freshDatabase();
    try {
      await migratePostgres(fresh.url);
      const c = new pg.Client({ connectionString: fresh.url, types });
      await c.connect();
      try {
        const { rows } = await c.query("SELECT name, epoch FROM credential_epochs");
        expect(rows).toEqual([{ name: "scim_tokens", epoch: 0 }]);
      } finally {
        await c.end();
      }
    } finally {
      await fresh.drop();
    }
  });

  it.each([
    ["revoking a token", "UPDATE scim_tokens SET revoked_at = $1 WHERE id = 'tok_a'", [now]],
    ["setting an expiry", "UPDATE scim_tokens SET expires_at = $1 WHERE id = 'tok_a'", [now]],
    ["clearing a revocation", "UPDATE scim_tokens SET revoked_at = NULL WHERE id = 'tok_a'", []],
    ["rotating the hash", "UPDATE scim_tokens SET token_hash = 'hash_new' WHERE id = 'tok_a'", []],
    ["moving the token to another directory", "UPDATE scim_tokens SET directory_id = 'dir_b' WHERE id = 'tok_a'", []],
    ["deleting the token", "DELETE FROM scim_tokens WHERE id = 'tok_a'", []],
    ["deleting its directory (cascade)", "DELETE FROM directories WHERE id = 'dir_a'", []],
    ["deleting its organization (cascade through directories)", "DELETE FROM organizations WHERE id = 'org_2'", []],
  ])("%s moves the epoch", async (_what, write, params) => {
    expect(await moves(write, params)).toBeGreaterThan(0);
  });

  it("a cascade that ends two directories' tokens moves it once per token, and the tokens are gone", async () => {
    expect(await moves("DELETE FROM organizations WHERE id = 'org_1'")).toBe(2);
    const { rows } = await client.query("SELECT id FROM scim_tokens ORDER BY id");
    expect(rows).toEqual([{ id: "tok_c" }]);
  });

  it("truncating scim_tokens, directly or through a cascade, moves it", async () => {
    expect(await moves("TRUNCATE scim_tokens")).toBeGreaterThan(0);
    await client.query(
      "INSERT INTO scim_tokens (id, directory_id, token_hash, hint, created_at) VALUES ('t', 'dir_a', 'h', 'h', 0)",
    );
    expect(await moves("TRUNCATE organizations CASCADE")).toBeGreaterThan(0);
  });

  it.each([
    [
      "issuing a new token",
      "INSERT INTO scim_tokens (id, directory_id, token_hash, hint, created_at) VALUES ('tok_n', 'dir_a', 'hash_n', 'n', 0)",
    ],
    ["recording a token's use", "UPDATE scim_tokens SET last_used_at = 1 WHERE id = 'tok_a'"],
    ["renaming its hint", "UPDATE scim_tokens SET hint = 'x' WHERE id = 'tok_a'"],
    ["revoking no row", "UPDATE scim_tokens SET revoked_at = 1 WHERE id = 'no_such_token'"],
    ["deleting no row", "DELETE FROM scim_tokens WHERE id = 'no_such_token'"],
    ["renaming a directory", "UPDATE directories SET name = 'Renamed' WHERE id = 'dir_a'"],
    [
      "creating and deleting a directory with no token",
      "INSERT INTO directories (id, organization_id, name, created_at) VALUES ('dir_e', 'org_1', 'e', 0); DELETE FROM directories WHERE id = 'dir_e'",
    ],
    [
      "revoking an admin token",
      "INSERT INTO admin_tokens (id, token_hash, hint, scope, name, created_at, revoked_at) VALUES ('adm', 'h', 'h', 'all', 'n', 0, 1)",
    ],
  ])("%s leaves it alone", async (_what, write) => {
    expect(await moves(write)).toBe(0);
  });

  it("a revocation rolled back leaves it where it was", async () => {
    const before = await epoch();
    await client.query("BEGIN");
    await client.query("UPDATE scim_tokens SET revoked_at = 1 WHERE id = 'tok_a'");
    await client.query("ROLLBACK");
    expect(await epoch()).toBe(before);
  });
});
