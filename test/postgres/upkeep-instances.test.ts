/**
 * Periodic upkeep that every instance schedules runs on one at a time: pruning finished jobs (a
 * try-lock: the instance that finds it under way skips its turn) and the drift scan (a
 * compare-and-set on its due time). Two stores on one database stand for two instances.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { postgresPoolOf, type SqlStore } from "../../src/directory/sql.js";
import { exec, many, one } from "../../src/directory/store-op.js";
import { enqueueDueDriftScans } from "../../src/sync/drift-schedule.js";
import { pgJobQueue } from "../../src/sync/pg-job-queue.js";
import { postgresUnavailable, withClient } from "../support/postgres.js";
import { seedOrganization, storeDialects } from "../support/store-dialects.js";
import pg from "pg";

const day = 86_400_000;

describe.skipIf(postgresUnavailable)("upkeep across instances on PostgreSQL", () => {
  const postgres = storeDialects().find((d) => d.name === "PostgreSQL")!;
  let a: SqlStore;
  let b: SqlStore;
  beforeAll(async () => {
    [a, b] = await postgres.openTwo();
    await a.write(seedOrganization());
  });
  afterAll(async () => {
    await postgres?.cleanup();
  });

  const queueOf = (store: SqlStore) => pgJobQueue(postgresPoolOf(store)!, store, { backoffMs: () => 1000 });

  it("prunes finished jobs on one instance at a time: the other skips its turn while one runs", async () => {
    const old = Date.now() - 30 * day;
    await a.write(
      exec(
        `INSERT INTO jobs (organization_id, kind, key, subject_id, lane, state, attempts, run_after,
           first_enqueued_at, created_at, updated_at)
         SELECT 'org_1', 'user', 'user:u' || g, 'u' || g, 1, 'done', 1, ?, ?, ?, ? FROM generate_series(1, 50) AS g`,
        [old, old, old, old],
      ),
    );
    const url = (postgresPoolOf(a)!.options as { connectionString: string }).connectionString;
    // A third session holds one of the old rows, so that the first instance's prune is under way
    // (its DELETE waits on that row) when the second instance's turn comes.
    const holder = new pg.Client({ connectionString: url });
    await holder.connect();
    try {
      await holder.query("BEGIN");
      await holder.query("SELECT id FROM jobs WHERE subject_id = 'u1' FOR UPDATE");
      let firstDone = false;
      const first = queueOf(a)
        .prune(Date.now() - 7 * day)
        .finally(() => (firstDone = true));
      // Until the first prune is waiting on the held row, it holds the upkeep lock.
      await waitFor(async () => {
        const waiting = await withClient(url, (c) =>
          c.query<{ n: number }>(
            `SELECT count(*)::int AS n FROM pg_stat_activity
             WHERE wait_event_type = 'Lock' AND query LIKE 'DELETE FROM jobs%'`,
          ),
        );
        return waiting.rows[0]!.n === 1;
      });
      expect(await queueOf(b).prune(Date.now() - 7 * day)).toBe(0);
      expect(firstDone).toBe(false);
      await holder.query("COMMIT");
      expect(await first).toBe(50);
    } finally {
      await holder.end();
    }
    expect(await b.read(one<{ n: number }>("SELECT count(*) AS n FROM jobs WHERE state = 'done'"))).toEqual({ n: 0 });
    // Nothing under way: the second instance prunes on its own turn.
    await a.write(
      exec(
        `INSERT INTO jobs (organization_id, kind, key, subject_id, lane, state, attempts, run_after,
           first_enqueued_at, created_at, updated_at) VALUES ('org_1', 'user', 'user:x', 'x', 1, 'done', 1, ?, ?, ?, ?)`,
        [old, old, old, old],
      ),
    );
    expect(await queueOf(b).prune(Date.now() - 7 * day)).toBe(1);
  });

  it("enqueues each due drift scan once, whichever instance checks and however they race", async () => {
    await a.write(exec("DELETE FROM jobs"));
    const period = day;
    const t0 = 1_000_000;
    expect(await enqueueDueDriftScans(a, t0, period)).toBeUndefined(); // schedules the first scan
    // Both instances check at once when it is due, each with its own clock.
    const checks = await Promise.all([
      enqueueDueDriftScans(a, t0 + period + 5, period),
      enqueueDueDriftScans(b, t0 + period + 9, period),
    ]);
    expect(checks.filter((n) => n !== undefined)).toEqual([1]);
    const drift = await a.read(
      many<{ subject: string }>("SELECT subject_id AS subject FROM jobs WHERE kind = 'drift'"),
    );
    expect(drift).toEqual([{ subject: "org_1" }]);
    // And the next check of either before the next due time enqueues nothing.
    expect(await enqueueDueDriftScans(b, t0 + period + 10, period)).toBeUndefined();
  });
});

async function waitFor(condition: () => Promise<boolean>): Promise<void> {
  for (let i = 0; i < 200; i++) {
    if (await condition()) return;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error("condition not met");
}
