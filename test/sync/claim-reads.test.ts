/**
 * A claim runs after every SCIM write that enqueues a job (the worker's tick), so it must read the
 * jobs it takes and not the backlog around them: jobs not yet due (retries backing off), and the jobs
 * of the other claim (drift scans are claimed apart from per-user jobs). One scan over every lane read
 * all of them, on each tick: half a millisecond of blocked event loop at a backlog of 2,000, growing
 * with it. Checked on this run's dialect: on SQLite by the plan of each statement the claim sends
 * (an index range that ends at the due jobs), on PostgreSQL by the rows the claim's statement
 * actually read (EXPLAIN ANALYZE, rolled back; rows an index scan passes over inside the index, as
 * PostgreSQL 18's skip scan does over jobs not yet due, are not counted there).
 */
import type Database from "better-sqlite3";
import pg from "pg";
import { describe, expect, it, vi } from "vitest";
import { postgresPoolOf, sqliteConnectionOf, type SqlStore } from "../../src/directory/sql.js";
import type { JobRow } from "../../src/sync/worker.js";
import { sqlExec, workerQueueOf, workerTestStores } from "../helpers/sync-store.js";
import { testDialect } from "../support/test-dialect.js";

const stores = workerTestStores();

const notDue = 5_000;
const dueScans = 3_000;

/** Inserts `count` pending jobs of one shape in one statement (a recursive CTE runs on both dialects). */
const insertJobs = (store: SqlStore, prefix: string, kind: string, lane: number, runAfter: number, count: number) =>
  sqlExec(
    store,
    `INSERT INTO jobs (organization_id, kind, key, subject_id, lane, state, run_after, first_enqueued_at, created_at, updated_at)
     WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < ?)
     SELECT 'org1', ?, ? || i, ? || i, ?, 'pending', ?, 0, 0, 0 FROM s`,
    [count, kind, `${kind}:${prefix}`, prefix, lane, runAfter],
  );

/** A backlog where only four jobs are due for the ordinary claim, and thousands of others are not its to take. */
async function backlog(store: SqlStore, now: number): Promise<void> {
  const past = now - 60_000;
  await insertJobs(store, "late", "user", 1, now + 10 * 86_400_000, notDue); // provisioning retries backing off
  await insertJobs(store, "org", "drift", 2, past, dueScans); // every organization's drift scan, due
  await insertJobs(store, "off", "user", 0, past, 2); // two deactivations
  await insertJobs(store, "bg", "user", 2, past, 2); // two background re-syncs
}

interface PlanNode {
  "Node Type": string;
  "Relation Name"?: string;
  Alias?: string;
  "Actual Rows"?: number;
  "Actual Loops"?: number;
  "Rows Removed by Filter"?: number;
  Plans?: PlanNode[];
}
/** Rows the plan read from the claimed table (alias j), kept or filtered out. */
const rowsRead = (node: PlanNode): number =>
  (node["Relation Name"] === "jobs" && node.Alias === "j"
    ? ((node["Actual Rows"] ?? 0) + (node["Rows Removed by Filter"] ?? 0)) * (node["Actual Loops"] ?? 1)
    : 0) + (node.Plans ?? []).reduce((sum, child) => sum + rowsRead(child), 0);

/** Runs `claim` and measures what its statements read (see the file's comment). */
async function measured(store: SqlStore, claim: () => Promise<JobRow[]>): Promise<{ jobs: JobRow[]; reads: string[] }> {
  if (testDialect === "sqlite") {
    const sqlite = sqliteConnectionOf(store)!;
    const sent: string[] = [];
    const prepare = vi.spyOn(sqlite, "prepare");
    let jobs: JobRow[];
    try {
      jobs = await claim();
      for (const [text] of prepare.mock.calls)
        if (/FROM jobs j\s+WHERE j\.state = 'pending'/.test(text)) sent.push(text);
    } finally {
      prepare.mockRestore();
    }
    const reads = sent.map((text) => {
      const plan = (sqlite as Database.Database).prepare(`EXPLAIN QUERY PLAN ${text}`).all(
        ...text
          .split("?")
          .slice(1)
          .map(() => 0),
      ) as { detail: string }[];
      return plan.map((p) => p.detail).join("; ");
    });
    return { jobs, reads };
  }
  const spy = vi.spyOn(pg.Client.prototype, "query");
  let jobs: JobRow[];
  let text: string | undefined;
  try {
    jobs = await claim();
    text = spy.mock.calls
      .map(([q]) => (typeof q === "string" ? q : (q as unknown as { text: string }).text))
      .find((t) => /FOR UPDATE OF j SKIP LOCKED/.test(t));
  } finally {
    spy.mockRestore();
  }
  expect(text).toBeDefined();
  // The claimed jobs back to pending, then the same statement again, measured and rolled back.
  const client = await postgresPoolOf(store)!.connect();
  try {
    await client.query("UPDATE jobs SET state = 'pending', lease_owner = NULL WHERE state = 'running'");
    await client.query("BEGIN");
    const { rows } = await client.query<{ "QUERY PLAN": [{ Plan: PlanNode }] }>(
      `EXPLAIN (ANALYZE, FORMAT JSON) ${text!}`,
    );
    await client.query("ROLLBACK");
    return { jobs, reads: [String(rowsRead(rows[0]!["QUERY PLAN"][0].Plan))] };
  } finally {
    client.release();
  }
}

describe("a claim reads the jobs it takes, not the backlog", () => {
  it("takes the due deactivations and background jobs past thousands of jobs not due and due drift scans", async () => {
    const store = await stores.store();
    const now = Date.now();
    await backlog(store, now);
    const { queue } = workerQueueOf(store);
    const { jobs, reads } = await measured(store, () =>
      queue.claim({ owner: "w1", now, leaseMs: 30_000, limit: 6, nonUrgent: 4, scans: false }),
    );
    expect(jobs.map((j) => j.key)).toEqual(["user:off1", "user:off2", "user:bg1", "user:bg2"]);
    if (testDialect === "sqlite") {
      expect(reads.length).toBeGreaterThan(0);
      for (const plan of reads)
        expect(plan).toMatch(/USING INDEX jobs_work_claim_idx \(state=\? AND lane=\? AND run_after<\?\)/);
      expect(reads.join(" ")).not.toMatch(/TEMP B-TREE/);
    } else {
      expect(Number(reads[0])).toBeLessThanOrEqual(12);
    }
  });

  it("takes due drift scans alone, past thousands of per-user jobs", async () => {
    const store = await stores.store();
    const now = Date.now();
    await backlog(store, now);
    await insertJobs(store, "due", "user", 1, now - 60_000, 4_000); // a provisioning push, due
    const { queue } = workerQueueOf(store);
    const { jobs, reads } = await measured(store, () =>
      queue.claim({ owner: "w1", now, leaseMs: 30_000, limit: 2, nonUrgent: 2, scans: true }),
    );
    expect(jobs.map((j) => j.key)).toEqual(["drift:org1", "drift:org2"]);
    if (testDialect === "sqlite") {
      expect(reads).toHaveLength(1);
      expect(reads[0]).toMatch(/USING INDEX jobs_drift_claim_idx \(state=\? AND run_after<\?\)/);
      expect(reads[0]).not.toMatch(/TEMP B-TREE/);
    } else {
      expect(Number(reads[0])).toBeLessThanOrEqual(4);
    }
  });
});
