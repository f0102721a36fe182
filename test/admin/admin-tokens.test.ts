/**
 * Admin tokens: hashed at rest, shown once, with an expiry, revocable, last use recorded; the
 * bootstrap operator token (BRIDGE_ADMIN_TOKEN) compared by hash and never stored.
 */
import { createHash } from "node:crypto";
import express from "express";
import { pino } from "pino";
import supertest from "supertest";
import { afterEach, describe, expect, it } from "vitest";
import { adminRouter } from "../../src/http/admin-router.js";
import { many } from "../../src/directory/store-op.js";
import { testDialect } from "../support/test-dialect.js";
import { adminFixture, auditWhere, bootstrapToken, dayMs, type AdminFixture } from "./helpers.js";

let f: AdminFixture;
afterEach(() => f.close());

/** Everything the database holds, as text: a secret must appear nowhere in it. */
const dump = async (fx: AdminFixture): Promise<string> =>
  JSON.stringify(
    await fx.store.read(function* () {
      const tables = yield* many<{ name: string }>(
        testDialect === "postgres"
          ? "SELECT tablename AS name FROM pg_tables WHERE schemaname = current_schema()"
          : "SELECT name FROM sqlite_master WHERE type = 'table'",
      );
      expect(tables.map((t) => t.name)).toContain("admin_tokens");
      const all: unknown[] = [];
      for (const t of tables) all.push(yield* many(`SELECT * FROM "${t.name}"`));
      return all;
    }),
  );

interface TokenRow {
  name: string;
  tokenHash: string;
  hint: string;
  lastUsedAt: number | null;
}
const tokenRows = (fx: AdminFixture, where = "1 = 1", params: string[] = []): Promise<(TokenRow & { id: string })[]> =>
  fx.store.read(
    many<TokenRow & { id: string }>(
      `SELECT id, name, token_hash AS "tokenHash", hint, last_used_at AS "lastUsedAt" FROM admin_tokens WHERE ${where}`,
      params,
    ),
  );

const op = (fx: AdminFixture, token = fx.tokens.operator) => ({
  get: (path: string) => fx.http.get(`/admin/v1${path}`).set("Authorization", `Bearer ${token}`),
  post: (path: string, body: object = {}) =>
    fx.http.post(`/admin/v1${path}`).set("Authorization", `Bearer ${token}`).send(body),
  delete: (path: string) => fx.http.delete(`/admin/v1${path}`).set("Authorization", `Bearer ${token}`),
});

