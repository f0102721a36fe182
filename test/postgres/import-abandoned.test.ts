/**
 * An import left running by an instance that died no longer blocks its organization's other imports
 * for ever: a run writes a heartbeat while it lives, and a running import whose heartbeat is older
 * than IMPORT_STALE_MS is taken as abandoned when another import asks to start (failed, with the
 * reason in its report). Re-running its file still resumes it. On SQLite and PostgreSQL alike.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import type { SqlStore } from "../../src/directory/sql.js";
import { exec, many } from "../../src/directory/store-op.js";
import { isBridgeError } from "../../src/errors.js";
import { importReport } from "../../src/sync/import/service.js";
import { claimImport, finishImport, getImport, heartbeatImport, IMPORT_STALE_MS } from "../../src/sync/import/store.js";
import { newTestImport, seedOrganization, storeDialects } from "../support/store-dialects.js";

const operator = { type: "operator", id: "adm_1" } as const;
const T0 = 1_800_000_000_000;

const newImport = (fileSha256: string, fileName: string, at: number) => newTestImport(fileSha256, at, fileName);

describe.each(storeDialects())("an abandoned user import on $name", (dialect) => {
  let store: SqlStore;
  const refusal = (p: Promise<unknown>): Promise<string> =>
    p.then(
      () => "started",
      (e: unknown) => (isBridgeError(e) ? `${e.kind}: ${e.message}` : Promise.reject(e as Error)),
    );
  /** What a dead runner leaves: its last heartbeat, `ms` ago. */
  const silentFor = (importId: string, ms: number, now: number) =>
    store.write(exec("UPDATE user_imports SET heartbeat_at = ? WHERE id = ?", [now - ms, importId]));

  beforeAll(async () => {
    store = await dialect.open();
    await store.write(seedOrganization());
    await store.write(
      exec(`INSERT INTO directories (id, organization_id, name, created_at) VALUES ('dir_1', 'org_1', 'default', 1)`),
    );
  });
  beforeEach(async () => {
    await store.write(exec("DELETE FROM user_imports"));
  });
  afterAll(() => dialect.cleanup());

  it("a running import that still beats keeps others out; once silent past the limit, another starts and it shows as abandoned", async () => {
    const a = await store.write(claimImport(newImport("sha-a", "legacy-a.jsonl", T0)));
    expect(a.row).toMatchObject({ state: "running", heartbeatAt: T0 });

    // Its run is alive: a heartbeat a minute ago. A second file is refused, naming the running one.
    const t1 = T0 + 10 * 60_000;
    expect(await store.write(heartbeatImport(a.row.id, t1 - 60_000))).toBe(true);
    const refused = await refusal(store.write(claimImport(newImport("sha-b", "legacy-b.jsonl", t1))));
    expect(refused).toMatch(/^conflict: .*already has a user import running/);
    expect(refused).toContain(a.row.id);
    expect(refused).toContain("legacy-a.jsonl");

    // Its instance died: nothing beats any more; just inside the limit it still counts as running.
    await silentFor(a.row.id, IMPORT_STALE_MS, t1);
    expect(await refusal(store.write(claimImport(newImport("sha-b", "legacy-b.jsonl", t1))))).toMatch(/^conflict/);
    await silentFor(a.row.id, IMPORT_STALE_MS + 1, t1);
    const b = await store.write(claimImport(newImport("sha-b", "legacy-b.jsonl", t1)));
    expect(b).toMatchObject({ resumed: false, row: { state: "running", fileName: "legacy-b.jsonl" } });

    const report = (await store.read(importReport(a.row.id)))!;
    expect(report.state).toBe("failed");
    expect(report.lastError).toContain(
      `abandoned: no run of this import reported since ${new Date(t1 - IMPORT_STALE_MS - 1).toISOString()}`,
    );
    expect(report.lastError).toContain("run the same file again to resume this one");
    const audit = await store.read(
      many<{ action: string; actorId: string }>(
        `SELECT action, actor_id AS "actorId" FROM audit_entries WHERE target_id = ? ORDER BY id`,
        [a.row.id],
      ),
    );
    expect(audit).toEqual([
      { action: "users.import.start", actorId: "adm_1" },
      { action: "users.import.abandon", actorId: "adm_1" },
    ]);

    // A run of the abandoned import that wakes up learns it no longer runs (and stops).
    expect(await store.write(heartbeatImport(a.row.id, t1 + 1000))).toBe(false);
    expect(await store.read(getImport(a.row.id))).toMatchObject({ state: "failed" });
  });

  it("re-running the abandoned file resumes it, once the import that replaced it ended", async () => {
    const a = await store.write(claimImport(newImport("sha-a", "legacy-a.jsonl", T0)));
    const t1 = T0 + IMPORT_STALE_MS + 60_000;
    const b = await store.write(claimImport(newImport("sha-b", "legacy-b.jsonl", t1)));
    expect(await store.read(getImport(a.row.id))).toMatchObject({ state: "failed" });

    // While b runs (and beats), a's file is refused like any other.
    expect(await refusal(store.write(claimImport(newImport("sha-a", "legacy-a.jsonl", t1 + 1000))))).toContain(
      b.row.id,
    );
    await store.write(exec("UPDATE user_import_chunks SET state = 'linked' WHERE import_id = ?", [b.row.id]));
    expect(await store.write(finishImport(b.row.id, operator, t1 + 2000))).toBe("done");

    const again = await store.write(claimImport(newImport("sha-a", "legacy-a.jsonl", t1 + 3000)));
    expect(again).toMatchObject({ resumed: true, row: { id: a.row.id, state: "running", heartbeatAt: t1 + 3000 } });
  });

  it("re-running the same file of a silent import resumes it rather than abandoning it", async () => {
    const a = await store.write(claimImport(newImport("sha-a", "legacy-a.jsonl", T0)));
    const t1 = T0 + IMPORT_STALE_MS * 3;
    const again = await store.write(claimImport(newImport("sha-a", "legacy-a.jsonl", t1)));
    expect(again).toMatchObject({ resumed: true, row: { id: a.row.id, state: "running", heartbeatAt: t1 } });
  });

  it("an import of an earlier release, with no heartbeat yet, is judged by its last activity", async () => {
    const a = await store.write(claimImport(newImport("sha-a", "legacy-a.jsonl", T0)));
    await store.write(exec("UPDATE user_imports SET heartbeat_at = NULL, updated_at = ? WHERE id = ?", [T0, a.row.id]));
    expect(await refusal(store.write(claimImport(newImport("sha-b", "legacy-b.jsonl", T0 + 60_000))))).toMatch(
      /^conflict/,
    );
    expect(
      await refusal(store.write(claimImport(newImport("sha-b", "legacy-b.jsonl", T0 + IMPORT_STALE_MS + 1)))),
    ).toBe("started");
  });
});
