/**
 * The user import's store ops give the same outcome on SQLite and PostgreSQL: the import claim, the
 * chunk claims (two runs racing for the same chunk: exactly one wins), progress counters, the links
 * to Auth0 users, the final state and the audit entries, written in the same transaction.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { enqueueJob, Lane } from "../../src/directory/outbox.js";
import type { SqlStore } from "../../src/directory/sql.js";
import { exec, many } from "../../src/directory/store-op.js";
import { importReport } from "../../src/sync/import/service.js";
import {
  claimChunkLink,
  claimChunkSubmit,
  claimImport,
  failChunk,
  failImport,
  finishImport,
  getImport,
  importChunks,
  importProgress,
  insertUserSyncLinks,
  listImports,
  recordChunkLinked,
  recordChunkSubmitted,
  takenUserNames,
  type NewImport,
} from "../../src/sync/import/store.js";
import { openJobCount } from "../../src/sync/job-queries.js";
import { isBridgeError } from "../../src/errors.js";
import { seedOrganization, storeDialects } from "../support/store-dialects.js";

const operator = { type: "operator", id: "adm_1" } as const;

const plan = (n: number) =>
  Array.from({ length: n }, (_, i) => ({
    chunk: i + 1,
    firstRecord: i * 10 + 1,
    lastRecord: i * 10 + 10,
    users: 10,
    bytes: 1000 + i,
  }));

const newImport = (fileSha256: string, extra: Partial<NewImport> = {}): NewImport => ({
  organizationId: "org_1",
  directoryId: "dir_1",
  fileSha256,
  fileName: "users.jsonl",
  format: "jsonl",
  upsert: false,
  connection: "acme-db",
  records: 30,
  chunks: plan(3),
  actor: operator,
  at: 1000,
  ...extra,
});

describe.each(storeDialects())("user import store ops on $name", (dialect) => {
  let store: SqlStore;
  const audit = (targetId: string) =>
    store.read(
      many<{ action: string; after: string }>(
        `SELECT action, after FROM audit_entries WHERE target_id = ? ORDER BY id`,
        [targetId],
      ),
    );

  const refusal = (p: Promise<unknown>): Promise<string> =>
    p.then(
      () => "ok",
      (e: unknown) => (isBridgeError(e) ? e.kind : Promise.reject(e as Error)),
    );
  // One import runs per organization: each test starts from none running.
  beforeEach(async () => {
    await store.write(exec("UPDATE user_imports SET state = 'failed' WHERE state = 'running'"));
  });

  beforeAll(async () => {
    store = await dialect.open();
    await store.write(seedOrganization());
    await store.write(
      exec(`INSERT INTO directories (id, organization_id, name, created_at) VALUES ('dir_1', 'org_1', 'default', 1)`),
    );
  });
  afterAll(() => dialect.cleanup());

  it("claims a new import with its chunks and a start audit entry; the same file again resumes it", async () => {
    const first = await store.write(claimImport(newImport("sha-a")));
    expect(first.resumed).toBe(false);
    expect(first.row).toMatchObject({
      organizationId: "org_1",
      directoryId: "dir_1",
      fileSha256: "sha-a",
      format: "jsonl",
      upsert: false,
      state: "running",
      records: 30,
      chunks: 3,
      lastError: null,
      createdBy: "operator:adm_1",
      createdAt: 1000,
      updatedAt: 1000,
    });
    expect(await store.read(getImport(first.row.id))).toEqual(first.row);
    const chunks = await store.read(importChunks(first.row.id));
    expect(chunks.map((c) => [c.chunk, c.firstRecord, c.lastRecord, c.users, c.bytes, c.state, c.attempts])).toEqual([
      [1, 1, 10, 10, 1000, "pending", 0],
      [2, 11, 20, 10, 1001, "pending", 0],
      [3, 21, 30, 10, 1002, "pending", 0],
    ]);
    expect(chunks[0]).toMatchObject({ jobId: null, inserted: null, errors: null, submittedAt: null });
    expect(await audit(first.row.id)).toEqual([
      {
        action: "users.import.start",
        after: '{"fileName":"users.jsonl","records":30,"chunks":3,"upsert":false}',
      },
    ]);

    // The same file with upsert is another import: refused while the first runs, one at a time.
    expect(await refusal(store.write(claimImport(newImport("sha-a", { upsert: true, at: 1500 }))))).toBe("conflict");
    await store.write(failImport(first.row.id, "stopped", 1600));
    const upserting = await store.write(claimImport(newImport("sha-a", { upsert: true, at: 2000 })));
    expect(upserting).toMatchObject({ resumed: false, row: { upsert: true } });
    await store.write(failImport(upserting.row.id, "stopped", 2500));
    // The same file without it resumes the first.
    const again = await store.write(claimImport(newImport("sha-a", { at: 3000 })));
    expect(again).toMatchObject({ resumed: true, row: { id: first.row.id, state: "running", updatedAt: 3000 } });
    expect((await store.read(listImports("org_1"))).map((r) => r.id)).toEqual([upserting.row.id, first.row.id]);
    expect(await store.read(listImports("org_other"))).toEqual([]);
  });

  it("of two runs that saw the same chunk, exactly one claims it for each POST and records its job", async () => {
    const { row } = await store.write(claimImport(newImport("sha-race")));
    const seen = { state: "pending", attempts: 0 };
    for (const chunk of [1, 2, 3]) {
      const won = await Promise.all([
        store.write(claimChunkSubmit(row.id, chunk, seen)),
        store.write(claimChunkSubmit(row.id, chunk, seen)),
      ]);
      expect(won.filter(Boolean)).toHaveLength(1);
    }
    let chunks = await store.read(importChunks(row.id));
    expect(chunks.map((c) => [c.state, c.attempts])).toEqual([
      ["submitting", 1],
      ["submitting", 1],
      ["submitting", 1],
    ]);
    // A rerun that takes over a chunk after a crash claims the attempt it saw; the first run's job is then refused.
    expect(await store.write(claimChunkSubmit(row.id, 1, { state: "submitting", attempts: 1 }))).toBe(true);
    expect(await store.write(recordChunkSubmitted(row.id, 1, 1, "job_old", 4000))).toBe(false);
    expect(await store.write(recordChunkSubmitted(row.id, 1, 2, "job_1", 4000))).toBe(true);
    expect(await store.write(recordChunkSubmitted(row.id, 2, 1, "job_2", 4100))).toBe(true);
    chunks = await store.read(importChunks(row.id));
    expect(chunks.slice(0, 2).map((c) => [c.state, c.attempts, c.jobId, c.submittedAt])).toEqual([
      ["submitted", 2, "job_1", 4000],
      ["submitted", 1, "job_2", 4100],
    ]);
  });

  it("links a chunk once, fails a chunk once, counts progress and ends the import with one audit entry", async () => {
    const { row } = await store.write(claimImport(newImport("sha-link")));
    for (const [chunk, job] of [
      [1, "job_a"],
      [2, "job_b"],
      [3, "job_c"],
    ] as const) {
      await store.write(claimChunkSubmit(row.id, chunk, { state: "pending", attempts: 0 }));
      await store.write(recordChunkSubmitted(row.id, chunk, 1, job, 5000));
    }
    expect(await store.read(importProgress(row.id))).toEqual({ chunksDone: 0, imported: 0, failed: 0 });

    // Two runs polled job_a: one links the chunk.
    const outcome = { inserted: 8, updated: 1, failed: 1, at: 6000 };
    const linked = await Promise.all([
      store.write(claimChunkLink(row.id, 1, "job_a", outcome)),
      store.write(claimChunkLink(row.id, 1, "job_a", outcome)),
    ]);
    expect(linked.filter(Boolean)).toHaveLength(1);
    expect(await store.write(claimChunkLink(row.id, 2, "job_other", outcome))).toBe(false);
    const failures = [{ record: 3, email: "c@example.com", field: "email", code: "CONFLICT", message: "exists" }];
    await store.write(recordChunkLinked(row.id, 1, JSON.stringify({ failures, recovered: 1, linked: 8 }), 6000));
    expect(await store.write(finishImport(row.id, operator, 6500))).toBe("running");

    const failedJob = { failed: 10, errors: JSON.stringify({ failures: [], recovered: 0, linked: 0 }), at: 7000 };
    const ended = await Promise.all([
      store.write(failChunk(row.id, 2, "job_b", failedJob)),
      store.write(failChunk(row.id, 2, "job_b", failedJob)),
    ]);
    expect(ended.filter(Boolean)).toHaveLength(1);
    expect(await store.read(importProgress(row.id))).toEqual({ chunksDone: 2, imported: 9, failed: 11 });

    // Chunk 3 still waits for its job: the import stays running for the run that holds it.
    expect(await store.write(finishImport(row.id, operator, 7500))).toBe("running");
    await store.write(claimChunkLink(row.id, 3, "job_c", { inserted: 10, updated: 0, failed: 0, at: 8000 }));
    await store.write(recordChunkLinked(row.id, 3, JSON.stringify({ failures: [], recovered: 0, linked: 10 }), 8000));
    expect(await store.read(importProgress(row.id))).toEqual({ chunksDone: 3, imported: 19, failed: 11 });

    const finished = await Promise.all([
      store.write(finishImport(row.id, operator, 9000)),
      store.write(finishImport(row.id, operator, 9000)),
    ]);
    expect(finished).toEqual(["failed", "failed"]);
    expect(await store.read(getImport(row.id))).toMatchObject({
      state: "failed",
      updatedAt: 9000,
      lastError: "1 import job failed as a whole; see their details",
    });
    expect((await audit(row.id)).map((a) => [a.action, a.after])).toEqual([
      ["users.import.start", '{"fileName":"users.jsonl","records":30,"chunks":3,"upsert":false}'],
      ["users.import.finish", '{"state":"failed","chunks":3,"failedChunks":1}'],
    ]);

    const report = await store.read(importReport(row.id));
    expect(report).toMatchObject({
      importId: row.id,
      organization: "acme",
      state: "failed",
      records: 30,
      chunks: 3,
      inserted: 18,
      updated: 1,
      recovered: 1,
      failed: 1,
      linked: 18,
      failures,
    });
    expect(await store.read(importReport(row.id, "org_other"))).toBeUndefined();
    expect(await store.read(importReport("imp_missing"))).toBeUndefined();

    // A rerun of the file takes up the failed import: the chunk whose job failed is pending again.
    const rerun = await store.write(claimImport(newImport("sha-link", { at: 10_000 })));
    expect(rerun).toMatchObject({ resumed: true, row: { id: row.id, state: "running" } });
    expect((await store.read(importChunks(row.id))).map((c) => [c.state, c.jobId])).toEqual([
      ["linked", "job_a"],
      ["pending", null],
      ["linked", "job_c"],
    ]);
  });

  it("a done import is claimed as it is; a failed run records its error", async () => {
    const { row } = await store.write(claimImport(newImport("sha-done", { chunks: plan(1), records: 10 })));
    await store.write(claimChunkSubmit(row.id, 1, { state: "pending", attempts: 0 }));
    await store.write(recordChunkSubmitted(row.id, 1, 1, "job_d", 1100));
    await store.write(claimChunkLink(row.id, 1, "job_d", { inserted: 10, updated: 0, failed: 0, at: 1200 }));
    expect(await store.write(finishImport(row.id, operator, 1300))).toBe("done");
    expect(await store.read(getImport(row.id))).toMatchObject({ state: "done", lastError: null });
    const again = await store.write(claimImport(newImport("sha-done", { at: 5000 })));
    expect(again).toMatchObject({ resumed: true, row: { id: row.id, state: "done", updatedAt: 1300 } });

    const other = await store.write(claimImport(newImport("sha-fail", { at: 6000 })));
    await store.write(failImport(other.row.id, "the file changed", 2000));
    expect(await store.read(getImport(other.row.id))).toMatchObject({
      state: "failed",
      lastError: "the file changed",
      updatedAt: 2000,
    });
    // Ending a run of an import another run already failed changes nothing.
    expect(await store.write(finishImport(other.row.id, operator, 3000))).toBe("failed");
    expect((await audit(other.row.id)).map((a) => a.action)).toEqual(["users.import.start"]);
  });

  it("two uploads of the same file at once make one import", async () => {
    // Connections open first, so that the claims' statements interleave on PostgreSQL.
    await Promise.all([1, 2, 3, 4].map(() => store.read(many("SELECT 1 AS one"))));
    const claims = await Promise.all(
      [1, 2, 3, 4].map((at) => store.write(claimImport(newImport("sha-twice", { at })))),
    );
    expect(claims.map((c) => c.resumed).sort()).toEqual([false, true, true, true]);
    expect(new Set(claims.map((c) => c.row.id)).size).toBe(1);
    const rows = await store.read(
      many<{ n: number }>(`SELECT count(*) AS n FROM user_imports WHERE file_sha256 = 'sha-twice'`),
    );
    expect(rows).toEqual([{ n: 1 }]);
    expect(await store.read(importChunks(claims[0]!.row.id))).toHaveLength(3);
  });

  it("finds the userNames a live user already has, and links migrated users to their Auth0 users", async () => {
    const user = (id: string, lower: string, deletedAt: number | null) =>
      exec(
        `INSERT INTO users (id, directory_id, user_name, user_name_lower, active, resource, version, created_at, modified_at, deleted_at)
         VALUES (?, 'dir_1', ?, ?, TRUE, '{}', 1, 1, 1, ?)`,
        [id, lower.toUpperCase(), lower, deletedAt],
      );
    await store.write(user("u1", "a@example.com", null));
    await store.write(user("u2", "b@example.com", 5));
    await store.write(user("u3", "c@example.com", null));
    expect(
      [...(await store.read(takenUserNames("dir_1", ["a@example.com", "b@example.com", "d@example.com"])))].sort(),
    ).toEqual(["a@example.com"]);
    expect(await store.read(takenUserNames("dir_1", []))).toEqual(new Set());

    const links = Array.from({ length: 450 }, (_, i) => ({
      userId: `m${String(i).padStart(3, "0")}`,
      directoryId: "dir_1",
      organizationId: "org_1",
      auth0UserId: `auth0|${i}`,
      applied: JSON.stringify({ exists: true, n: i }),
      appliedAt: 7000,
    }));
    await store.write(insertUserSyncLinks(links));
    const rows = await store.read(
      many<{ userId: string; auth0UserId: string; applied: string; appliedAt: number }>(
        `SELECT user_id AS "userId", auth0_user_id AS "auth0UserId", applied, applied_at AS "appliedAt"
         FROM user_sync WHERE organization_id = 'org_1' ORDER BY user_id`,
      ),
    );
    expect(rows).toHaveLength(450);
    expect(rows[449]).toEqual({
      userId: "m449",
      auth0UserId: "auth0|449",
      applied: '{"exists":true,"n":449}',
      appliedAt: 7000,
    });
    // A duplicate link fails the whole write: nothing of it stays.
    await expect(
      store.write(insertUserSyncLinks([links[0]!, { ...links[0]!, userId: "fresh" }].reverse())),
    ).rejects.toThrow();
    expect(await store.read(many(`SELECT user_id FROM user_sync WHERE user_id = 'fresh'`))).toEqual([]);
  });

  it("counts the organization's reconcile jobs still to run", async () => {
    expect(await store.read(openJobCount("org_1"))).toBe(0);
    await store.write(enqueueJob({ organizationId: "org_1", kind: "user", subjectId: "u1", lane: Lane.provision }));
    await store.write(enqueueJob({ organizationId: "org_1", kind: "user", subjectId: "u2", lane: Lane.background }));
    await store.write(enqueueJob({ organizationId: "org_2", kind: "user", subjectId: "u9", lane: Lane.provision }));
    await store.write(exec(`UPDATE jobs SET state = 'done' WHERE key = 'user:u2'`));
    expect(await store.read(openJobCount("org_1"))).toBe(1);
  });
});
