/**
 * Lists bound as one JSON parameter (jsonTextList) must not make PostgreSQL's planner read a whole
 * table for a short list: the worker loads one user's groups for every job it syncs, and a plan that
 * scanned a big group's memberships cost each job as much as 20 lookups. Checked on the statement the
 * worker sends (with its reads together: values inline, so the planner cannot see into the list).
 */
import pg from "pg";
import { afterAll, beforeAll, expect, it, vi } from "vitest";
import { migratePostgres } from "../../src/directory/postgres.js";
import { postgresStore, type SqlStore } from "../../src/directory/sql.js";
import { loadUserInputs } from "../../src/sync/inputs.js";
import { freshDatabase, withClient, type TestDatabase } from "../support/postgres.js";

const members = 20_000;
let database: TestDatabase;
let store: SqlStore;
beforeAll(async () => {
  database = await freshDatabase();
  await migratePostgres(database.url);
  await withClient(database.url, async (c) => {
    await c.query(`INSERT INTO organizations (id, slug, display_name, user_model, connection, created_at, updated_at)
      VALUES ('org_a', 'acme', 'Acme', 'isolated', 'db', 1, 1)`);
    await c.query(`INSERT INTO directories (id, organization_id, name, created_at) VALUES ('dir_a', 'org_a', 'a', 1)`);
    await c.query(
      `INSERT INTO users (id, directory_id, user_name, user_name_lower, active, resource, version, created_at, modified_at)
       SELECT 'u' || i, 'dir_a', 'u' || i || '@acme.test', 'u' || i || '@acme.test', true, '{}', 1, 1, 1
       FROM generate_series(1, $1::int) AS i`,
      [members],
    );
    await c.query(`INSERT INTO groups (id, directory_id, display_name, display_name_lower, resource, version, created_at, modified_at)
      VALUES ('g_all', 'dir_a', 'Everyone', 'everyone', '{}', 1, 1, 1)`);
    await c.query(
      `INSERT INTO group_members (group_id, member_id, directory_id, member_type, added_at)
       SELECT 'g_all', 'u' || i, 'dir_a', 'User', 1 FROM generate_series(1, $1::int) AS i`,
      [members],
    );
    await c.query("ANALYZE");
  });
  store = postgresStore(database.url, { poolSize: 1 });
});
afterAll(async () => {
  await store?.close();
  await database?.drop();
});

interface PlanNode {
  "Node Type": string;
  "Relation Name"?: string;
  Plans?: PlanNode[];
}
const scans = (node: PlanNode): string[] => [
  ...(node["Relation Name"] ? [`${node["Node Type"]} on ${node["Relation Name"]}`] : []),
  ...(node.Plans ?? []).flatMap(scans),
];

it("loads one user's groups through the membership index, not a scan of the group's members", async () => {
  const spy = vi.spyOn(pg.Client.prototype, "query");
  let sent: string | undefined;
  try {
    const inputs = await store.read(loadUserInputs("u123"));
    expect(inputs?.groups.map((g) => g.id)).toEqual(["g_all"]);
    // The worker's reads go together, as one simple query with their values inline.
    sent = spy.mock.calls
      .map(([q]) => (typeof q === "string" ? q : (q as unknown as { text: string }).text))
      .flatMap((text) => text.split(";\n"))
      .find((text) => /FROM group_members m JOIN groups g/.test(text));
  } finally {
    spy.mockRestore();
  }
  expect(sent).toBeDefined();
  const plan = await withClient(database.url, async (c) => {
    const { rows } = await c.query<{ "QUERY PLAN": [{ Plan: PlanNode }] }>(`EXPLAIN (FORMAT JSON) ${sent!}`);
    return rows[0]!["QUERY PLAN"][0].Plan;
  });
  const memberships = scans(plan).filter((s) => s.endsWith(" on group_members"));
  expect(memberships.length).toBeGreaterThan(0);
  expect(memberships).not.toContain("Seq Scan on group_members");
});
