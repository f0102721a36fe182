/**
 * The drift-scan schedule lives in the database: a restart does not put the next scan off by a
 * whole period, and of several instances on one database exactly one enqueues each scan.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { and, eq } from "drizzle-orm";
import pino from "pino";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { jobs } from "../../db/schema.js";
import { onboardOrganizationOp } from "../../src/admin/onboarding.js";
import { openDatabase, type OpenDatabase } from "../../src/directory/database.js";
import { sqliteStore } from "../../src/directory/sql.js";
import { changeBy } from "../../src/directory/write-context.js";
import { enqueueDueDriftScans, scheduleDriftScans } from "../../src/sync/drift-schedule.js";
import { writeSync } from "../../src/directory/store-op.js";

const hour = 3_600_000;
const day = 24 * hour;
const silent = pino({ level: "silent" });

describe("drift scan schedule", () => {
  let dir: string;
  let url: string;
  let store: OpenDatabase;
  const t0 = Date.UTC(2026, 11, 7, 9, 0, 0);

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), "drift-schedule-"));
    url = `sqlite:${join(dir, "bridge.db")}`;
    store = openDatabase(url);
    for (const slug of ["acme", "globex", "initech"])
      writeSync(store.db, onboardOrganizationOp({ slug }, changeBy({ type: "operator", id: "test" })));
  });
  afterEach(() => {
    store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const driftJobs = (db = store.db) =>
    db
      .select({ subjectId: jobs.subjectId })
      .from(jobs)
      .where(and(eq(jobs.kind, "drift"), eq(jobs.state, "pending")))
      .all().length;

  it("schedules the first scan a period out, scans every organization when it falls due, then a period later", async () => {
    expect(await enqueueDueDriftScans(sqliteStore(store.sqlite), t0, day)).toBeUndefined();
    expect(await enqueueDueDriftScans(sqliteStore(store.sqlite), t0 + day - 1, day)).toBeUndefined();
    expect(driftJobs()).toBe(0);
    expect(await enqueueDueDriftScans(sqliteStore(store.sqlite), t0 + day, day)).toBe(3);
    expect(driftJobs()).toBe(3);
    // The next one is a period after the scan, not after the start.
    expect(await enqueueDueDriftScans(sqliteStore(store.sqlite), t0 + 2 * day - 1, day)).toBeUndefined();
    markDriftJobsDone(store);
    expect(await enqueueDueDriftScans(sqliteStore(store.sqlite), t0 + 2 * day, day)).toBe(3);
  });

  it("still scans when restarts come more often than the period", () => {
    let now = t0;
    // Daily deploys with a 24-hour period: each instance lives 20 hours.
    for (let deploy = 0; deploy < 3; deploy++) {
      const stop = scheduleDriftScans(sqliteStore(store.sqlite), 24, silent, { now: () => now });
      now += 20 * hour;
      stop();
    }
    // The instance started at t0 + 40 h checks at once on start and finds the scan due since t0 + 24 h.
    expect(driftJobs()).toBe(3);
  });

  it("lets exactly one of several instances on one database enqueue a due scan", async () => {
    const others = [openDatabase(url), openDatabase(url)];
    try {
      expect(await enqueueDueDriftScans(sqliteStore(store.sqlite), t0, day)).toBeUndefined();
      const taken = await Promise.all(
        [store, ...others].map((s) => enqueueDueDriftScans(sqliteStore(s.sqlite), t0 + day + 5, day)),
      );
      expect(taken.filter((n) => n !== undefined)).toEqual([3]);
      expect(driftJobs()).toBe(3);
    } finally {
      for (const s of others) s.close();
    }
  });

  it("pulls the next scan in when the period is shortened, without scanning at once", async () => {
    expect(await enqueueDueDriftScans(sqliteStore(store.sqlite), t0, day)).toBeUndefined();
    // DRIFT_SCAN_INTERVAL_HOURS goes from 24 to 1.
    expect(await enqueueDueDriftScans(sqliteStore(store.sqlite), t0 + hour, hour)).toBeUndefined();
    expect(driftJobs()).toBe(0);
    expect(await enqueueDueDriftScans(sqliteStore(store.sqlite), t0 + 2 * hour, hour)).toBe(3);
  });
});

/** The worker ran the pending drift jobs: nothing pending is left to merge the next scan into. */
function markDriftJobsDone(store: OpenDatabase): void {
  store.db.update(jobs).set({ state: "done" }).where(eq(jobs.kind, "drift")).run();
}
