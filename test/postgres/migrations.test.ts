import { readFileSync } from "node:fs";
import { join } from "node:path";
import { is } from "drizzle-orm";
import { getTableConfig, PgTable } from "drizzle-orm/pg-core";
import { afterEach, describe, expect, it } from "vitest";
import * as pgSchema from "../../db/schema.pg.js";
import { migratePostgres, postgresMigrationsFolder, serverVersionRefusal } from "../../src/directory/postgres.js";
import { freshDatabase, postgresUnavailable, withClient, type TestDatabase } from "../support/postgres.js";

const schemaTables = Object.values(pgSchema)
  .filter((v) => is(v, PgTable))
  .map((t) => getTableConfig(t as PgTable).name)
  .sort();
const journal = JSON.parse(readFileSync(join(postgresMigrationsFolder, "meta", "_journal.json"), "utf8")) as {
  entries: { tag: string }[];
};

async function publicTables(url: string): Promise<string[]> {
  return withClient(url, async (c) => {
    const r = await c.query<{ table_name: string }>(
      "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' ORDER BY table_name",
    );
    return r.rows.map((row) => row.table_name);
  });
}

async function appliedMigrations(url: string): Promise<number> {
  return withClient(url, async (c) => {
    const r = await c.query<{ n: string }>("SELECT count(*) AS n FROM drizzle.__drizzle_migrations");
    return Number(r.rows[0]!.n);
  });
}

describe("PostgreSQL server version", () => {
  it("refuses a server older than 17 by name, before any migration runs", () => {
    expect(serverVersionRefusal(160004, "16.4")).toMatch(/PostgreSQL 17 or later is required \(this server is 16\.4\)/);
    expect(serverVersionRefusal(170000, "17.0")).toBeUndefined();
    expect(serverVersionRefusal(180001, "18.1")).toBeUndefined();
  });
});

describe.skipIf(postgresUnavailable !== "")("PostgreSQL migrations (db/pg)", () => {
  const databases: TestDatabase[] = [];
  const fresh = async () => {
    const db = await freshDatabase();
    databases.push(db);
    return db;
  };
  afterEach(async () => {
    await Promise.all(databases.splice(0).map((db) => db.drop()));
  });

  it("create every table of db/schema.pg.ts in an empty database, and a second run changes nothing", async () => {
    const { url } = await fresh();
    expect(await publicTables(url)).toEqual([]);

    await migratePostgres(url);
    expect(await publicTables(url)).toEqual(schemaTables);
    expect(await appliedMigrations(url)).toBe(journal.entries.length);

    await migratePostgres(url);
    expect(await publicTables(url)).toEqual(schemaTables);
    expect(await appliedMigrations(url)).toBe(journal.entries.length);
  });

  it("three instances migrating one database at once all succeed and leave one schema", async () => {
    const { url } = await fresh();

    const outcomes = await Promise.allSettled([migratePostgres(url), migratePostgres(url), migratePostgres(url)]);

    expect(outcomes.map((o) => (o.status === "rejected" ? String(o.reason) : o.status))).toEqual([
      "fulfilled",
      "fulfilled",
      "fulfilled",
    ]);
    expect(await publicTables(url)).toEqual(schemaTables);
    // Each migration recorded once: no instance applied the schema a second time.
    expect(await appliedMigrations(url)).toBe(journal.entries.length);
  });

  it("a database that cannot be reached fails the migration with the driver's error, not a hang", async () => {
    const { url } = await fresh();
    const wrong = new URL(url);
    wrong.pathname = "/scim_test_no_such_database";
    await expect(migratePostgres(wrong.toString())).rejects.toThrow(/does not exist/);
  });
});
