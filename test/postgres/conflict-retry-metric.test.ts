/**
 * A store conflict retry (a PostgreSQL deadlock victim run again) is counted where Prometheus sees it:
 * scim_bridge_store_conflict_retries_total on the bridge's /metrics, by SQLSTATE and unit.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { exec, type StoreOp } from "../../src/directory/store-op.js";
import { createTestBridge, type TestBridge } from "../helpers/scim.js";
import { postgresUnavailable } from "../support/postgres.js";

describe.skipIf(postgresUnavailable)("store conflict retries in /metrics", () => {
  let t: TestBridge;
  beforeAll(async () => {
    t = await createTestBridge();
    await t.store.write(exec("CREATE TABLE pairs (id int PRIMARY KEY, n int NOT NULL)"));
    await t.store.write(exec("INSERT INTO pairs VALUES (1, 0), (2, 0)"));
  });
  afterAll(async () => {
    await t?.close();
  });

  /** Locks one row, waits while the other unit locks the other row, then wants that one: a deadlock. */
  const crossing = (from: number, to: number) =>
    function* (): StoreOp<void> {
      yield* exec("UPDATE pairs SET n = n + 1 WHERE id = ?", [from]);
      yield* exec("SELECT pg_sleep(0.3)");
      yield* exec("UPDATE pairs SET n = n + 1 WHERE id = ?", [to]);
    };

  const scrape = async (): Promise<string> => {
    const res = await fetch(`${t.origin}/metrics`);
    expect(res.status).toBe(200);
    return res.text();
  };
  const retried = (text: string): number => {
    const line = text
      .split("\n")
      .find((l) => l.startsWith('scim_bridge_store_conflict_retries_total{code="40P01",unit="write"} '));
    return line ? Number(line.split(" ").at(-1)) : 0;
  };

  it("a deadlock between two writes of the bridge's store moves the counter by the retries it caused", async () => {
    expect(t.dialect).toBe("postgres");
    const before = await scrape();
    expect(before).toContain("# TYPE scim_bridge_store_conflict_retries_total counter");
    expect(retried(before)).toBe(0);

    const outcomes = await Promise.allSettled([t.store.write(crossing(1, 2)), t.store.write(crossing(2, 1))]);
    // The victim ran again and committed: both writes succeeded.
    expect(outcomes.map((o) => o.status)).toEqual(["fulfilled", "fulfilled"]);
    const after = retried(await scrape());
    // One victim, rarely two (each backend's deadlock check firing before the other's abort lands).
    expect(after).toBeGreaterThanOrEqual(1);
    expect(after).toBeLessThanOrEqual(2);
  });
});
