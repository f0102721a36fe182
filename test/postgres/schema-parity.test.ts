/**
 * The SQLite and PostgreSQL schemas cannot drift apart: both dialects' migrations are applied to
 * real databases, and their catalogs (tables, columns, primary and foreign keys, indexes with their
 * uniqueness and partial-index conditions) must describe the same schema. A change to db/schema.ts
 * without the same change to db/schema.pg.ts and `npm run db:generate` fails here.
 */
import { is } from "drizzle-orm";
import { getTableConfig as getSqliteTableConfig, SQLiteTable } from "drizzle-orm/sqlite-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import * as sqliteSchema from "../../db/schema.js";
import { openDatabase } from "../../src/directory/database.js";
import { migratePostgres } from "../../src/directory/postgres.js";
import { freshDatabase, postgresUnavailable, withClient, type TestDatabase } from "../support/postgres.js";

interface Column {
  name: string;
  /** text | integer | float | boolean */
  type: string;
  notNull: boolean;
  default: string | null;
  /** Filled by the database (SQLite AUTOINCREMENT, PostgreSQL identity). */
  generated: boolean;
}
interface Index {
  name: string;
  unique: boolean;
  columns: string[];
  where: string | null;
}
interface ForeignKey {
  columns: string[];
  table: string;
  references: string[];
  onDelete: string;
}
interface Table {
  columns: Column[];
  primaryKey: string[];
  indexes: Index[];
  foreignKeys: ForeignKey[];
}
type Catalog = Record<string, Table>;