describe("admin tokens", () => {
  it("are shown once, stored only as a SHA-256 hash, and audited without the secret", async () => {
    f = await adminFixture();
    const res = await op(f).post("/admin-tokens", { name: "ci", scope: "operator" }).expect(201);
    const token = res.body.token as string;
    expect(token).toMatch(/^sba_[A-Za-z0-9_-]{43}$/);
    const [row] = await tokenRows(f, "id = ?", [res.body.tokenRecord.id]);
    if (!row) throw new Error("the issued token is not stored");
    expect(row.tokenHash).toBe(createHash("sha256").update(token).digest("hex"));
    expect(row.hint).toBe(token.slice(-4));
    const dumped = await dump(f);
    expect(dumped).toContain(row.tokenHash); // the dump does see the table
    expect(dumped).not.toContain(token);
    const listed = await op(f).get("/admin-tokens").expect(200);
    expect(listed.text).not.toContain(token);
    expect(listed.text).not.toContain(row.tokenHash);
    const audit = await auditWhere(f.store, "target_id = ?", [row.id]);
    expect(audit.map((a) => [a.action, a.actorType, a.requestId])).toEqual([
      ["admin_token.issue", "operator", res.headers["x-request-id"]],
    ]);
    // The new token works.
    await op(f, token).get("/me").expect(200);
  });

  it("expire: 90 days by default, then 401 naming the reason", async () => {
    f = await adminFixture();
    const res = await op(f)
      .post("/admin-tokens", { name: "temp", scope: "org_admin", organization: "alpha" })
      .expect(201);
    expect(Date.parse(res.body.tokenRecord.expiresAt) - f.clock.now).toBe(90 * dayMs);
    await op(f, res.body.token).get(`/organizations/alpha`).expect(200);
    f.clock.now += 90 * dayMs;
    const expired = await op(f, res.body.token).get(`/organizations/alpha`).expect(401);
    expect(expired.body.message).toContain("expired");
    expect(expired.headers["www-authenticate"]).toContain('error="invalid_token"');
    // (The fixture's own operator token has expired too by now: the bootstrap token does not expire.)
    const bad = await op(f, bootstrapToken)
      .post("/admin-tokens", { name: "x", scope: "operator", expiresInDays: 400 })
      .expect(400);
    expect(bad.body.message).toMatch(/^expiresInDays:/);
  });

  it("can be revoked, after which they answer 401; revoking again changes nothing", async () => {
    f = await adminFixture();
    const issued = await op(f)
      .post("/admin-tokens", { name: "soon gone", scope: "org_admin", organization: f.a.id })
      .expect(201);
    await op(f, issued.body.token).get(`/organizations/${f.a.id}/users`).expect(200);
    const revoked = await op(f).delete(`/admin-tokens/${issued.body.tokenRecord.id}`).expect(200);
    expect(revoked.body.token).toMatchObject({ active: false, revokedAt: new Date(f.clock.now).toISOString() });
    const refused = await op(f, issued.body.token).get(`/organizations/${f.a.id}/users`).expect(401);
    expect(refused.body.message).toContain("revoked");
    await op(f).delete(`/admin-tokens/${issued.body.tokenRecord.id}`).expect(200);
    const revokes = (await auditWhere(f.store, "action = ?", ["admin_token.revoke"])).filter(
      (a) => a.targetId === issued.body.tokenRecord.id,
    );
    expect(revokes).toHaveLength(1);
    await op(f).delete("/admin-tokens/no-such-token").expect(404);
  });

  it("record when they were last used, at most once a minute", async () => {
    f = await adminFixture();
    const lastUsed = async () => (await tokenRows(f)).find((t) => t.name === "alpha admin")!.lastUsedAt;
    expect(await lastUsed()).toBeNull();
    const start = f.clock.now;
    await op(f, f.tokens.orgAdminA).get("/me").expect(200);
    expect(await lastUsed()).toBe(start);
    f.clock.now += 30_000;
    await op(f, f.tokens.orgAdminA).get("/me").expect(200);
    expect(await lastUsed()).toBe(start);
    f.clock.now += 31_000;
    await op(f, f.tokens.orgAdminA).get("/me").expect(200);
    expect(await lastUsed()).toBe(start + 61_000);
  });

  it("an org_admin token needs an existing organization; an operator token names none", async () => {
    f = await adminFixture();
    expect((await op(f).post("/admin-tokens", { name: "x", scope: "org_admin" }).expect(400)).body.message).toContain(
      "organization",
    );
    expect(
      (await op(f).post("/admin-tokens", { name: "x", scope: "org_admin", organization: "nope" }).expect(400)).body
        .message,
    ).toMatch(/^organization:/);
    expect(
      (await op(f).post("/admin-tokens", { name: "x", scope: "operator", organization: "alpha" }).expect(400)).body
        .message,
    ).toContain("every organization");
    expect((await op(f).post("/admin-tokens", { name: "x", scope: "root" }).expect(400)).body.message).toMatch(
      /^scope:/,
    );
  });

  it("are accepted from the Authorization header only", async () => {
    f = await adminFixture();
    await f.http.get(`/admin/v1/me?access_token=${f.tokens.operator}`).expect(401);
    await f.http.post("/admin/v1/mappings/validate").send({ access_token: f.tokens.operator, mapping: {} }).expect(401);
    await f.http
      .get("/admin/v1/me")
      .set("Authorization", `Basic ${Buffer.from(`x:${f.tokens.operator}`).toString("base64")}`)
      .expect(401);
  });
});

describe("bootstrap operator token", () => {
  it("acts as an operator under the id 'bootstrap' and is never stored", async () => {
    f = await adminFixture();
    const me = await op(f, bootstrapToken).get("/me").expect(200);
    expect(me.body).toEqual({ tokenId: "bootstrap", scope: "operator", organization: null });
    const created = await op(f, bootstrapToken).post("/organizations", { slug: "delta" }).expect(201);
    const entry = (await auditWhere(f.store, "action = ?", ["organization.create"])).find(
      (a) => a.targetId === created.body.organization.id,
    )!;
    expect([entry.actorType, entry.actorId]).toEqual(["operator", "bootstrap"]);
    expect(await dump(f)).not.toContain(bootstrapToken);
  });

  it("is refused at construction when too short to be a secret, and unset means no bootstrap access", async () => {
    f = await adminFixture();
    const base = {
      store: f.store,
      publicUrl: "https://b.example",
      log: pino({ level: "silent" }),
      signOut: async () => ({ revoked: true }),
    };
    expect(() => adminRouter({ ...base, bootstrapOperatorToken: "short" })).toThrow(/at least 32/);
    const app = express().use("/admin/v1", adminRouter(base));
    await supertest(app).get("/admin/v1/me").set("Authorization", `Bearer ${bootstrapToken}`).expect(401);
  });
});
