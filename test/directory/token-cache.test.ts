import { execFile } from "node:child_process";
import { join } from "node:path";
import { promisify } from "node:util";
import { eq } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { credentialEpochs, directories, organizations, scimTokens } from "../../db/schema.js";
import { openDatabase, type OpenDatabase } from "../../src/directory/database.js";
import { revokeDirectoryTokenOp, rotateDirectoryTokenOp } from "../../src/admin/onboarding.js";
import { changeBy } from "../../src/directory/write-context.js";
import { hashToken, revokeScimToken } from "../../src/directory/tokens.js";
import { packageRoot } from "../../src/paths.js";
import { createTestBridge, type TestBridge } from "../helpers/scim.js";
import { writeSync } from "../../src/directory/store-op.js";

/**
 * The server remembers tokens it has checked, but any change that ends a token's validity, made by any
 * connection or process (the CLI beside the server, another instance), is refused from the very next
 * request: the cache is only trusted while the credential epoch in the database has not moved.
 */
let bridge: TestBridge;
/** A second connection to the same file: what the CLI or another instance holds. */
let other: OpenDatabase;
const operator = { type: "operator" as const, id: "test" };
beforeAll(async () => {
  bridge = await createTestBridge();
  other = openDatabase(`sqlite:${bridge.sqlite.name}`);
});
afterAll(async () => {
  other.close();
  await bridge.close();
});

const tokenRow = (token: string) =>
  other.db
    .select()
    .from(scimTokens)
    .where(eq(scimTokens.tokenHash, hashToken(token)))
    .get()!;
const tokenId = (token: string): string => tokenRow(token).id;
/** Revokes through the store on the other connection, as an operator tool would. */
const revoke = (dir: { token: string; organizationId: string; directoryId: string }) =>
  writeSync(
    other.db,
    revokeScimToken(
      { organizationId: dir.organizationId, directoryId: dir.directoryId, tokenId: tokenId(dir.token) },
      changeBy({ type: "operator", id: "test" }),
    ),
  );

describe("token cache", () => {
  it("refuses a token on the next request once another connection revoked it", async () => {
    const dir = await bridge.newDirectory();
    await dir.scim.get("/Users").expect(200);
    await dir.scim.get("/Users").expect(200); // answered from the cache
    expect(revoke(dir).revokedAt).not.toBeNull();
    await dir.scim.get("/Users").expect(401);
  });

  it("refuses a token on the next request once another connection made it expire", async () => {
    const dir = await bridge.newDirectory();
    await dir.scim.get("/Users").expect(200);
    other.db
      .update(scimTokens)
      .set({ expiresAt: Date.now() - 1 })
      .where(eq(scimTokens.id, tokenId(dir.token)))
      .run();
    await dir.scim.get("/Users").expect(401);
  });

  it("honours a cached token's expiry by the clock, without any database change", async () => {
    const dir = await bridge.newDirectory();
    other.db
      .update(scimTokens)
      .set({ expiresAt: Date.now() + 1500 })
      .where(eq(scimTokens.id, tokenId(dir.token)))
      .run();
    await dir.scim.get("/Users").expect(200);
    await new Promise((r) => setTimeout(r, 1600));
    await dir.scim.get("/Users").expect(401);
  });

  it("refuses the tokens of a directory or organization deleted by another connection (cascades)", async () => {
    const a = await bridge.newDirectory();
    const b = await bridge.newDirectory();
    await a.scim.get("/Users").expect(200);
    await b.scim.get("/Users").expect(200);
    other.db.delete(directories).where(eq(directories.id, a.directoryId)).run();
    await a.scim.get("/Users").expect(401);
    await b.scim.get("/Users").expect(200);
    other.db.delete(organizations).where(eq(organizations.id, b.organizationId)).run();
    await b.scim.get("/Users").expect(401);
  });

  it("refuses a token on the next request once the service layer revoked it on the server's own connection", async () => {
    const dir = await bridge.newDirectory();
    await dir.scim.get("/Users").expect(200);
    await dir.scim.get("/Users").expect(200); // answered from the cache
    writeSync(
      bridge.db,
      revokeDirectoryTokenOp(dir.organizationId, dir.directoryId, tokenId(dir.token), changeBy(operator)),
    );
    await dir.scim.get("/Users").expect(401);
    await dir.scim.post("/Users", { userName: "after-revoke@x.test" }).expect(401);
  });

  it("refuses a token on the next request once the CLI, in another process, rotated it out", async () => {
    const dir = await bridge.newDirectory();
    // A first rotation leaves two active tokens (the original and this one) ...
    writeSync(other.db, rotateDirectoryTokenOp(dir.directoryId, {}, changeBy(operator)));
    await dir.scim.get("/Users").expect(200);
    // ... a second one, by `scim-bridge token rotate` in a process of its own, revokes the original.
    await promisify(execFile)(
      process.execPath,
      [join(packageRoot, "bin", "scim-bridge.js"), "token", "rotate", dir.directoryId],
      {
        env: { ...process.env, DATABASE_URL: `sqlite:${bridge.sqlite.name}` },
        cwd: packageRoot,
      },
    );
    await dir.scim.get("/Users").expect(401);
  }, 60_000);

  it("does not move the epoch for bookkeeping (last use), so reads keep their cache", async () => {
    const epoch = () =>
      other.db.select().from(credentialEpochs).where(eq(credentialEpochs.name, "scim_tokens")).get()!.epoch;
    const dir = await bridge.newDirectory();
    const before = epoch();
    other.db
      .update(scimTokens)
      .set({ lastUsedAt: Date.now() })
      .where(eq(scimTokens.id, tokenId(dir.token)))
      .run();
    expect(epoch()).toBe(before);
    revoke(dir);
    expect(epoch()).toBe(before + 1);
  });
});
