/**
 * scim_fold on PostgreSQL (db/pg custom migration) gives exactly foldCase's result
 * (src/directory/fold.ts), which fills the folded columns and the filters' folded parameters: a
 * value folded on one side and compared with one folded on the other must meet.
 */
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { foldCase } from "../../src/directory/fold.js";
import { migratePostgres } from "../../src/directory/postgres.js";
import { freshDatabase, postgresUnavailable, type TestDatabase } from "../support/postgres.js";

const corpus = [
  "",
  "alice@example.com",
  "Alice.Smith@Example.COM",
  "MiXeD_CaSe-123 !~",
  "Straße",
  "STRASSE",
  "ẞ", // capital sharp s: lower case ß, never ss
  "İstanbul",
  "ISTANBUL",
  "ıi", // dotless i stays dotless
  "I\u0307", // I + combining dot above: NFC composes it to İ
  "ΟΔΟΣ",
  "οδος",
  "ΣΊΣΥΦΟΣ",
  "Σ",
  "ς",
  "Élodie",
  "E\u0301lodie", // decomposed É
  "e\u0301",
  "Å", // U+212B ANGSTROM SIGN: NFC makes it U+00C5
  "K", // U+212A KELVIN SIGN: lower case k
  "ǅ", // titlecase digraph
  "ᾼ", // Greek capital alpha with prosgegrammeni
  "Ǆemal",
  "ДМИТРИЙ Иванов",
  "Ωmega Ω",
  "𐐀𐐁", // Deseret capitals (outside the BMP)
  "👍🏽 Team 🚀",
  "👨‍👩‍👧",
  "ＡＢＣ", // fullwidth
  "Ⅻ", // roman numeral twelve
  "Ⓐ",
  "\u00a0NBSP\u00a0",
  "tab\tand\nnewline",
  "한국어",
  "日本語テキスト",
  "Ǉ ǈ ǉ",
];

describe.skipIf(postgresUnavailable !== "")("scim_fold on PostgreSQL", () => {
  let database: TestDatabase;
  let client: pg.Client;

  const pgFold = async (values: string[]): Promise<(string | null)[]> =>
    (
      await client.query<{ f: string | null }>(
        "SELECT scim_fold(v) AS f FROM unnest($1::text[]) WITH ORDINALITY u(v, i) ORDER BY i",
        [values],
      )
    ).rows.map((r) => r.f);

  beforeAll(async () => {
    database = await freshDatabase();
    await migratePostgres(database.url);
    client = new pg.Client({ connectionString: database.url });
    await client.connect();
  });
  afterAll(async () => {
    await client?.end();
    await database?.drop();
  });

  it("folds a corpus of ASCII, ß, Turkish i, Greek sigma, composed and decomposed forms and emoji as foldCase does", async () => {
    const folded = await pgFold(corpus);
    expect(corpus.map((value, i) => ({ value, pg: folded[i] }))).toEqual(
      corpus.map((value) => ({ value, pg: foldCase(value) })),
    );
    // The cases the function exists for, spelled out.
    expect(await pgFold(["Straße", "ΟΔΟΣ", "İ", "E\u0301", "ẞ"])).toEqual(["straße", "οδοσ", "i\u0307", "é", "ß"]);
  });

  it("folds every code point, alone and after a capital letter, as foldCase does", async () => {
    const all: string[] = [];
    // NUL cannot be stored in PostgreSQL text; surrogates are not code points of their own.
    for (let cp = 1; cp <= 0x10ffff; cp++) if (cp < 0xd800 || cp > 0xdfff) all.push(String.fromCodePoint(cp));
    const mismatches: string[] = [];
    const batch = 100_000;
    for (let start = 0; start < all.length; start += batch) {
      // "Ä" + c: a value that is not all ASCII, so even ASCII code points go through the table.
      const alone = all.slice(start, start + batch);
      for (const values of [alone, alone.map((c) => "Ä" + c)]) {
        const folded = await pgFold(values);
        values.forEach((v, i) => {
          if (folded[i] !== foldCase(v)) mismatches.push(JSON.stringify(v));
        });
      }
    }
    expect(mismatches).toEqual([]);
  }, 120_000); // 2.2 million values through both functions: seconds, more on a loaded machine

  it("passes NULL through and is usable in an index expression (IMMUTABLE)", async () => {
    expect(await pgFold([null as unknown as string])).toEqual([null]);
    await client.query("CREATE TEMP TABLE t (v text)");
    await client.query("CREATE INDEX t_fold ON t (scim_fold(v))");
    await client.query("INSERT INTO t VALUES ('ÉLODIE'), ('E\u0301lodie'), ('bob')");
    const { rows } = await client.query("SELECT v FROM t WHERE scim_fold(v) = $1", [foldCase("élodie")]);
    expect(rows.map((r) => r.v as string).sort()).toEqual(["E\u0301lodie", "ÉLODIE"]);
  });
});
