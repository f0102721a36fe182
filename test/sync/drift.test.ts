/**
 * Drift: someone changes Auth0 behind the bridge's back. scanDrift reports each difference without
 * touching anything; with repair (or a "drift" job) the engine puts back the desired state, and
 * leaves alone what the bridge does not own (other roles, other app_metadata keys, other members).
 */
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { saveMappingVersion } from "../../src/directory/mappings.js";
import { parseMapping } from "../../src/mapping/index.js";
import { RECENT_WRITE_MS, scanDrift } from "../../src/sync/drift.js";
import { enqueueJob, Lane } from "../../src/directory/outbox.js";
import { createTestBridge, type TestBridge } from "../helpers/scim.js";
import { statementsSent } from "../helpers/statement-reads.js";
import { startSyncHarness, type SyncHarness } from "../helpers/sync-harness.js";
import { slugOf, sqlExec, sqlRows, sqlValue } from "../helpers/sync-store.js";

const CONNECTION = "Username-Password-Authentication";
const ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
const operator = { type: "operator" as const, id: "test" };
const BG = Lane.background;

let bridge: TestBridge;
let sync: SyncHarness;
let organizationSlug: string;

beforeEach(async () => {
  bridge = await createTestBridge();
  organizationSlug = await slugOf(bridge.store, bridge.organizationId);
  await bridge.store.write(
    saveMappingVersion(
      bridge.organizationId,
      parseMapping({
        connection: { name: CONNECTION, type: "database" },
        userModel: "isolated",
        profile: { email: "userName" },
        app_metadata: { keys: { department: `${ENTERPRISE}:department` } },
        roles: { rules: [{ when: { group: "Eng-Admins" }, grant: ["admin"] }], default: ["member"] },
      }),
      { actor: operator },
    ),
  );
  sync = await startSyncHarness(bridge.store);
});
afterEach(async () => {
  await sync.close();
  await bridge.close();
});

const gw = () => sync.engine.gateway;
const orgId = () => sync.emulator.state.organizationByName(organizationSlug)!.id;
/** Time passes: what the bridge wrote is now older than Auth0's propagation delay (a scan skips younger writes). */
const settle = (userId?: string) =>
  userId
    ? sqlExec(bridge.store, "update user_sync set applied_at = applied_at - ? where user_id = ?", [
        RECENT_WRITE_MS + 1_000,
        userId,
      ])
    : sqlExec(bridge.store, "update user_sync set applied_at = applied_at - ?", [RECENT_WRITE_MS + 1_000]);
const scanNow = (repair: boolean) => scanDrift(sync.engine.deps, bridge.organizationId, { repair });
const scan = async (repair: boolean) => {
  await settle();
  return scanNow(repair);
};
const appliedRows = () =>
  sqlRows(bridge.store, "select user_id, auth0_user_id, applied from user_sync order by user_id");
const openJobs = async () =>
  (await sqlValue<number>(bridge.store, "select count(*) from jobs where state in ('pending', 'running')"))!;

function auth0User(email: string) {
  const found = sync.emulator.state.usersByEmail(email);
  expect(found, `Auth0 user ${email}`).toHaveLength(1);
  return found[0]!;
}
const roleNames = (email: string) =>
  sync.emulator.state
    .memberRolesOf(orgId(), auth0User(email).user_id)
    .map((id) => sync.emulator.state.roles.get(id)!.name)
    .sort();
const isMember = (email: string) => sync.emulator.state.membersOf(orgId()).includes(auth0User(email).user_id);

async function push(userName: string): Promise<string> {
  const res = await bridge.scim
    .post("/Users", {
      schemas: ["urn:ietf:params:scim:schemas:core:2.0:User", ENTERPRISE],
      userName,
      active: true,
      [ENTERPRISE]: { department: "Research" },
    })
    .expect(201);
  return res.body.id as string;
}

/** A user synced while active, then deactivated by the IdP (isolated policy: blocked, signed out, still a member). */
async function pushDeactivated(userName: string): Promise<string> {
  const id = await push(userName);
  await sync.drain();
  await bridge.scim
    .patch(`/Users/${id}`, {
      schemas: ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
      Operations: [{ op: "replace", path: "active", value: false }],
    })
    .expect(204);
  return id;
}

/**
 * Five synced users, then five changes made straight through the Management API, plus changes to
 * things the bridge does not own. Returns the outsider's Auth0 id.
 */
