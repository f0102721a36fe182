import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createManagementClient } from "../../src/auth0/client.js";
import type { Db } from "../../src/directory/database.js";
import { sqliteStore } from "../../src/directory/sql.js";
import { connectionOf } from "../../src/directory/statements.js";
import type { RunningEmulator } from "../../src/emulator/index.js";
import { ImportClient } from "../../src/sync/import/client.js";
import type { ImportDeps } from "../../src/sync/import/service.js";
import { createTestBridge, type TestBridge } from "../helpers/scim.js";
import { applyDatabaseMapping, startSyncHarness, type SyncHarness } from "../helpers/sync-harness.js";

export const operator = { type: "operator" as const, id: "test" };

/** The import service as the CLI wires it: the real node-auth0 client, the sync engine's limiter and gateway. */
export function importDeps(db: Db, sync: SyncHarness, extra: Partial<ImportDeps> = {}): ImportDeps {
  const client = createManagementClient(
    {
      domain: "tenant.example.auth0.com",
      clientId: "scim-bridge-test",
      clientSecret: "test-secret",
      managementUrl: sync.emulator.url,
    },
    { maxRetries: 0 },
  );
  return {
    store: sqliteStore(connectionOf(db)),
    api: new ImportClient(client, sync.engine.limiter),
    gateway: sync.engine.gateway,
    ...extra,
  };
}

export function writeTemp(name: string, content: string): string {
  const dir = mkdtempSync(join(tmpdir(), "scim-bridge-import-"));
  const path = join(dir, name);
  writeFileSync(path, content);
  return path;
}

export const jsonl = (records: unknown[]): string => records.map((r) => JSON.stringify(r)).join("\n") + "\n";

/** Every import job the emulated tenant ran, with its summary. */
export function emulatorJobs(emulator: RunningEmulator) {
  const state = emulator.state as unknown as {
    importJobs: {
      jobs: Map<
        string,
        { status: string; summary?: { inserted: number; updated: number; failed: number; total: number } }
      >;
    };
  };
  return [...state.importJobs.jobs.values()];
}

/**
 * A bridge with its database mapping, and a sync harness (not started) whose import jobs take
 * `baseMs` + 1 ms a user on the emulator: long enough for a process to die, or a run to beat its
 * heartbeat, while one runs.
 */
export async function importBridge(baseMs: number): Promise<{ bridge: TestBridge; sync: SyncHarness }> {
  const bridge = await createTestBridge();
  const sync = await startSyncHarness(bridge.store, { start: false, importJobTiming: { baseMs, perUserMs: 1 } });
  await applyDatabaseMapping(bridge.store, bridge.organizationId);
  return { bridge, sync };
}

const md5 = { algorithm: "md5", hash: { value: "5d41402abc4b2a76b9719d911017c592", encoding: "hex" } };
/** `n` users of an import file, each with an md5 password hash and 400 bytes of metadata. */
export const hashedUsers = (n: number) =>
  Array.from({ length: n }, (_, i) => ({
    email: `user${i}@example.com`,
    custom_password_hash: md5,
    user_metadata: { bio: "x".repeat(400) },
  }));
