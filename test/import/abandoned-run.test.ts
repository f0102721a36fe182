/**
 * A running import's heartbeat, from the run's side: it beats while the run lives, and a run whose
 * import was taken as abandoned meanwhile (its process was silent past IMPORT_STALE_MS, and another
 * import of the organization started) posts no more jobs and keeps the recorded reason.
 */
import { eq } from "drizzle-orm";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { userImports } from "../../db/schema.js";
import type { ImportApi } from "../../src/sync/import/client.js";
import { runImport } from "../../src/sync/import/service.js";
import { claimImport, IMPORT_STALE_MS } from "../../src/sync/import/store.js";
import type { TestBridge } from "../helpers/scim.js";
import type { SyncHarness } from "../helpers/sync-harness.js";
import { emulatorJobs, hashedUsers, importBridge, importDeps, jsonl, operator, writeTemp } from "./helpers.js";

let bridge: TestBridge;
let sync: SyncHarness;

beforeEach(async () => {
  // Jobs take 0.3 s + 1 ms a user: long enough for several heartbeats while one runs.
  ({ bridge, sync } = await importBridge(300));
});
afterEach(async () => {
  await sync.close();
  await bridge.close();
});

describe("a running import's heartbeat", () => {
  it("beats while the run lives; once the import is taken as abandoned, the run posts no more jobs and the reason stays", async () => {
    const file = writeTemp("users.jsonl", jsonl(hashedUsers(800)));
    // Jobs of about 180 users, one at a time.
    const deps = importDeps(bridge.db, sync, { maxChunkBytes: 100_000, maxConcurrentJobs: 1, heartbeatMs: 20 });
    const beats = new Set<number>();
    let posts = 0;
    let importId = "";
    const watching: ImportApi = {
      ...deps.api,
      errors: (id) => deps.api.errors(id),
      async status(id) {
        const row = bridge.db.select().from(userImports).where(eq(userImports.id, importId)).get();
        if (row?.heartbeatAt) beats.add(row.heartbeatAt);
        return deps.api.status(id);
      },
      async submit(...args) {
        posts++;
        if (posts === 2) {
          // The heartbeat moved while the first job ran.
          expect(beats.size).toBeGreaterThan(1);
          // Another instance starts another file, as if this run had been silent past the limit.
          await deps.store.write(
            claimImport({
              organizationId: bridge.organizationId,
              directoryId: bridge.directoryId,
              fileSha256: "another-file",
              fileName: "other.jsonl",
              format: "jsonl",
              upsert: false,
              connection: "Username-Password-Authentication",
              records: 1,
              chunks: [{ chunk: 1, firstRecord: 1, lastRecord: 1, users: 1, bytes: 10 }],
              actor: operator,
              at: Date.now() + IMPORT_STALE_MS + 1,
            }),
          );
        }
        return deps.api.submit(...args);
      },
    };
    const report = await runImport(
      { ...deps, api: watching },
      {
        organization: bridge.organizationId,
        filePath: file,
        format: "jsonl",
        actor: operator,
        onStarted: (id) => (importId = id),
      },
    );
    expect(report.chunks).toBeGreaterThan(3);
    expect(report.state).toBe("failed");
    expect(report.lastError).toMatch(/^abandoned: no run of this import reported since /);
    // The job posted when it was abandoned still ends and is recorded; no later one is posted.
    expect(posts).toBe(2);
    expect(emulatorJobs(sync.emulator)).toHaveLength(2);
  });
});
