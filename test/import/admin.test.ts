/**
 * The admin API's user import: an operator uploads the file; a file with problems answers 400 with
 * every problem and sends nothing; a dry run plans; a good file imports in the background and its
 * progress is readable by the organization's admin, who may not start one.
 */
import express from "express";
import { pino } from "pino";
import supertest from "supertest";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { migratedUsers } from "../../db/schema.js";
import { adminRouter } from "../../src/http/admin-router.js";
import { sqliteStore } from "../../src/directory/sql.js";
import { issueAdminToken } from "../../src/directory/admin-tokens.js";
import { changeBy } from "../../src/directory/write-context.js";
import { parseQueryString } from "../../src/http/query.js";
import { requestId } from "../../src/http/request-id.js";
import { createTestBridge, type TestBridge } from "../helpers/scim.js";
import { applyDatabaseMapping, startSyncHarness, type SyncHarness } from "../helpers/sync-harness.js";
import { importDeps, jsonl, operator } from "./helpers.js";
import { writeSync } from "../../src/directory/store-op.js";
import { claimImport } from "../../src/sync/import/store.js";

const operatorToken = "bootstrap-operator-token-0123456789abcdef";
let bridge: TestBridge;
let sync: SyncHarness;
let http: ReturnType<typeof supertest>;
let orgAdminToken: string;

beforeEach(async () => {
  bridge = await createTestBridge();
  sync = await startSyncHarness(bridge.store, { start: false });
  await applyDatabaseMapping(bridge.store, bridge.organizationId);
  const deps = importDeps(bridge.db, sync);
  const app = express();
  app.set("query parser", parseQueryString);
  app.use(requestId());
  app.use(
    "/admin/v1",
    adminRouter({
      store: sqliteStore(bridge.sqlite),
      publicUrl: "https://bridge.example",
      bootstrapOperatorToken: operatorToken,
      log: pino({ level: "silent" }),
      signOut: async () => ({ revoked: true }),
      rateLimit: false,
      userImports: { api: deps.api, gateway: deps.gateway },
    }),
  );
  http = supertest(app);
  orgAdminToken = writeSync(
    bridge.db,
    issueAdminToken(
      { scope: "org_admin", organizationId: bridge.organizationId, name: "acme admin" },
      changeBy(operator),
    ),
  ).token;
  sync.emulator.clearCalls();
});
afterEach(async () => {
  await sync.close();
  await bridge.close();
});

const md5 = { algorithm: "md5", hash: { value: "5d41402abc4b2a76b9719d911017c592", encoding: "hex" } };
const upload = (query: string, body: string, token = operatorToken) =>
  http
    .post(`/admin/v1/organizations/${bridge.organizationId}/user-imports?${query}`)
    .set("authorization", `Bearer ${token}`)
    .set("content-type", "application/octet-stream")
    .send(Buffer.from(body));

describe("POST /organizations/:org/user-imports", () => {
  it("answers 400 with every problem by record and field for a bad file, and sends nothing", async () => {
    const res = await upload(
      "format=jsonl",
      jsonl([
        { email: "ok@example.com" },
        { email: "bad" },
        { email: "x@example.com", custom_password_hash: { algorithm: "rot13", hash: { value: "x" } } },
      ]),
    ).expect(400);
    expect(res.body.report.problems).toEqual([
      { record: 2, field: "email", message: "is not a valid email address" },
      {
        record: 3,
        field: "custom_password_hash.algorithm",
        message: expect.stringMatching(/^unknown algorithm "rot13"/),
      },
    ]);
    expect(JSON.stringify(res.body)).not.toContain("5d41402abc4b2a76b9719d911017c592");
    expect(sync.emulator.calls()).toEqual([]);
  });

  it("answers 409 naming the import that runs while another file's import is running, and sends nothing", async () => {
    const running = writeSync(
      bridge.db,
      claimImport({
        organizationId: bridge.organizationId,
        directoryId: bridge.directoryId,
        fileSha256: "another-file",
        fileName: "first.jsonl",
        format: "jsonl",
        upsert: false,
        connection: "acme-db",
        records: 1,
        chunks: [{ chunk: 1, firstRecord: 1, lastRecord: 1, users: 1, bytes: 100 }],
        actor: operator,
        at: Date.now(),
      }),
    );
    const res = await upload("format=jsonl", jsonl([{ email: "a@example.com", custom_password_hash: md5 }])).expect(
      409,
    );
    expect(res.body.message).toContain(running.row.id);
    expect(res.body.message).toContain("first.jsonl");
    expect(sync.emulator.calls()).toEqual([]);
  });

  it("plans a dry run without sending", async () => {
    const res = await upload(
      "format=json&dryRun=true",
      JSON.stringify([{ email: "a@example.com", custom_password_hash: md5 }]),
    ).expect(200);
    expect(res.body).toMatchObject({ state: "planned", records: 1, chunks: 1 });
    expect(sync.emulator.calls()).toEqual([]);
  });

  it("imports in the background; the organization's admin reads the progress but cannot start an import", async () => {
    const body = jsonl(
      Array.from({ length: 30 }, (_, i) => ({ email: `u${i}@example.com`, custom_password_hash: md5 })),
    );
    await upload("format=jsonl", body, orgAdminToken).expect(403);
    const res = await upload("format=jsonl", body).expect(202);
    expect(res.body.importId).toBeTruthy();
    let report: { state: string; inserted: number; linked: number; failures: unknown[] } | undefined;
    for (let i = 0; i < 200; i++) {
      report = (
        await http
          .get(res.body.location.replace("/admin/v1", "/admin/v1"))
          .set("authorization", `Bearer ${orgAdminToken}`)
          .expect(200)
      ).body;
      if (report!.state !== "running") break;
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(report).toMatchObject({ state: "done", inserted: 30, linked: 30, failures: [] });
    expect(bridge.db.select().from(migratedUsers).all()).toHaveLength(30);
    const list = await http
      .get(`/admin/v1/organizations/${bridge.organizationId}/user-imports`)
      .set("authorization", `Bearer ${orgAdminToken}`)
      .expect(200);
    expect(list.body.imports).toHaveLength(1);
    // The upload was spooled only while it was needed.
    const { readdirSync } = await import("node:fs");
    const { tmpdir } = await import("node:os");
    expect(readdirSync(`${tmpdir()}/scim-bridge-imports`).filter((n) => n.startsWith(`${process.pid}-`))).toEqual([]);
  });
});