async function driftEverything(): Promise<{ outsider: string; ids: Record<string, string> }> {
  const ids: Record<string, string> = {};
  for (const name of ["ada", "bob", "cy", "dee"]) ids[name] = await push(`${name}@example.com`);
  ids.grace = await pushDeactivated("grace@example.com");
  await sync.drain();
  expect(auth0User("grace@example.com").blocked).toBe(true);

  await gw().updateUser(auth0User("grace@example.com").user_id, { blocked: false }, BG); // unblock a deactivated user
  await gw().removeMembers(orgId(), [auth0User("ada@example.com").user_id], BG); // remove a member
  const bob = auth0User("bob@example.com").user_id;
  await gw().assignMemberRoles(orgId(), bob, ["admin", "billing-viewer"], BG); // a managed role and a foreign one
  await gw().removeMemberRoles(orgId(), bob, ["member"], BG); // remove a managed role
  await gw().updateUser(
    auth0User("cy@example.com").user_id,
    { app_metadata: { department: "Sales", billing: "gold" } },
    BG,
  );
  await gw().deleteUser(auth0User("dee@example.com").user_id, BG);
  const outsider = (
    await gw().createUser({ connection: CONNECTION, email: "outsider@example.com", password: "Xx1!aaaaaaaaaaaa" }, BG)
  ).user_id;
  await gw().addMembers(orgId(), [outsider], BG);
  return { outsider, ids };
}