/** Partial-index conditions as each dialect prints them, down to one spelling. */
function normaliseWhere(where: string | null): string | null {
  if (where === null) return null;
  return where
    .replace(/::[a-z ]+/gi, "")
    .replace(/["`()]/g, "")
    .replace(/\s+/g, " ")
    .trim()
    .toLowerCase();
}

const byName = <T extends { name: string }>(a: T, b: T) => a.name.localeCompare(b.name);
const fkOrder = (a: ForeignKey, b: ForeignKey) => a.columns.join().localeCompare(b.columns.join());

/** Columns declared with drizzle's boolean mode: SQLite stores them as integer, PostgreSQL as boolean. */
const sqliteBooleans = new Set(
  Object.values(sqliteSchema)
    .filter((v) => is(v, SQLiteTable))
    .flatMap((t) => {
      const config = getSqliteTableConfig(t as SQLiteTable);
      return config.columns.filter((c) => c.columnType === "SQLiteBoolean").map((c) => `${config.name}.${c.name}`);
    }),
);

function sqliteCatalog(): Catalog {
  const { sqlite, close } = openDatabase("sqlite::memory:");
  try {
    const tables = sqlite
      .prepare(
        "SELECT name, sql FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' AND name <> '__drizzle_migrations'",
      )
      .all() as { name: string; sql: string }[];
    const catalog: Catalog = {};
    for (const { name: table, sql: createSql } of tables) {
      const info = sqlite.prepare(`PRAGMA table_info("${table}")`).all() as {
        name: string;
        type: string;
        notnull: number;
        dflt_value: string | null;
        pk: number;
      }[];
      const columns = info.map((c) => ({
        name: c.name,
        type: sqliteBooleans.has(`${table}.${c.name}`)
          ? "boolean"
          : ({ text: "text", integer: "integer", real: "float" }[c.type.toLowerCase()] ?? c.type),
        notNull: c.notnull === 1 || c.pk > 0,
        default: c.dflt_value,
        generated: new RegExp(`[\`"]${c.name}[\`"] integer PRIMARY KEY AUTOINCREMENT`, "i").test(createSql),
      }));
      const primaryKey = info
        .filter((c) => c.pk > 0)
        .sort((a, b) => a.pk - b.pk)
        .map((c) => c.name);
      const indexList = sqlite.prepare(`PRAGMA index_list("${table}")`).all() as {
        name: string;
        unique: number;
        origin: string;
      }[];
      const indexes = indexList
        .filter((i) => i.origin === "c")
        .map((i) => {
          const indexSql = (
            sqlite.prepare("SELECT sql FROM sqlite_master WHERE type = 'index' AND name = ?").get(i.name) as {
              sql: string;
            }
          ).sql;
          const where = /\sWHERE\s(.*)$/is.exec(indexSql)?.[1] ?? null;
          const columns = (sqlite.prepare(`PRAGMA index_info("${i.name}")`).all() as { seqno: number; name: string }[])
            .sort((a, b) => a.seqno - b.seqno)
            .map((c) => c.name);
          return { name: i.name, unique: i.unique === 1, columns, where: normaliseWhere(where) };
        });
      const fkRows = sqlite.prepare(`PRAGMA foreign_key_list("${table}")`).all() as {
        id: number;
        seq: number;
        table: string;
        from: string;
        to: string;
        on_delete: string;
      }[];
      const foreignKeys = [...new Set(fkRows.map((f) => f.id))].map((id) => {
        const parts = fkRows.filter((f) => f.id === id).sort((a, b) => a.seq - b.seq);
        return {
          columns: parts.map((p) => p.from),
          table: parts[0]!.table,
          references: parts.map((p) => p.to),
          onDelete: parts[0]!.on_delete.toLowerCase(),
        };
      });
      catalog[table] = {
        columns: columns.sort(byName),
        primaryKey,
        indexes: indexes.sort(byName),
        foreignKeys: foreignKeys.sort(fkOrder),
      };
    }
    return catalog;
  } finally {
    close();
  }
}

const pgTypes: Record<string, string> = {
  text: "text",
  integer: "integer",
  bigint: "integer",
  "double precision": "float",
  boolean: "boolean",
};
const pgDeleteActions: Record<string, string> = {
  a: "no action",
  r: "restrict",
  c: "cascade",
  n: "set null",
  d: "set default",
};

async function pgCatalog(url: string): Promise<{ catalog: Catalog; types: Map<string, string> }> {
  return withClient(url, async (c) => {
    const tables = (
      await c.query<{ table_name: string }>(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' AND table_type = 'BASE TABLE'",
      )
    ).rows.map((r) => r.table_name);
    const catalog: Catalog = {};
    const types = new Map<string, string>();
    for (const table of tables) {
      const cols = (
        await c.query<{
          column_name: string;
          data_type: string;
          is_nullable: string;
          column_default: string | null;
          is_identity: string;
        }>(
          `SELECT column_name, data_type, is_nullable, column_default, is_identity
           FROM information_schema.columns WHERE table_schema = 'public' AND table_name = $1`,
          [table],
        )
      ).rows;
      for (const col of cols) types.set(`${table}.${col.column_name}`, col.data_type);
      const keys = (
        await c.query<{
          contype: string;
          columns: string[];
          ref_table: string | null;
          ref_columns: string[] | null;
          confdeltype: string;
        }>(
          `SELECT con.contype, con.confdeltype,
             ARRAY(SELECT a.attname::text FROM unnest(con.conkey) WITH ORDINALITY k(n, i)
                   JOIN pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k.n ORDER BY k.i) AS columns,
             ref.relname AS ref_table,
             CASE WHEN con.contype = 'f' THEN ARRAY(SELECT a.attname::text FROM unnest(con.confkey) WITH ORDINALITY k(n, i)
                   JOIN pg_attribute a ON a.attrelid = con.confrelid AND a.attnum = k.n ORDER BY k.i) END AS ref_columns
           FROM pg_constraint con JOIN pg_class rel ON rel.oid = con.conrelid
           LEFT JOIN pg_class ref ON ref.oid = con.confrelid
           WHERE rel.relname = $1 AND rel.relnamespace = 'public'::regnamespace AND con.contype IN ('p', 'f')`,
          [table],
        )
      ).rows;
      const indexes = (
        await c.query<{ name: string; unique: boolean; columns: string[]; where: string | null }>(
          `SELECT ic.relname AS name, i.indisunique AS unique,
             ARRAY(SELECT pg_get_indexdef(i.indexrelid, k, true) FROM generate_series(1, i.indnatts) k) AS columns,
             pg_get_expr(i.indpred, i.indrelid) AS where
           FROM pg_index i JOIN pg_class ic ON ic.oid = i.indexrelid JOIN pg_class t ON t.oid = i.indrelid
           WHERE t.relname = $1 AND t.relnamespace = 'public'::regnamespace AND NOT i.indisprimary`,
          [table],
        )
      ).rows;
      catalog[table] = {
        columns: cols
          .map((col) => ({
            name: col.column_name,
            type: pgTypes[col.data_type] ?? col.data_type,
            notNull: col.is_nullable === "NO",
            default: col.column_default,
            generated: col.is_identity === "YES",
          }))
          .sort(byName),
        primaryKey: keys.find((k) => k.contype === "p")?.columns ?? [],
        indexes: indexes
          .map((i) => ({
            name: i.name,
            unique: i.unique,
            columns: i.columns.map((col) => col.replace(/"/g, "")),
            where: normaliseWhere(i.where),
          }))
          .sort(byName),
        foreignKeys: keys
          .filter((k) => k.contype === "f")
          .map((k) => ({
            columns: k.columns,
            table: k.ref_table!,
            references: k.ref_columns!,
            onDelete: pgDeleteActions[k.confdeltype] ?? k.confdeltype,
          }))
          .sort(fkOrder),
      };
    }
    return { catalog, types };
  });
}

describe.skipIf(postgresUnavailable !== "")("SQLite and PostgreSQL schemas (db/sqlite, db/pg)", () => {
  let database: TestDatabase;
  let sqlite: Catalog;
  let postgres: Catalog;
  let pgColumnTypes: Map<string, string>;

  beforeAll(async () => {
    database = await freshDatabase();
    await migratePostgres(database.url);
    sqlite = sqliteCatalog();
    ({ catalog: postgres, types: pgColumnTypes } = await pgCatalog(database.url));
  });
  afterAll(async () => {
    await database?.drop();
  });

  it("have the same tables", () => {
    expect(Object.keys(postgres).sort()).toEqual(Object.keys(sqlite).sort());
    expect(Object.keys(sqlite).length).toBeGreaterThan(20);
  });

  it("have, table by table, the same columns, keys and indexes, partial-index conditions included", () => {
    expect(postgres).toEqual(sqlite);
    // The indexes the store relies on for correctness are there (and partial) on both sides.
    for (const catalog of [sqlite, postgres]) {
      expect(catalog.users!.indexes).toContainEqual({
        name: "users_dir_username_uq",
        unique: true,
        columns: ["directory_id", "user_name_lower"],
        where: "deleted_at is null",
      });
      expect(catalog.jobs!.indexes).toContainEqual({
        name: "jobs_pending_key_uq",
        unique: true,
        columns: ["key"],
        where: "state = 'pending'",
      });
    }
  });

  it("compare and order every text column by code point on PostgreSQL, as SQLite's BINARY collation does", async () => {
    // The one intended difference the catalogs above do not show (information_schema's data_type
    // is "text" either way): COLLATE "C" on every text column, whatever the database's locale, so
    // that keyset pages, sortBy and filters order text as SQLite does.
    const collations = await withClient(
      database.url,
      async (c) =>
        (
          await c.query<{ column: string; collation: string | null }>(
            `SELECT table_name || '.' || column_name AS column, collation_name AS collation
           FROM information_schema.columns WHERE table_schema = 'public' AND data_type = 'text'
           ORDER BY 1`,
          )
        ).rows,
    );
    expect(collations.length).toBeGreaterThan(100);
    expect(collations.filter((c) => c.collation !== "C")).toEqual([]);
  });

  it("keep epoch-millisecond timestamps in 64-bit integers on PostgreSQL, as SQLite does", () => {
    const epochColumns = [...pgColumnTypes.keys()].filter((key) => /\.(?:.+_at|at|run_after|paused_until)$/.test(key));
    expect(epochColumns.length).toBeGreaterThan(30);
    for (const key of epochColumns) expect({ key, type: pgColumnTypes.get(key) }).toEqual({ key, type: "bigint" });
  });
});
