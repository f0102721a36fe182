/**
 * Round trips of the hot SCIM requests on PostgreSQL: each is a socket write and read on both sides,
 * which under load costs more than the statement itself (BENCHMARKS.md, "SCIM server as shipped on
 * PostgreSQL"). Counted on node-postgres's Client.query, with the statements prepared by an earlier
 * request as in a running server.
 */
import { randomUUID } from "node:crypto";
import pg from "pg";
import { afterAll, beforeAll, expect, it, vi } from "vitest";
import { createTestBridge, type TestBridge } from "../helpers/scim.js";

let bridge: TestBridge;
beforeAll(async () => {
  bridge = await createTestBridge();
});
afterAll(async () => bridge?.close());

async function roundTrips(request: () => Promise<unknown>): Promise<string[]> {
  const spy = vi.spyOn(pg.Client.prototype, "query");
  try {
    await request();
    return (
      spy.mock.calls
        .map(([q]) => (typeof q === "string" ? q : (q as { text: string }).text))
        // The process's own background writes, not the request's (the SCIM request log's flush).
        .filter((text) => !/scim_request_log|rate_buckets/.test(text))
    );
  } finally {
    spy.mockRestore();
  }
}

it("creates a user in 3 round trips and reads one by id in 1", async () => {
  const post = () => bridge.scim.post("/Users", { userName: `rt-${randomUUID()}@x.test` }).expect(201);
  await post();
  const created = await roundTrips(post);
  // The token's credential epoch; BEGIN with the insert, made unless a migrated user could be this
  // person (its unique index decides the userName); the audit entry, sync job and directory counters
  // with the COMMIT.
  expect(created).toHaveLength(3);
  expect(created[1]).toMatch(/^BEGIN;\s*INSERT INTO users[\s\S]*NOT EXISTS/);
  expect(created[2]).toMatch(/INSERT INTO audit_entries[\s\S]*COMMIT$/);
  const id = ((await post()).body as { id: string }).id;
  await bridge.scim.get(`/Users/${id}`).expect(200);
  const read = await roundTrips(() => bridge.scim.get(`/Users/${id}`).expect(200));
  // The user with the credential epoch its token is cached under, in one statement (no BEGIN or
  // COMMIT: readCommitted; the token from the cache: cachedScimToken).
  expect(read).toHaveLength(1);
  expect(read[0]).toMatch(/credential_epochs[\s\S]*FROM users|credential_epochs[\s\S]*JOIN users/);
});
