/**
 * Round trips of the hot SCIM requests on PostgreSQL: each is a socket write and read on both sides,
 * which under load costs more than the statement itself (BENCHMARKS.md, "SCIM server as shipped on
 * PostgreSQL"). Counted on node-postgres's Client.query, with the statements prepared by an earlier
 * request as in a running server.
 */
import { randomUUID } from "node:crypto";
import pg from "pg";
import { afterAll, beforeAll, expect, it, vi } from "vitest";
import { saveApplied } from "../../src/sync/inputs.js";
import { userScanState } from "../../src/sync/drift.js";
import { reconcileInputs } from "../../src/sync/reconcile-user.js";
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

it("creates a user in 2 round trips and reads one by id in 1", async () => {
  const post = () => bridge.scim.post("/Users", { userName: `rt-${randomUUID()}@x.test` }).expect(201);
  await post();
  const created = await roundTrips(post);
  // BEGIN with the insert, made unless a migrated user could be this person (its unique index
  // decides the userName) and only at the credential epoch its cached token is confirmed against;
  // the audit entry, sync job and directory counters with the COMMIT.
  expect(created).toHaveLength(2);
  expect(created[0]).toMatch(/^BEGIN;\s*WITH e AS[\s\S]*credential_epochs[\s\S]*INSERT INTO users[\s\S]*NOT EXISTS/);
  expect(created[1]).toMatch(/INSERT INTO audit_entries[\s\S]*COMMIT$/);
  const id = ((await post()).body as { id: string }).id;
  await bridge.scim.get(`/Users/${id}`).expect(200);
  const read = await roundTrips(() => bridge.scim.get(`/Users/${id}`).expect(200));
  // The user with the credential epoch its token is cached under, in one statement (no BEGIN or
  // COMMIT: readCommitted; the token from the cache: cachedScimToken).
  expect(read).toHaveLength(1);
  expect(read[0]).toMatch(/credential_epochs[\s\S]*FROM users|credential_epochs[\s\S]*JOIN users/);
});

it("loads what the worker reconciles a user from in 2 round trips", async () => {
  const created = await bridge.scim
    .post("/Users", { userName: `rt-${randomUUID()}@x.test`, emails: [{ value: "rt@x.test" }] })
    .expect(201);
  const id = (created.body as { id: string }).id;
  await bridge.store.read(reconcileInputs(id, bridge.store));
  const load = await roundTrips(() => bridge.store.read(reconcileInputs(id, bridge.store)));
  // BEGIN with the user, its organization (one join) and its connection's type for the default
  // mapping, and its sync state, groups and holds; the COMMIT.
  expect(load).toHaveLength(2);
  expect(load[0]).toMatch(
    /^BEGIN[^;]*;\s*SELECT[\s\S]*bridge_settings[\s\S]*JOIN organizations o[\s\S]*;\n[\s\S]*FROM user_sync[\s\S]*;\n[\s\S]*FROM group_members[\s\S]*;\n[\s\S]*FROM holds/,
  );
  expect(load[1]).toBe("COMMIT");
});

it("records what the worker applied in 1 round trip", async () => {
  const created = await bridge.scim.post("/Users", { userName: `rt-${randomUUID()}@x.test` }).expect(201);
  const loaded = (await bridge.store.read(reconcileInputs((created.body as { id: string }).id, bridge.store)))!;
  const applied = { ...loaded.inputs.applied, auth0UserId: "auth0|rt" };
  await bridge.store.write(saveApplied(loaded.inputs, applied));
  const save = await roundTrips(() => bridge.store.write(saveApplied(loaded.inputs, applied)));
  // BEGIN, the row and COMMIT in one simple query: the write is held (later) until the COMMIT.
  expect(save).toHaveLength(1);
  expect(save[0]).toMatch(/^BEGIN;\s*INSERT INTO user_sync[\s\S]*;\s*COMMIT$/);
});

it("reads what a drift scan judges a user by in 1 round trip", async () => {
  const created = await bridge.scim.post("/Users", { userName: `rt-${randomUUID()}@x.test` }).expect(201);
  const id = (created.body as { id: string }).id;
  const scan = await roundTrips(() => bridge.store.readCommitted(userScanState(id)));
  // Its applied state and whether a job is open or running: one statement, no transaction. A scan
  // sends one for every user of the organization.
  expect(scan).toHaveLength(1);
  expect(scan[0]).toMatch(/^SELECT[\s\S]*EXISTS[\s\S]*FROM jobs[\s\S]*user_sync/);
  expect(await bridge.store.readCommitted(userScanState(id))).toMatchObject({ applied: null, open: true });
});
