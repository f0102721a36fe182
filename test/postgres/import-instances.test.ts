/**
 * One running user import per organization, across instances: two instances starting imports of
 * different files at once start one, and the other is refused with a conflict (409) naming it; a
 * second run of the same file is the same import, and once it ends another may start.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { SqlStore } from "../../src/directory/sql.js";
import { exec, many, one } from "../../src/directory/store-op.js";
import { isBridgeError } from "../../src/errors.js";
import { claimImport, failImport } from "../../src/sync/import/store.js";
import { newTestImport, seedOrganization, storeDialects } from "../support/store-dialects.js";

const newImport = newTestImport;

describe.each(storeDialects())("one running user import per organization on $name", (dialect) => {
  let a: SqlStore;
  let b: SqlStore;
  beforeAll(async () => {
    [a, b] = await dialect.openTwo();
    await a.write(seedOrganization());
    await a.write(
      exec(`INSERT INTO directories (id, organization_id, name, created_at) VALUES ('dir_1', 'org_1', 'default', 1)`),
    );
    // Connections open first, so that the claims' statements interleave on PostgreSQL.
    await Promise.all([a, b, a, b].map((s) => s.read(one("SELECT 1 AS one"))));
  });
  afterAll(() => dialect.cleanup());

  const running = () =>
    a.read(many<{ file: string }>("SELECT file_sha256 AS file FROM user_imports WHERE state = 'running'"));

  it("of two instances starting imports of different files at once, one starts and the other gets a conflict", async () => {
    const outcomes = await Promise.allSettled([
      a.write(() => claimImport(newImport("file-a", 1000))),
      b.write(() => claimImport(newImport("file-b", 1000))),
      a.write(() => claimImport(newImport("file-c", 1000))),
      b.write(() => claimImport(newImport("file-d", 1000))),
    ]);
    const started = outcomes.filter((o) => o.status === "fulfilled");
    const refused = outcomes.filter((o): o is PromiseRejectedResult => o.status === "rejected");
    expect(started).toHaveLength(1);
    expect(refused.map((r) => (isBridgeError(r.reason) ? r.reason.kind : String(r.reason)))).toEqual([
      "conflict",
      "conflict",
      "conflict",
    ]);
    const [winner] = await running();
    expect(winner).toBeDefined();
    // The refusal names the import that runs, so the operator knows what to wait for or resume.
    expect((refused[0]!.reason as Error).message).toContain(`${winner!.file}.jsonl`);
    expect(await a.read(one<{ n: number }>("SELECT count(*) AS n FROM user_imports"))).toEqual({ n: 1 });
  });

  it("the same file from the other instance is the same import, and once it ends another file starts", async () => {
    const [current] = await running();
    const rerun = await b.write(() => claimImport(newImport(current!.file, 2000)));
    expect(rerun.resumed).toBe(true);
    expect(await running()).toEqual([current]);
    await a.write(failImport(rerun.row.id, "stopped", 3000));
    const next = await b.write(() => claimImport(newImport("file-e", 4000)));
    expect(next).toMatchObject({ resumed: false, row: { state: "running", fileName: "file-e.jsonl" } });
    // And a failed import of another file does not come back while that one runs.
    const refused = await a
      .write(() => claimImport(newImport(current!.file, 5000)))
      .then(
        () => "started",
        (e: unknown) => (isBridgeError(e) ? e.kind : String(e)),
      );
    expect(refused).toBe("conflict");
    expect(await running()).toEqual([{ file: "file-e" }]);
  });
});
