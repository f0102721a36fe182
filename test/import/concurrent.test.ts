/**
 * The same file imported twice at once (two uploads, or a rerun while the first run still lives):
 * one import, each chunk posted once, each user recorded once, and one outcome.
 */
import { eq } from "drizzle-orm";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { auditEntries, migratedUsers, userImports, userSync } from "../../db/schema.js";
import { runImport } from "../../src/sync/import/service.js";
import type { TestBridge } from "../helpers/scim.js";
import type { SyncHarness } from "../helpers/sync-harness.js";
import { emulatorJobs, importBridge, importDeps, jsonl, operator, writeTemp } from "./helpers.js";

let bridge: TestBridge;
let sync: SyncHarness;

beforeEach(async () => {
  ({ bridge, sync } = await importBridge(100));
});
afterEach(async () => {
  await sync.close();
  await bridge.close();
});

describe("two runs of the same import at once", () => {
  it("post each chunk once and record each user once; the import ends done with one finish entry", async () => {
    const n = 600;
    const file = writeTemp(
      "users.jsonl",
      jsonl(
        Array.from({ length: n }, (_, i) => ({
          email: `user${i}@example.com`,
          user_metadata: { bio: "x".repeat(400) },
        })),
      ),
    );
    const deps = importDeps(bridge.db, sync, { maxChunkBytes: 100_000 });
    const request = { organization: bridge.organizationId, filePath: file, format: "jsonl" as const, actor: operator };
    const [a, b] = await Promise.all([runImport(deps, request), runImport(deps, request)]);

    expect([a.resumed, b.resumed].sort()).toEqual([false, true]);
    expect(a.importId).toBe(b.importId);
    // The run that ends last sees every chunk ended and records the outcome; the other may still see it running.
    const states = [a.state, b.state];
    expect(states).toContain("done");
    expect(states.every((s) => s === "done" || s === "running")).toBe(true);
    const rows = bridge.db.select().from(userImports).all();
    expect(rows).toHaveLength(1);
    expect(rows[0]!.state).toBe("done");

    const jobs = emulatorJobs(sync.emulator);
    expect(jobs).toHaveLength(a.chunks);
    expect(jobs.reduce((sum, j) => sum + (j.summary?.inserted ?? 0), 0)).toBe(n);
    expect(bridge.db.select().from(migratedUsers).all()).toHaveLength(n);
    expect(bridge.db.select().from(userSync).all()).toHaveLength(n);
    expect(
      bridge.db
        .select({ action: auditEntries.action })
        .from(auditEntries)
        .where(eq(auditEntries.targetId, rows[0]!.id))
        .all()
        .map((e) => e.action),
    ).toEqual(["users.import.start", "users.import.finish"]);
  }, 120_000);
});
