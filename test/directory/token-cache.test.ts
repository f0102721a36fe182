import { execFile } from "node:child_process";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { revokeDirectoryTokenOp, rotateDirectoryTokenOp } from "../../src/admin/onboarding.js";
import { openStore } from "../../src/cli/database.js";
import type { SqlStore } from "../../src/directory/sql.js";
import { exec, value } from "../../src/directory/store-op.js";
import { changeBy } from "../../src/directory/write-context.js";
import { hashToken, revokeScimToken } from "../../src/directory/tokens.js";
import { packageRoot } from "../../src/paths.js";
import { createTestBridge, type TestBridge } from "../helpers/scim.js";

/**
 * The server remembers tokens it has checked, but any change that ends a token's validity, made by any
 * connection or process (the CLI beside the server, another instance), is refused from the very next
 * request: the cache is only trusted while the credential epoch in the database has not moved.
 */
let bridge: TestBridge;
/** A second store on the same database: what the CLI or another instance holds. */
let other: SqlStore;
const operator = { type: "operator" as const, id: "test" };
beforeAll(async () => {
  bridge = await createTestBridge();
  other = await openStore(bridge.databaseUrl);
});
afterAll(async () => {
  await other.close();
  await bridge.close();
});

const tokenId = async (token: string): Promise<string> =>
  (await other.read(value<string>("SELECT id FROM scim_tokens WHERE token_hash = ?", [hashToken(token)])))!;
/** Sets a column of the token's row on the other store. */
const setToken = async (token: string, column: "expires_at" | "last_used_at", to: number) =>
  other.write(exec(`UPDATE scim_tokens SET ${column} = ? WHERE id = ?`, [to, await tokenId(token)]));
/** Revokes through the store on the other connection, as an operator tool would. */
const revoke = async (dir: { token: string; organizationId: string; directoryId: string }) =>
  other.write(
    revokeScimToken(
      { organizationId: dir.organizationId, directoryId: dir.directoryId, tokenId: await tokenId(dir.token) },
      changeBy({ type: "operator", id: "test" }),
    ),
  );

describe("token cache", () => {
  it("refuses a token on the next request once another connection revoked it", async () => {
    const dir = await bridge.newDirectory();
    await dir.scim.get("/Users").expect(200);
    await dir.scim.get("/Users").expect(200); // answered from the cache
    expect((await revoke(dir)).revokedAt).not.toBeNull();
    await dir.scim.get("/Users").expect(401);
  });

  it("refuses a token on the next request once another connection made it expire", async () => {
    const dir = await bridge.newDirectory();
    await dir.scim.get("/Users").expect(200);
    await setToken(dir.token, "expires_at", Date.now() - 1);
    await dir.scim.get("/Users").expect(401);
  });

  it("honours a cached token's expiry by the clock, without any database change", async () => {
    const dir = await bridge.newDirectory();
    await setToken(dir.token, "expires_at", Date.now() + 1500);
    await dir.scim.get("/Users").expect(200);
    await new Promise((r) => setTimeout(r, 1600));
    await dir.scim.get("/Users").expect(401);
  });

  it("refuses the tokens of a directory or organization deleted by another connection (cascades)", async () => {
    const a = await bridge.newDirectory();
    const b = await bridge.newDirectory();
    await a.scim.get("/Users").expect(200);
    await b.scim.get("/Users").expect(200);
    await other.write(exec("DELETE FROM directories WHERE id = ?", [a.directoryId]));
    await a.scim.get("/Users").expect(401);
    await b.scim.get("/Users").expect(200);
    await other.write(exec("DELETE FROM organizations WHERE id = ?", [b.organizationId]));
    await b.scim.get("/Users").expect(401);
  });

  it("refuses a token on the next request once the service layer revoked it on the server's own connection", async () => {
    const dir = await bridge.newDirectory();
    await dir.scim.get("/Users").expect(200);
    await dir.scim.get("/Users").expect(200); // answered from the cache
    const id = await tokenId(dir.token);
    await bridge.store.write(revokeDirectoryTokenOp(dir.organizationId, dir.directoryId, id, changeBy(operator)));
    await dir.scim.get("/Users").expect(401);
    await dir.scim.post("/Users", { userName: "after-revoke@x.test" }).expect(401);
  });

  it("refuses a token on the next request once the CLI, in another process, rotated it out", async () => {
    const dir = await bridge.newDirectory();
    // A first rotation leaves two active tokens (the original and this one) ...
    await other.write(rotateDirectoryTokenOp(dir.directoryId, {}, changeBy(operator)));
    await dir.scim.get("/Users").expect(200);
    // ... a second one, by `scim-bridge token rotate` in a process of its own, revokes the original.
    await promisify(execFile)(
      process.execPath,
      [join(packageRoot, "bin", "scim-bridge.js"), "token", "rotate", dir.directoryId],
      {
        env: { ...process.env, DATABASE_URL: bridge.databaseUrl },
        cwd: packageRoot,
      },
    );
    await dir.scim.get("/Users").expect(401);
  }, 60_000);

  it("does not move the epoch for bookkeeping (last use), so reads keep their cache", async () => {
    const epoch = async () =>
      (await other.read(value<number>("SELECT epoch FROM credential_epochs WHERE name = 'scim_tokens'")))!;
    const dir = await bridge.newDirectory();
    const before = await epoch();
    await setToken(dir.token, "last_used_at", Date.now());
    expect(await epoch()).toBe(before);
    await revoke(dir);
    expect(await epoch()).toBe(before + 1);
  });
});
