/**
 * The drift-scan schedule lives in the database: a restart does not put the next scan off by a
 * whole period, and of several instances on one database exactly one enqueues each scan.
 */
import pino from "pino";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { onboardOrganizationOp } from "../../src/admin/onboarding.js";
import type { SqlStore } from "../../src/directory/sql.js";
import { exec, value } from "../../src/directory/store-op.js";
import { changeBy } from "../../src/directory/write-context.js";
import { enqueueDueDriftScans, scheduleDriftScans } from "../../src/sync/drift-schedule.js";
import { openTestStores } from "../support/test-dialect.js";

const hour = 3_600_000;
const day = 24 * hour;
const silent = pino({ level: "silent" });

describe("drift scan schedule", () => {
  let opened: Awaited<ReturnType<typeof openTestStores>>;
  /** Three instances' stores on one database of the run's dialect (vitest.config.ts runs this suite on both). */
  let store: SqlStore;
  let others: SqlStore[];
  const t0 = Date.UTC(2026, 11, 7, 9, 0, 0);

  beforeEach(async () => {
    opened = await openTestStores(3);
    [store, ...others] = opened.stores as [SqlStore, ...SqlStore[]];
    for (const slug of ["acme", "globex", "initech"])
      await store.write(onboardOrganizationOp({ slug }, changeBy({ type: "operator", id: "test" })));
  });
  afterEach(() => opened.close());

  const driftJobs = async () =>
    Number(await store.read(value<number>("SELECT count(*) FROM jobs WHERE kind = 'drift' AND state = 'pending'")));

  it("schedules the first scan a period out, scans every organization when it falls due, then a period later", async () => {
    expect(await enqueueDueDriftScans(store, t0, day)).toBeUndefined();
    expect(await enqueueDueDriftScans(store, t0 + day - 1, day)).toBeUndefined();
    expect(await driftJobs()).toBe(0);
    expect(await enqueueDueDriftScans(store, t0 + day, day)).toBe(3);
    expect(await driftJobs()).toBe(3);
    // The next one is a period after the scan, not after the start.
    expect(await enqueueDueDriftScans(store, t0 + 2 * day - 1, day)).toBeUndefined();
    await markDriftJobsDone(store);
    expect(await enqueueDueDriftScans(store, t0 + 2 * day, day)).toBe(3);
  });

  it("still scans when restarts come more often than the period", async () => {
    let now = t0;
    // Daily deploys with a 24-hour period: each instance lives 20 hours, long enough for the check it
    // makes on start to finish (on PostgreSQL that takes round trips, so the test waits for it).
    for (let deploy = 0; deploy < 3; deploy++) {
      const instance = tracked(store);
      const stop = scheduleDriftScans(instance.store, 24, silent, { now: () => now });
      await instance.settled();
      now += 20 * hour;
      stop();
    }
    // The instance started at t0 + 40 h checks at once on start and finds the scan due since t0 + 24 h.
    expect(await driftJobs()).toBe(3);
  });

  it("lets exactly one of several instances on one database enqueue a due scan", async () => {
    expect(await enqueueDueDriftScans(store, t0, day)).toBeUndefined();
    const taken = await Promise.all([store, ...others].map((s) => enqueueDueDriftScans(s, t0 + day + 5, day)));
    expect(taken.filter((n) => n !== undefined)).toEqual([3]);
    expect(await driftJobs()).toBe(3);
  });

  it("pulls the next scan in when the period is shortened, without scanning at once", async () => {
    expect(await enqueueDueDriftScans(store, t0, day)).toBeUndefined();
    // DRIFT_SCAN_INTERVAL_HOURS goes from 24 to 1.
    expect(await enqueueDueDriftScans(store, t0 + hour, hour)).toBeUndefined();
    expect(await driftJobs()).toBe(0);
    expect(await enqueueDueDriftScans(store, t0 + 2 * hour, hour)).toBe(3);
  });
});

/** The worker ran the pending drift jobs: nothing pending is left to merge the next scan into. */
async function markDriftJobsDone(store: SqlStore): Promise<void> {
  await store.write(exec("UPDATE jobs SET state = 'done' WHERE kind = 'drift'"));
}

/** `store`, and a promise settled once every write made through it so far has: the schedule does not await its checks. */
function tracked(store: SqlStore): { store: SqlStore; settled(): Promise<unknown> } {
  const writes: Promise<unknown>[] = [];
  const write: SqlStore["write"] = (op) => {
    const written = store.write(op);
    writes.push(written);
    return written;
  };
  return {
    store: Object.assign(Object.create(store) as SqlStore, { write }),
    settled: () => Promise.allSettled(writes),
  };
}
