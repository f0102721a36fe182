import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { rotateDirectoryTokenOp } from "../../src/admin/onboarding.js";
import { changeBy } from "../../src/directory/write-context.js";
import { hashToken, issueScimToken, listScimTokens, verifyScimToken } from "../../src/directory/tokens.js";
import { createTestBridge, type TestBridge } from "../helpers/scim.js";
import { exec, many, value } from "../../src/directory/store-op.js";

/** SCIM tokens: hashed at rest, shown once, two active at most, expiring, checked on every request. */
let bridge: TestBridge;
const operator = { type: "operator" as const, id: "test" };
beforeAll(async () => {
  bridge = await createTestBridge();
});
afterAll(async () => bridge.close());

describe("SCIM tokens", () => {
  it("stores only the SHA-256 of the token, nowhere the token itself", async () => {
    const { token, record } = (
      await bridge.store.write(rotateDirectoryTokenOp(bridge.directoryId, {}, changeBy(operator)))
    ).token;
    expect(record.tokenHash).toBe(hashToken(token));
    expect(record.hint).toBe(token.slice(-4));
    const everything = JSON.stringify([
      await bridge.store.read(many("SELECT * FROM scim_tokens")),
      await bridge.store.read(many("SELECT * FROM audit_entries")),
    ]);
    expect(everything).not.toContain(token);
    expect(token.length).toBeGreaterThanOrEqual(43); // 256 random bits
  });

  it("keeps at most two active tokens: a rotation revokes the older one", async () => {
    const dir = await bridge.newDirectory();
    const second = (await bridge.store.write(rotateDirectoryTokenOp(dir.directoryId, {}, changeBy(operator)))).token
      .token;
    await dir.scim.get("/Users").expect(200); // the first still works: the rotation overlaps
    await dir.scim.get("/Users").set("Authorization", `Bearer ${second}`).expect(200);
    const third = (await bridge.store.write(rotateDirectoryTokenOp(dir.directoryId, {}, changeBy(operator)))).token
      .token;
    await dir.scim.get("/Users").expect(401);
    await dir.scim.get("/Users").set("Authorization", `Bearer ${second}`).expect(200);
    await dir.scim.get("/Users").set("Authorization", `Bearer ${third}`).expect(200);
    expect((await bridge.store.read(listScimTokens(dir.directoryId))).filter((t) => t.revokedAt === null)).toHaveLength(
      2,
    );
  });

  it("refuses an expired token and records when a token was last used", async () => {
    const dir = await bridge.newDirectory();
    const now = Date.now();
    const expiring = await bridge.store.write(
      issueScimToken(
        { directoryId: dir.directoryId, organizationId: dir.organizationId, expiresAt: now + 60_000 },
        changeBy(operator, { at: now }),
      ),
    );
    expect((await verifyScimToken(bridge.store, expiring.token, now + 59_000))?.directoryId).toBe(dir.directoryId);
    expect(await verifyScimToken(bridge.store, expiring.token, now + 60_000)).toBeUndefined();
    await bridge.store.write(
      exec("UPDATE scim_tokens SET expires_at = ? WHERE id = ?", [Date.now() - 1, expiring.record.id]),
    );
    await dir.scim.get("/Users").set("Authorization", `Bearer ${expiring.token}`).expect(401);

    await dir.scim.get("/Users").expect(200);
    const lastUsedAt = await bridge.store.read(
      value<number | null>("SELECT last_used_at FROM scim_tokens WHERE token_hash = ?", [hashToken(dir.token)]),
    );
    expect(lastUsedAt).toEqual(expect.any(Number));
  });

  it("accepts the token from the Authorization header only, in any scheme case", async () => {
    await bridge.http.get(`${bridge.basePath}/Users`).set("Authorization", `bearer ${bridge.token}`).expect(200);
    await bridge.http.get(`${bridge.basePath}/Users?access_token=${bridge.token}`).expect(401);
    await bridge.http
      .get(`${bridge.basePath}/Users`)
      .set("Authorization", `Basic ${Buffer.from(`x:${bridge.token}`).toString("base64")}`)
      .expect(401);
    expect(await verifyScimToken(bridge.store, "")).toBeUndefined();
    expect(await verifyScimToken(bridge.store, "x".repeat(10_000))).toBeUndefined();
  });
});
