import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, it } from "vitest";
import { openDatabase } from "../../src/directory/database.js";
import { sqliteStore } from "../../src/directory/sql.js";
import { runInstancesScenario } from "../helpers/instances.js";

const workdir = mkdtempSync(join(tmpdir(), "scim-bridge-instances-"));
afterAll(() => rmSync(workdir, { recursive: true, force: true }));

describe("several instances on one SQLite file", () => {
  it("converge on Auth0 with SCIM traffic spread across three instances, one SIGKILLed twice", async () => {
    const databaseUrl = `sqlite:${join(workdir, "bridge.db")}`;
    const opened = openDatabase(databaseUrl);
    try {
      // On SQLite the instances' writes take turns on one file lock, so pushing is slow: a test of
      // convergence, not of throughput.
      await runInstancesScenario({
        databaseUrl,
        store: sqliteStore(opened.sqlite),
        users: 600,
        admins: 100,
        deactivated: 50,
        drainMs: 150_000,
      });
    } finally {
      opened.close();
    }
  }, 300_000);
});
