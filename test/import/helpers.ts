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
import type { SyncHarness } from "../helpers/sync-harness.js";

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