describe("scanDrift", () => {
  it("reports every difference and changes nothing without repair", async () => {
    const { outsider, ids } = await driftEverything();
    const before = await appliedRows();
    const dump = JSON.stringify([...sync.emulator.state.users.values()]);
    sync.emulator.clearCalls();

    const report = await scan(false);

    expect(
      sync.emulator.calls().filter((c) => c.method !== "GET"),
      "a dry scan only reads",
    ).toEqual([]);
    expect(await appliedRows()).toEqual(before);
    expect(await openJobs()).toBe(0);
    expect(JSON.stringify([...sync.emulator.state.users.values()])).toBe(dump);

    expect(report).toMatchObject({
      organizationId: bridge.organizationId,
      checked: 5,
      unsynced: 0,
      repaired: false,
      unmanagedMembers: [outsider],
    });
    const byUser = Object.fromEntries(report.drifted.map((d) => [d.userName, d.differences]));
    expect(byUser).toEqual({
      "grace@example.com": ["blocked: applied true, Auth0 false"],
      "ada@example.com": ["member: applied true, Auth0 false", 'roles: applied ["member"], Auth0 []'],
      "bob@example.com": ['roles: applied ["member"], Auth0 ["admin"]'],
      "cy@example.com": ['app_metadata.department: applied "Research", Auth0 "Sales"'],
      "dee@example.com": ["exists: applied true, Auth0 false"],
    });
    expect(report.drifted.find((d) => d.userName === "ada@example.com")?.userId).toBe(ids.ada);
  });

  it("with repair, restores the desired state and leaves foreign roles, keys and members alone", async () => {
    const { outsider } = await driftEverything();
    const bobBefore = auth0User("bob@example.com").user_id;
    const report = await scan(true);
    expect(report.repaired).toBe(true);
    expect(report.drifted).toHaveLength(5);
    await sync.drain();

    expect(auth0User("grace@example.com").blocked).toBe(true);
    expect(isMember("ada@example.com")).toBe(true);
    expect(roleNames("ada@example.com")).toEqual(["member"]);
    expect(roleNames("bob@example.com")).toEqual(["billing-viewer", "member"]);
    expect(auth0User("bob@example.com").user_id, "no twin for a user that still existed").toBe(bobBefore);
    expect(auth0User("cy@example.com").app_metadata).toEqual({ department: "Research", billing: "gold" });
    // The deleted user is created again, once, with its membership, roles and metadata.
    const dee = auth0User("dee@example.com");
    expect(isMember("dee@example.com")).toBe(true);
    expect(roleNames("dee@example.com")).toEqual(["member"]);
    expect(dee.app_metadata).toEqual({ department: "Research" });
    expect(
      await sqlValue(bridge.store, "select auth0_user_id from user_sync where auth0_user_id = ?", [dee.user_id]),
    ).toBe(dee.user_id);
    // Not the bridge's: still there.
    expect(sync.emulator.state.membersOf(orgId())).toContain(outsider);

    const after = await scan(false);
    expect(after.drifted).toEqual([]);
    expect(after.unmanagedMembers).toEqual([outsider]);
  });

  it('a "drift" job scans and repairs the organization in the background', async () => {
    await driftEverything();
    await settle();
    await bridge.store.write(
      enqueueJob({
        organizationId: bridge.organizationId,
        kind: "drift",
        subjectId: bridge.organizationId,
        lane: BG,
      }),
    );
    await sync.drain();
    expect(auth0User("grace@example.com").blocked).toBe(true);
    expect(isMember("ada@example.com")).toBe(true);
    expect(roleNames("bob@example.com")).toEqual(["billing-viewer", "member"]);
    expect(auth0User("cy@example.com").app_metadata).toMatchObject({ department: "Research" });
    expect(sync.emulator.state.usersByEmail("dee@example.com")).toHaveLength(1);
    expect((await scan(false)).drifted).toEqual([]);
  });

  it("signs out again a deactivated user who got back in while someone had unblocked it", async () => {
    await pushDeactivated("grace@example.com");
    await sync.drain();
    const grace = auth0User("grace@example.com").user_id;
    expect(sync.emulator.state.hasActiveAccess(grace)).toBe(false);
    await gw().updateUser(grace, { blocked: false }, BG);
    const login = await sync.emulator.login({
      connection: CONNECTION,
      email: "grace@example.com",
      organization: orgId(),
    });
    expect(login.decision).toBe("allow");
    expect(sync.emulator.state.hasActiveAccess(grace)).toBe(true);

    await scan(true);
    await sync.drain();
    expect(auth0User("grace@example.com").blocked).toBe(true);
    expect(sync.emulator.state.hasActiveAccess(grace), "the session opened while unblocked is revoked").toBe(false);
  });

  it("does not read a user the bridge wrote within Auth0's propagation delay; reads it, and repairs its drift, once that has passed", async () => {
    const ada = await push("ada@example.com");
    await push("bob@example.com");
    await sync.drain();
    const adaAuth0 = auth0User("ada@example.com").user_id;
    const bobAuth0 = auth0User("bob@example.com").user_id;
    await gw().removeMemberRoles(orgId(), adaAuth0, ["member"], BG);
    await gw().removeMemberRoles(orgId(), bobAuth0, ["member"], BG);
    // Ada was synced a while ago; Bob moments ago.
    await settle(ada);
    sync.emulator.clearCalls();

    const first = await scanNow(true);
    const read = sync.emulator.calls().map((c) => decodeURIComponent(c.path));
    expect(first).toMatchObject({ checked: 1, recent: 1 });
    expect(first.drifted.map((d) => d.userName)).toEqual(["ada@example.com"]);
    expect(
      read.filter((p) => p.includes(bobAuth0)),
      "no read of the user written moments ago",
    ).toEqual([]);
    expect(read).toContain(`/api/v2/users/${adaAuth0}`);
    expect(read).toContain(`/api/v2/organizations/${orgId()}/members/${adaAuth0}/roles`);
    await sync.drain();
    expect(roleNames("ada@example.com")).toEqual(["member"]);
    expect(roleNames("bob@example.com"), "not judged yet, so not touched").toEqual([]);

    // Later, Bob's drift is real and still found and repaired.
    const later = await scan(true);
    expect(later).toMatchObject({ checked: 2, recent: 0 });
    expect(later.drifted.map((d) => d.userName)).toEqual(["bob@example.com"]);
    await sync.drain();
    expect(roleNames("bob@example.com")).toEqual(["member"]);
  });

  it("does not judge a user written after the member list was read (a long scan beside a push)", async () => {
    const ada = await push("ada@example.com");
    await sync.drain();
    const gateway = sync.engine.deps.gateway;
    let clock = Date.now();
    // The scan reads the member list before Ada was added; by her turn that write is a minute old.
    const stale = Object.create(gateway, {
      listMembers: {
        value: async () => {
          await sqlExec(bridge.store, "update user_sync set applied_at = ? where user_id = ?", [clock + 1_000, ada]);
          clock += 60_000;
          return [];
        },
      },
    }) as typeof gateway;
    const report = await scanDrift({ ...sync.engine.deps, gateway: stale, now: () => clock }, bridge.organizationId, {
      repair: true,
    });
    expect(report).toMatchObject({ checked: 0, recent: 1, drifted: [] });
    expect(await openJobs()).toBe(0);
  });

  it("reads the states of a page of users being pushed at once, and alone only a user it judges against Auth0", async () => {
    await push("ada@example.com");
    await sync.drain();
    await sync.engine.worker.stop();
    for (let i = 0; i < 150; i++) await push(`pushed-${i}@example.com`);
    await settle();
    const { result: report, sent } = await statementsSent(bridge.store, /EXISTS \(SELECT 1 FROM jobs j/, () =>
      scanNow(false),
    );
    expect(report).toMatchObject({ checked: 1, unsynced: 150, drifted: [] });
    // On PostgreSQL each is a round trip: one a page of 100 users, then ada's own read before it is
    // judged (150 reads of one user each, before). SQLite prepares each text once, so counts nothing.
    if (bridge.dialect === "postgres") expect(sent).toHaveLength(3);
  });

  it("counts directory users not synced yet, without reporting them as drift", async () => {
    await push("ada@example.com");
    await sync.drain();
    await sync.engine.worker.stop();
    await push("late@example.com");
    const report = await scan(false);
    expect(report).toMatchObject({ checked: 1, unsynced: 1, drifted: [] });
  });
});
