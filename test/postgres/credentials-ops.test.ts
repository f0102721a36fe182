/**
 * Credentials as store ops (SCIM tokens, admin tokens, setup links, console sessions) give the same
 * outcome on SQLite and PostgreSQL, and what one instance does to a credential another instance sees at
 * its next check: revocation and rotation through one store handle end the token for a verifier on a
 * second handle, and concurrent rotations never leave three active tokens.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  getAdminToken,
  issueAdminToken,
  listAdminTokens,
  revokeAdminToken,
  touchAdminToken,
  verifyAdminToken,
  hashAdminToken,
} from "../../src/directory/admin-tokens.js";
import {
  deleteConsoleSession,
  loadConsoleSession,
  startConsoleSession,
  updateConsoleSessionPrincipal,
} from "../../src/directory/console-sessions.js";
import { createDirectory } from "../../src/directory/directories.js";
import { postgresStore, type SqlStore } from "../../src/directory/sql.js";
import {
  createSetupLink,
  listSetupLinks,
  redeemSetupLink,
  revokeSetupLinks,
  setupLinkUsable,
} from "../../src/directory/setup-links.js";
import { exec, many, one, value } from "../../src/directory/store-op.js";
import {
  hashToken,
  isActiveScimToken,
  issueScimToken,
  listOrganizationScimTokens,
  listScimTokens,
  revokeScimToken,
  scimTokenVerifier,
  touchScimToken,
} from "../../src/directory/tokens.js";
import { migratePostgres } from "../../src/directory/postgres.js";
import { changeBy } from "../../src/directory/write-context.js";
import { freshDatabase, postgresUnavailable, withClient, type TestDatabase } from "../support/postgres.js";
import { storeDialects } from "../support/store-dialects.js";

const operator = { type: "operator", id: "test" } as const;
const t0 = 1_800_000_000_000;
const at = (ms: number) => changeBy(operator, { at: t0 + ms });

const insertOrganization = (id: string) =>
  exec(
    `INSERT INTO organizations (id, slug, display_name, user_model, connection, created_at, updated_at)
     VALUES (?, ?, ?, 'isolated', ?, 1, 1)`,
    [id, id, id, `${id}-db`],
  );

const audit = (store: SqlStore, action: string) =>
  store.read(
    many<{ action: string; targetId: string; after: string }>(
      `SELECT action, target_id AS "targetId", after FROM audit_entries WHERE action = ? ORDER BY id`,
      [action],
    ),
  );

const epoch = (store: SqlStore) =>
  store.read(value<number>("SELECT epoch FROM credential_epochs WHERE name = 'scim_tokens'"));

describe.each(storeDialects())("credential store ops on $name", (dialect) => {
  let store: SqlStore;
  /** A second handle on the same database: another instance, or the CLI beside the server. */
  let other: SqlStore;
  let dirA: string;
  let dirB: string;
  beforeAll(async () => {
    [store, other] = await dialect.openTwo();
    await store.write(insertOrganization("org_1"));
    await store.write(insertOrganization("org_2"));
    dirA = (await store.write(createDirectory({ organizationId: "org_1", name: "okta" }, at(0)))).id;
    dirB = (await store.write(createDirectory({ organizationId: "org_2", name: "entra" }, at(0)))).id;
  });
  afterAll(() => dialect.cleanup());

  describe("SCIM tokens", () => {
    it("issues hashed tokens, rotates to at most two active, and audits each step in the same transaction", async () => {
      const first = await store.write(issueScimToken({ directoryId: dirA, organizationId: "org_1" }, at(1000)));
      expect(first.record).toMatchObject({
        directoryId: dirA,
        tokenHash: hashToken(first.token),
        hint: first.token.slice(-4),
        createdAt: t0 + 1000,
        expiresAt: null,
        revokedAt: null,
        lastUsedAt: null,
      });
      expect(first.revoked).toEqual([]);
      const second = await store.write(issueScimToken({ directoryId: dirA, expiresAt: t0 + 99_000 }, at(2000)));
      const third = await store.write(issueScimToken({ directoryId: dirA }, at(3000)));
      expect(third.revoked).toEqual([{ ...first.record, revokedAt: t0 + 3000 }]);
      const listed = await store.read(listScimTokens(dirA));
      expect(listed.map((t) => t.id)).toEqual([first.record.id, second.record.id, third.record.id]);
      expect(listed.filter((t) => isActiveScimToken(t, t0 + 3000)).map((t) => t.id)).toEqual([
        second.record.id,
        third.record.id,
      ]);
      expect(listed[1]!.expiresAt).toBe(t0 + 99_000);
      expect((await store.read(listOrganizationScimTokens("org_1"))).map((t) => t.id)).toEqual(listed.map((t) => t.id));
      expect(await store.read(listOrganizationScimTokens("org_2"))).toEqual([]);
      const revocations = await audit(store, "token.revoke");
      expect(revocations).toEqual([
        { action: "token.revoke", targetId: first.record.id, after: expect.stringContaining('"reason":"rotation"') },
      ]);
      expect((await audit(store, "token.issue")).map((e) => e.targetId)).toEqual([
        first.record.id,
        second.record.id,
        third.record.id,
      ]);
      const everything =
        JSON.stringify(await store.read(many("SELECT * FROM scim_tokens"))) +
        JSON.stringify(await store.read(many("SELECT * FROM audit_entries")));
      expect(everything).not.toContain(first.token);
    });

    it("refuses a further token while two are active, and writes nothing when it refuses", async () => {
      const before = await store.read(listScimTokens(dirA));
      const auditBefore = await store.read(one<{ n: number }>("SELECT count(*) AS n FROM audit_entries"));
      await expect(store.write(issueScimToken({ directoryId: dirA }, at(4000), "refuse"))).rejects.toMatchObject({
        kind: "conflict",
      });
      expect(await store.read(listScimTokens(dirA))).toEqual(before);
      expect(await store.read(one<{ n: number }>("SELECT count(*) AS n FROM audit_entries"))).toEqual(auditBefore);
    });

    it("answers 404 for another tenant's directory or a missing one, 400 for an expiry in the past", async () => {
      await expect(
        store.write(issueScimToken({ directoryId: dirB, organizationId: "org_1" }, at(5000))),
      ).rejects.toMatchObject({ kind: "notFound" });
      await expect(store.write(issueScimToken({ directoryId: "dir_missing" }, at(5000)))).rejects.toMatchObject({
        kind: "notFound",
      });
      await expect(
        store.write(issueScimToken({ directoryId: dirB, expiresAt: t0 + 5000 }, at(5000))),
      ).rejects.toMatchObject({ kind: "invalidValue" });
      expect(await store.read(listScimTokens(dirB))).toEqual([]);
    });

    it("revokes once (idempotent, one audit entry); another directory's token id does not exist", async () => {
      const issued = await store.write(issueScimToken({ directoryId: dirB }, at(6000)));
      const target = { organizationId: "org_2", directoryId: dirB, tokenId: issued.record.id };
      const revoked = await store.write(revokeScimToken(target, at(7000)));
      expect(revoked).toEqual({ ...issued.record, revokedAt: t0 + 7000 });
      expect(await store.write(revokeScimToken(target, at(8000)))).toEqual(revoked);
      expect((await audit(store, "token.revoke")).filter((e) => e.targetId === issued.record.id)).toHaveLength(1);
      await expect(store.write(revokeScimToken({ ...target, directoryId: dirA }, at(8000)))).rejects.toMatchObject({
        kind: "notFound",
      });
    });

    it("records the last use without moving the credential epoch", async () => {
      const issued = await store.write(issueScimToken({ directoryId: dirB }, at(9000)));
      const before = await epoch(store);
      await store.write(touchScimToken(issued.record.id, t0 + 9500));
      expect(await epoch(store)).toBe(before);
      expect((await store.read(listScimTokens(dirB))).find((t) => t.id === issued.record.id)?.lastUsedAt).toBe(
        t0 + 9500,
      );
    });

    it("a verifier on another handle refuses a token at its next check once this handle revoked or rotated it out", async () => {
      await store.write(
        exec(
          "INSERT INTO organizations (id, slug, display_name, user_model, connection, created_at, updated_at) VALUES ('org_v', 'org_v', 'V', 'isolated', 'v-db', 1, 1)",
        ),
      );
      const dir = (await store.write(createDirectory({ organizationId: "org_v" }, at(0)))).id;
      const verify = scimTokenVerifier();
      const now = t0 + 10_000;
      const a = await store.write(issueScimToken({ directoryId: dir }, at(10_000)));
      const principal = { tokenId: a.record.id, directoryId: dir, organizationId: "org_v" };
      expect(await other.read(verify(a.token, now))).toEqual(principal);
      expect(await other.read(verify(a.token, now))).toEqual(principal); // from the cache
      expect(await other.read(verify("scimb_unknown", now))).toBeUndefined();
      expect(await other.read(verify("", now))).toBeUndefined();

      // Rotation: the second token overlaps, the third revokes the first.
      const b = await store.write(issueScimToken({ directoryId: dir }, at(11_000)));
      expect(await other.read(verify(a.token, now))).toEqual(principal);
      expect(await other.read(verify(b.token, now))).toMatchObject({ tokenId: b.record.id });
      const c = await store.write(issueScimToken({ directoryId: dir }, at(12_000)));
      expect(await other.read(verify(a.token, now))).toBeUndefined();
      expect(await other.read(verify(b.token, now))).toMatchObject({ tokenId: b.record.id });

      // Revocation through this handle.
      await store.write(
        revokeScimToken({ organizationId: "org_v", directoryId: dir, tokenId: b.record.id }, at(13_000)),
      );
      expect(await other.read(verify(b.token, now))).toBeUndefined();
      expect(await other.read(verify(c.token, now))).toMatchObject({ tokenId: c.record.id });

      // An expiry set on this handle, then the clock: both end a cached token.
      await store.write(exec("UPDATE scim_tokens SET expires_at = ? WHERE id = ?", [now + 1000, c.record.id]));
      expect(await other.read(verify(c.token, now))).toMatchObject({ tokenId: c.record.id });
      expect(await other.read(verify(c.token, now + 1000))).toBeUndefined();

      // Deleting the directory (cascade) ends its tokens too.
      const d = await store.write(issueScimToken({ directoryId: dir }, at(14_000)));
      expect(await other.read(verify(d.token, now))).toMatchObject({ tokenId: d.record.id });
      await store.write(exec("DELETE FROM directories WHERE id = ?", [dir]));
      expect(await other.read(verify(d.token, now))).toBeUndefined();
    });

    it("concurrent rotations of one directory leave exactly two active tokens", async () => {
      const dir = (await store.write(createDirectory({ organizationId: "org_1", name: "race" }, at(0)))).id;
      const rotations = await Promise.all(
        Array.from({ length: 6 }, (_, i) =>
          (i % 2 === 0 ? store : other).write(issueScimToken({ directoryId: dir }, at(20_000 + i))),
        ),
      );
      const active = (await store.read(listScimTokens(dir))).filter((t) => t.revokedAt === null);
      expect(active).toHaveLength(2);
      expect(rotations.flatMap((r) => r.revoked)).toHaveLength(4);
      // Every revocation was made and audited once, whichever instance made it.
      const revokedIds = rotations.flatMap((r) => r.revoked.map((t) => t.id));
      expect(new Set(revokedIds).size).toBe(4);
      const audited = (await audit(store, "token.revoke")).filter((e) => revokedIds.includes(e.targetId));
      expect(audited).toHaveLength(4);
    });

    it("concurrent issues that refuse when full never pass two active tokens", async () => {
      const dir = (await store.write(createDirectory({ organizationId: "org_1", name: "race-refuse" }, at(0)))).id;
      const outcomes = await Promise.allSettled(
        Array.from({ length: 4 }, (_, i) =>
          (i % 2 === 0 ? store : other).write(issueScimToken({ directoryId: dir }, at(30_000 + i), "refuse")),
        ),
      );
      expect(outcomes.filter((o) => o.status === "fulfilled")).toHaveLength(2);
      for (const o of outcomes.filter((o) => o.status === "rejected"))
        expect((o as PromiseRejectedResult).reason).toMatchObject({ kind: "conflict" });
      expect((await store.read(listScimTokens(dir))).filter((t) => t.revokedAt === null)).toHaveLength(2);
    });
  });

  describe("admin tokens", () => {
    it("issues, lists newest first, gets, verifies, touches and revokes once", async () => {
      const op = await store.write(issueAdminToken({ scope: "operator", name: " ops " }, at(1000)));
      const org = await store.write(
        issueAdminToken({ scope: "org_admin", organizationId: "org_1", name: "acme", expiresInDays: 1 }, at(2000)),
      );
      expect(op.record).toMatchObject({
        name: "ops",
        scope: "operator",
        organizationId: null,
        tokenHash: hashAdminToken(op.token),
        createdAt: t0 + 1000,
        expiresAt: t0 + 1000 + 90 * 86_400_000,
        revokedAt: null,
      });
      expect((await store.read(listAdminTokens())).map((t) => t.id)).toEqual([org.record.id, op.record.id]);
      expect((await store.read(listAdminTokens("org_1"))).map((t) => t.id)).toEqual([org.record.id]);
      expect(await store.read(getAdminToken(op.record.id))).toEqual(op.record);
      expect(await store.read(getAdminToken("missing"))).toBeUndefined();

      expect(await other.read(verifyAdminToken(org.token, { now: t0 + 3000 }))).toEqual({
        ok: true,
        principal: { tokenId: org.record.id, scope: "org_admin", organizationId: "org_1" },
      });
      expect(await other.read(verifyAdminToken(org.token, { now: t0 + 2000 + 86_400_000 }))).toEqual({
        ok: false,
        reason: "expired",
      });
      expect(await other.read(verifyAdminToken("sba_nope"))).toEqual({ ok: false, reason: "unknown" });
      const bootstrap = "b".repeat(40);
      expect(await other.read(verifyAdminToken(bootstrap, { bootstrapHash: hashAdminToken(bootstrap) }))).toEqual({
        ok: true,
        principal: { tokenId: "bootstrap", scope: "operator", organizationId: null },
      });

      await store.write(touchAdminToken(op.record.id, t0 + 4000));
      const revoked = await store.write(revokeAdminToken(op.record.id, at(5000)));
      expect(revoked).toEqual({ ...op.record, lastUsedAt: t0 + 4000, revokedAt: t0 + 5000 });
      expect(await store.write(revokeAdminToken(op.record.id, at(6000)))).toEqual(revoked);
      expect(await other.read(verifyAdminToken(op.token, { now: t0 + 7000 }))).toEqual({
        ok: false,
        reason: "revoked",
      });
      expect((await audit(store, "admin_token.revoke")).map((e) => e.targetId)).toEqual([op.record.id]);
      expect((await audit(store, "admin_token.issue")).map((e) => e.targetId)).toEqual([op.record.id, org.record.id]);
      await expect(store.write(revokeAdminToken("missing", at(6000)))).rejects.toMatchObject({ kind: "notFound" });
      await expect(store.write(issueAdminToken({ scope: "org_admin", name: "x" }, at(6000)))).rejects.toMatchObject({
        kind: "invalidValue",
      });
    });
  });

  describe("setup links", () => {
    it("creates, lists, opens (audited, last use recorded) and refuses unknown, expired and revoked links", async () => {
      const first = await store.write(createSetupLink({ organizationId: "org_2", lifetimeMs: 60_000 }, at(1000)));
      const second = await store.write(createSetupLink({ organizationId: "org_2", lifetimeMs: 60_000 }, at(2000)));
      expect(first.record).toMatchObject({
        organizationId: "org_2",
        createdBy: "operator:test",
        createdAt: t0 + 1000,
        expiresAt: t0 + 61_000,
        revokedAt: null,
        lastUsedAt: null,
      });
      expect((await store.read(listSetupLinks("org_2"))).map((l) => l.id)).toEqual([second.record.id, first.record.id]);

      const opened = await other.write(redeemSetupLink(first.token, { ip: "10.0.0.1", userAgent: "ua" }, t0 + 5000));
      expect(opened).toEqual({ ok: true, link: first.record });
      // Opened again later: a link works until it expires or is revoked.
      expect((await other.write(redeemSetupLink(first.token, {}, t0 + 6000))).ok).toBe(true);
      expect((await store.read(listSetupLinks("org_2"))).find((l) => l.id === first.record.id)?.lastUsedAt).toBe(
        t0 + 6000,
      );
      expect(await store.read(setupLinkUsable(first.record.id, t0 + 6000))).toBe(true);
      expect(await store.read(setupLinkUsable(first.record.id, t0 + 61_000))).toBe(false);
      expect(await other.write(redeemSetupLink(first.token, {}, t0 + 61_000))).toEqual({
        ok: false,
        reason: "expired",
      });
      expect(await other.write(redeemSetupLink("sbs_nope", {}, t0))).toEqual({ ok: false, reason: "unknown" });
      expect(await other.write(redeemSetupLink("", {}, t0))).toEqual({ ok: false, reason: "unknown" });
      const opens = await audit(store, "setup_link.open");
      expect(opens.map((e) => [e.targetId, JSON.parse(e.after)])).toEqual([
        [first.record.id, { ip: "10.0.0.1", userAgent: "ua" }],
        [first.record.id, { ip: null, userAgent: "" }],
      ]);

      await expect(store.write(revokeSetupLinks("org_1", first.record.id, at(7000)))).rejects.toMatchObject({
        kind: "notFound",
      });
      expect(await store.write(revokeSetupLinks("org_2", first.record.id, at(7000)))).toEqual([first.record.id]);
      expect(await store.write(revokeSetupLinks("org_2", first.record.id, at(7500)))).toEqual([]);
      expect(await other.write(redeemSetupLink(first.token, {}, t0 + 8000))).toEqual({ ok: false, reason: "revoked" });
      const third = await store.write(createSetupLink({ organizationId: "org_2", lifetimeMs: 60_000 }, at(8000)));
      expect(await store.write(revokeSetupLinks("org_2", undefined, at(9000)))).toEqual(
        [second.record.id, third.record.id].sort(),
      );
      expect((await audit(store, "setup_link.revoke")).map((e) => e.targetId)).toEqual([
        first.record.id,
        ...[second.record.id, third.record.id].sort(),
      ]);
    });
  });

  describe("console sessions", () => {
    const session = (idHash: string, createdAt: number, expiresAt: number) => ({
      idHash,
      principal: JSON.stringify({ kind: "anonymous" }),
      csrfToken: `csrf-${idHash}`,
      createdAt,
      lastSeenAt: createdAt,
      expiresAt,
    });

    it("starts, loads, touches at most once a minute, replaces, and ends sessions", async () => {
      await store.write(startConsoleSession(session("old", t0, t0 + 1000)));
      await store.write(startConsoleSession(session("s1", t0 + 2000, t0 + 3_600_000)));
      // The sign-in swept the expired session.
      expect(await store.read(loadConsoleSession("old", t0 + 500, 600_000))).toBeUndefined();
      expect(await other.write(loadConsoleSession("s1", t0 + 2500, 600_000))).toEqual(
        session("s1", t0 + 2000, t0 + 3_600_000),
      );
      await other.write(loadConsoleSession("s1", t0 + 70_000, 600_000));
      expect(await store.read(loadConsoleSession("s1", t0 + 70_000, 600_000))).toMatchObject({
        lastSeenAt: t0 + 70_000,
      });
      await store.write(updateConsoleSessionPrincipal("s1", '{"kind":"operator"}'));
      expect(await store.read(loadConsoleSession("s1", t0 + 70_000, 600_000))).toMatchObject({
        principal: '{"kind":"operator"}',
      });
      // Idle past the timeout: deleted on load.
      expect(await other.write(loadConsoleSession("s1", t0 + 70_000 + 600_000, 600_000))).toBeUndefined();
      expect(await store.read(many("SELECT id_hash FROM console_sessions WHERE id_hash = 's1'"))).toEqual([]);

      // A new sign-in ends the previous session (no fixation).
      await store.write(startConsoleSession(session("s2", t0 + 10_000, t0 + 3_600_000)));
      await store.write(startConsoleSession(session("s3", t0 + 11_000, t0 + 3_600_000), "s2"));
      expect(await store.read(loadConsoleSession("s2", t0 + 12_000, 600_000))).toBeUndefined();
      await store.write(deleteConsoleSession("s3"));
      expect(await store.read(loadConsoleSession("s3", t0 + 12_000, 600_000))).toBeUndefined();
    });
  });
});

