/**
 * Two instances of the admin API on one database: on SQLite two connections to one file (two
 * processes), on PostgreSQL two pools on one database. Nothing about admin tokens is kept per
 * process, so a token issued or revoked through one is honoured by the other at its very next
 * request.
 */
import express from "express";
import { pino } from "pino";
import supertest from "supertest";
import { afterEach, describe, expect, it } from "vitest";
import type { SqlStore } from "../../src/directory/sql.js";
import { adminRouter } from "../../src/http/admin-router.js";
import { requestId } from "../../src/http/request-id.js";
import { openTestStores } from "../support/test-dialect.js";

const bootstrap = "bootstrap-operator-token-0123456789abcdef";
let opened: Awaited<ReturnType<typeof openTestStores>> | undefined;
afterEach(async () => {
  await opened?.close();
  opened = undefined;
});

function instance(store: SqlStore) {
  const app = express();
  app.use(requestId());
  app.use(
    "/admin/v1",
    adminRouter({
      store,
      publicUrl: "https://bridge.example",
      bootstrapOperatorToken: bootstrap,
      log: pino({ level: "silent" }),
      signOut: async () => ({ revoked: true }),
      rateLimit: false,
    }),
  );
  return supertest(app);
}

describe("admin tokens across instances", () => {
  it("a token issued on one instance works on the other, and is refused there at once after a revoke on the first", async () => {
    opened = await openTestStores(2);
    const one = instance(opened.stores[0]!);
    const two = instance(opened.stores[1]!);
    const issued = await one
      .post("/admin/v1/admin-tokens")
      .set("Authorization", `Bearer ${bootstrap}`)
      .send({ name: "ops", scope: "operator" })
      .expect(201);
    const token = issued.body.token as string;
    const me = await two.get("/admin/v1/me").set("Authorization", `Bearer ${token}`).expect(200);
    expect(me.body).toMatchObject({ tokenId: issued.body.tokenRecord.id, scope: "operator" });

    await one
      .delete(`/admin/v1/admin-tokens/${issued.body.tokenRecord.id}`)
      .set("Authorization", `Bearer ${bootstrap}`)
      .expect(200);
    const refused = await two.get("/admin/v1/me").set("Authorization", `Bearer ${token}`).expect(401);
    expect(refused.body.message).toMatch(/revoked/);
    // The token's last use, recorded by the second instance, is visible to the first.
    const listed = await one.get("/admin/v1/admin-tokens").set("Authorization", `Bearer ${bootstrap}`).expect(200);
    const row = (listed.body.tokens as { id: string; lastUsedAt: string | null }[]).find(
      (t) => t.id === issued.body.tokenRecord.id,
    );
    expect(row?.lastUsedAt).not.toBeNull();
  });
});
