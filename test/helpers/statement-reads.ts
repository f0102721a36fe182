/**
 * What a store op's statements read, for tests that a hot statement does not walk a table: the
 * statements an action sends (captured from the connection), then on SQLite their query plans
 * (EXPLAIN QUERY PLAN: which index, with which constraints) and on PostgreSQL the rows a statement
 * actually read from a table (EXPLAIN ANALYZE inside a transaction that is rolled back).
 */
import type Database from "better-sqlite3";
import pg from "pg";
import { vi } from "vitest";
import { postgresPoolOf, sqliteConnectionOf, type SqlStore } from "../../src/directory/sql.js";

export interface SentStatement {
  text: string;
  /** PostgreSQL only: the values sent with it. */
  values?: unknown[];
}

/** Runs `action` and returns its result with the statements it sent to `store` that match `pattern`. */
export async function statementsSent<T>(
  store: SqlStore,
  pattern: RegExp,
  action: () => Promise<T>,
): Promise<{ result: T; sent: SentStatement[] }> {
  const sqlite = sqliteConnectionOf(store);
  if (sqlite) {
    const prepare = vi.spyOn(sqlite, "prepare");
    try {
      const result = await action();
      const sent = prepare.mock.calls.map(([text]) => ({ text })).filter((s) => pattern.test(s.text));
      return { result, sent };
    } finally {
      prepare.mockRestore();
    }
  }
  const query = vi.spyOn(pg.Client.prototype, "query");
  try {
    const result = await action();
    const sent = query.mock.calls
      .map(([q]) => (typeof q === "string" ? { text: q } : (q as unknown as { text: string; values?: unknown[] })))
      .filter((s) => typeof s.text === "string" && pattern.test(s.text))
      .map((s) => ({ text: s.text, ...(s.values ? { values: s.values } : {}) }));
    return { result, sent };
  } finally {
    query.mockRestore();
  }
}

/** SQLite: the plan of `text` (its placeholders bound to 0), one line per step, joined by "; ". */
export function sqlitePlan(store: SqlStore, text: string): string {
  const sqlite = sqliteConnectionOf(store) as Database.Database;
  const placeholders = text.split("?").length - 1;
  const plan = sqlite.prepare(`EXPLAIN QUERY PLAN ${text}`).all(...Array<number>(placeholders).fill(0)) as {
    detail: string;
  }[];
  return plan.map((p) => p.detail).join("; ");
}

interface PlanNode {
  "Relation Name"?: string;
  Alias?: string;
  "Actual Rows"?: number;
  "Actual Loops"?: number;
  "Rows Removed by Filter"?: number;
  Plans?: PlanNode[];
}

/**
 * PostgreSQL: the rows `statement` read from `relation` (under `alias` when given), kept or filtered
 * out, as EXPLAIN ANALYZE counts them, run in a transaction that is rolled back. Rows an index scan
 * passes over inside the index (its index condition, a skip scan) are not counted.
 */
export async function postgresRowsRead(
  store: SqlStore,
  statement: SentStatement,
  relation: string,
  alias?: string,
): Promise<number> {
  const count = (node: PlanNode): number =>
    (node["Relation Name"] === relation && (alias === undefined || node.Alias === alias)
      ? ((node["Actual Rows"] ?? 0) + (node["Rows Removed by Filter"] ?? 0)) * (node["Actual Loops"] ?? 1)
      : 0) + (node.Plans ?? []).reduce((sum, child) => sum + count(child), 0);
  const client = await postgresPoolOf(store)!.connect();
  try {
    await client.query("BEGIN");
    const { rows } = await client.query<{ "QUERY PLAN": [{ Plan: PlanNode }] }>(
      `EXPLAIN (ANALYZE, FORMAT JSON) ${statement.text}`,
      statement.values,
    );
    return count(rows[0]!["QUERY PLAN"][0].Plan);
  } finally {
    await client.query("ROLLBACK");
    client.release();
  }
}