/**
 * Opening a setup link while another instance's revocation of it is still uncommitted: the opening
 * waits for the row and is refused once the revocation commits (PostgreSQL; SQLite's writes never
 * interleave).
 */
describe.skipIf(postgresUnavailable !== "")("setup link opening racing a revocation on PostgreSQL", () => {
  let database: TestDatabase;
  let store: SqlStore;
  beforeAll(async () => {
    database = await freshDatabase();
    await migratePostgres(database.url);
    store = postgresStore(database.url, { poolSize: 2 });
  });
  afterAll(async () => {
    await store?.close();
    await database?.drop();
  });

  it("refuses the opening once the revocation commits, and audits no opening", async () => {
    await store.write(insertOrganization("org_1"));
    const link = await store.write(createSetupLink({ organizationId: "org_1", lifetimeMs: 3_600_000 }, at(0)));
    await withClient(database.url, async (client) => {
      await client.query("BEGIN");
      await client.query("UPDATE setup_links SET revoked_at = $1 WHERE id = $2", [t0 + 1000, link.record.id]);
      const opening = store.write(redeemSetupLink(link.token, {}, t0 + 2000));
      let settled = false;
      opening.then(
        () => (settled = true),
        () => (settled = true),
      );
      // The opening's read sees the link unrevoked (the revocation is uncommitted); its update then
      // waits for the row: wait until the server shows it waiting, so the conditional update is what refuses.
      await withClient(database.url, async (watcher) => {
        while (!settled) {
          const { rows } = await watcher.query<{ n: string }>(
            "SELECT count(*) AS n FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'",
          );
          if (Number(rows[0]!.n) > 0) break;
          await new Promise((resolve) => setTimeout(resolve, 10));
        }
      });
      await client.query("COMMIT");
      expect(await opening).toEqual({ ok: false, reason: "revoked" });
    });
    expect(await audit(store, "setup_link.open")).toEqual([]);
  });
});
