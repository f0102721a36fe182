/**
 * A claim runs after every SCIM write that enqueues a job (the worker's tick), so it must read the
 * jobs it takes and not the backlog around them: jobs not yet due (retries backing off), and the jobs
 * of the other claim (drift scans are claimed apart from per-user jobs). One scan over every lane read
 * all of them, on each tick: half a millisecond of blocked event loop at a backlog of 2,000, growing
 * with it. Checked on this run's dialect: on SQLite by the plan of each statement the claim sends
 * (an index range that ends at the due jobs), on PostgreSQL by the rows the claim's statement
 * actually read (test/helpers/statement-reads.ts).
 */
import { describe, expect, it } from "vitest";
import type { SqlStore } from "../../src/directory/sql.js";
import type { JobRow } from "../../src/sync/worker.js";
import { postgresRowsRead, sqlitePlan, statementsSent } from "../helpers/statement-reads.js";
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

/** Runs `claim` and what its statements read: SQLite's plans, or the rows PostgreSQL's claim read from jobs j. */
async function measured(store: SqlStore, claim: () => Promise<JobRow[]>): Promise<{ jobs: JobRow[]; reads: string[] }> {
  const { result: jobs, sent } = await statementsSent(store, /FROM jobs j\s+WHERE j\.state = 'pending'/, claim);
  expect(sent.length).toBeGreaterThan(0);
  if (testDialect === "sqlite") return { jobs, reads: sent.map((s) => sqlitePlan(store, s.text)) };
  // The claimed jobs back to pending, then the same statement again.
  await sqlExec(store, "UPDATE jobs SET state = 'pending', lease_owner = NULL WHERE state = 'running'");
  return { jobs, reads: [String(await postgresRowsRead(store, sent[0]!, "jobs", "j"))] };
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
