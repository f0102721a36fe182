/**
 * docs/design.md "What Auth0 sees", row "user appears, enterprise connection", end to end: Auth0 cannot create enterprise
 * users, so SCIM creates nothing in Auth0; the Organization admits them by auto-membership; the
 * first login (emulator → bridge hook) links the Auth0 id and the reconcile grants the roles;
 * deactivation then blocks the Auth0 user.
 */
import { randomBytes } from "node:crypto";
import type { RequestHandler } from "express";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { saveMappingVersion } from "../../src/directory/mappings.js";
import { postLoginHookRouter } from "../../src/http/post-login-hook.js";
import { parseMapping } from "../../src/mapping/index.js";
import { scanDrift } from "../../src/sync/drift.js";
import { createTestBridge, type TestBridge } from "../helpers/scim.js";
import { startSyncHarness, type SyncHarness } from "../helpers/sync-harness.js";
import { linkedAuth0Id, slugOf, sqlExec, sqlValue } from "../helpers/sync-store.js";

const CONNECTION = "acme-okta";
const operator = { type: "operator" as const, id: "test" };

let bridge: TestBridge;
let sync: SyncHarness;
let organizationSlug: string;

beforeEach(async () => {
  const secret = randomBytes(32).toString("hex");
  let hook: RequestHandler | undefined;
  bridge = await createTestBridge({
    extraRouters: [{ path: "/hooks/auth0/post-login", router: (req, res, next) => hook!(req, res, next) }],
  });
  hook = postLoginHookRouter(bridge.store, secret);
  await sqlExec(bridge.store, "update organizations set connection = ? where id = ?", [
    CONNECTION,
    bridge.organizationId,
  ]);
  organizationSlug = await slugOf(bridge.store, bridge.organizationId);
  await bridge.store.write(
    saveMappingVersion(
      bridge.organizationId,
      parseMapping({
        connection: { name: CONNECTION, type: "enterprise" },
        userModel: "isolated",
        profile: { email: "userName", given_name: "name.givenName" },
        roles: { rules: [{ when: { group: "Eng-Admins" }, grant: ["admin"] }], default: ["member"] },
      }),
      { actor: operator },
    ),
  );
  sync = await startSyncHarness(bridge.store, {
    connections: [{ name: CONNECTION, strategy: "okta" }],
    postLoginHook: { url: `${bridge.origin}/hooks/auth0/post-login`, secret },
  });
});
afterEach(async () => {
  await sync.close();
  await bridge.close();
});

const linkedId = (userId: string) => linkedAuth0Id(bridge.store, userId);

function auth0Org() {
  const org = sync.emulator.state.organizationByName(organizationSlug);
  expect(org, "the Auth0 Organization").toBeDefined();
  return org!;
}

function roleNames(orgId: string, userId: string): string[] {
  return sync.emulator.state
    .memberRolesOf(orgId, userId)
    .map((id) => sync.emulator.state.roles.get(id)!.name)
    .sort();
}

async function pushUser(userName: string, groupName?: string): Promise<string> {
  const res = await bridge.scim
    .post("/Users", {
      schemas: ["urn:ietf:params:scim:schemas:core:2.0:User"],
      userName,
      name: { givenName: "Ann" },
      emails: [{ value: userName, primary: true }],
      active: true,
    })
    .expect(201);
  const id = res.body.id as string;
  if (groupName) {
    await bridge.scim
      .post("/Groups", {
        schemas: ["urn:ietf:params:scim:schemas:core:2.0:Group"],
        displayName: groupName,
        members: [{ value: id }],
      })
      .expect(201);
  }
  await sync.drain();
  return id;
}

const login = (email: string) => sync.emulator.login({ connection: CONNECTION, email, organization: auth0Org().id });

describe("enterprise connection", () => {
  it("creates no Auth0 user for a SCIM push, and enables the connection on the Organization with auto-membership", async () => {
    const id = await pushUser("Ann@Acme.test");
    expect(sync.emulator.state.users.size).toBe(0);
    expect(sync.emulator.calls().filter((c) => c.method === "POST" && c.path === "/api/v2/users")).toEqual([]);
    expect(await linkedId(id)).toBeNull();

    const org = auth0Org();
    const okta = sync.emulator.state.connectionByName(CONNECTION)!;
    const enabled = sync.emulator.state.enabledConnectionsOf(org.id);
    expect(enabled.map((c) => c.connection_id)).toEqual([okta.id]);
    expect(enabled[0]!.assign_membership_on_login).toBe(true);
    // The job is done (nothing failed): the user simply waits for the first login.
    const job = await sqlValue(bridge.store, "select state from jobs where subject_id = ? order by id desc", [id]);
    expect(job).toBe("done");
  });

  it("links the Auth0 user at first login, grants the mapped roles, and blocks it on deactivation", async () => {
    const id = await pushUser("Ann@Acme.test", "Eng-Admins");
    const org = auth0Org();

    const first = await login("ann@acme.test");
    expect(first.decision).toBe("allow");
    if (first.decision !== "allow") return;
    expect(first.created).toBe(true);
    // The hook answers with the mapping's roles at once, before Auth0 has them.
    expect(first.roles).toEqual(["admin"]);
    const auth0UserId = first.user.user_id;
    expect(await linkedId(id)).toBe(auth0UserId);
    expect(sync.emulator.state.membersOf(org.id)).toContain(auth0UserId);

    await sync.drain();
    expect(roleNames(org.id, auth0UserId)).toEqual(["admin"]);
    expect(sync.emulator.state.users.get(auth0UserId)!.blocked ?? false).toBe(false);
    // Still one Auth0 user: the reconcile linked, it did not create.
    expect(sync.emulator.state.users.size).toBe(1);
    const again = await login("ann@acme.test");
    expect(again).toMatchObject({ decision: "allow", created: false, roles: ["admin"] });

    // Deactivation: the hook refuses at once, even before the worker has blocked the user in Auth0.
    await sync.engine.worker.stop();
    await bridge.scim
      .patch(`/Users/${id}`, {
        schemas: ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        Operations: [{ op: "replace", path: "active", value: false }],
      })
      .expect(204);
    const early = await login("ann@acme.test");
    expect(early).toMatchObject({ decision: "deny", error: "access_denied" });
    if (early.decision === "deny") expect(early.reason).toMatch(/deactivated/i);

    sync.engine.worker.start();
    await sync.drain();
    expect(sync.emulator.state.users.get(auth0UserId)!.blocked).toBe(true);
    expect(sync.emulator.state.hasActiveAccess(auth0UserId)).toBe(false);
    const denied = await login("ann@acme.test");
    expect(denied).toMatchObject({ decision: "deny", error: "unauthorized", reason: "user is blocked" });
  });

  it("denies a first login for someone the directory never pushed, and links nobody", async () => {
    await pushUser("ann@acme.test");
    const res = await login("mallory@acme.test");
    expect(res.decision).toBe("deny");
    if (res.decision === "deny") expect(res.reason).toMatch(/not provisioned/i);
    const links = await sqlValue(bridge.store, "select count(*) from user_sync where auth0_user_id is not null");
    expect(links).toBe(0);
  });

  it("lets a user the IdP deleted and pushed again sign in, linked to the new directory user", async () => {
    const oldId = await pushUser("ann@acme.test");
    const first = await login("ann@acme.test");
    expect(first.decision).toBe("allow");
    await sync.drain();
    await bridge.scim.delete(`/Users/${oldId}`).expect(204);
    await sync.drain();
    expect(sync.emulator.state.users.size, "isolated deletion deletes the Auth0 user").toBe(0);

    // Unassigned and assigned again in Okta: a new SCIM user with the same userName.
    const newId = await pushUser("ann@acme.test");
    const back = await login("ann@acme.test");
    expect(back.decision).toBe("allow");
    if (back.decision !== "allow") return;
    expect(await linkedId(newId)).toBe(back.user.user_id);
    await sync.drain();
    expect(roleNames(auth0Org().id, back.user.user_id)).toEqual(["member"]);
  });

  it("a drift scan links an enterprise user who already exists in Auth0 (signed in before the hook was installed)", async () => {
    const id = await pushUser("ann@acme.test");
    sync.emulator.setPostLoginHook(undefined);
    const unchecked = await login("ann@acme.test");
    expect(unchecked.decision).toBe("allow");
    if (unchecked.decision !== "allow") return;
    expect(await linkedId(id)).toBeNull();

    const dry = await scanDrift(sync.engine.deps, bridge.organizationId, { repair: false });
    expect(dry).toMatchObject({ unsynced: 1, unmanagedMembers: [unchecked.user.user_id] });
    await scanDrift(sync.engine.deps, bridge.organizationId, { repair: true });
    await sync.drain();
    expect(await linkedId(id)).toBe(unchecked.user.user_id);
    expect(roleNames(auth0Org().id, unchecked.user.user_id)).toEqual(["member"]);
  });

  // Bug (src/sync/reconcile-user.ts ensureAuth0Organization): once organizations.auth0_org_id is set
  // it returns early, so a mapping that moves an existing organization to an enterprise connection
  // never enables that connection (nor auto-membership) and every first login fails with
  // "the connection is not enabled for the organization". See the report.
  it("enables the enterprise connection when a new mapping moves an already-synced organization to it", async () => {
    // A second organization, synced first with its default database connection…
    const other = await bridge.newDirectory();
    const otherSlug = await slugOf(bridge.store, other.organizationId);
    await other.scim
      .post("/Users", {
        schemas: ["urn:ietf:params:scim:schemas:core:2.0:User"],
        userName: "first@acme.test",
        active: true,
      })
      .expect(201);
    await sync.drain();
    const orgId = sync.emulator.state.organizationByName(otherSlug)!.id;
    const enterpriseId = sync.emulator.state.connectionByName(CONNECTION)!.id;
    expect(sync.emulator.state.enabledConnectionsOf(orgId).map((c) => c.connection_id)).not.toContain(enterpriseId);
    // …then moved to the enterprise connection by a new mapping version.
    await sqlExec(bridge.store, "update organizations set connection = ? where id = ?", [
      CONNECTION,
      other.organizationId,
    ]);
    await bridge.store.write(
      saveMappingVersion(
        other.organizationId,
        parseMapping({
          connection: { name: CONNECTION, type: "enterprise" },
          userModel: "isolated",
          profile: { email: "userName" },
          roles: { default: ["member"] },
        }),
        { actor: operator },
      ),
    );
    await sync.drain();
    const enabled = sync.emulator.state.enabledConnectionsOf(orgId).find((c) => c.connection_id === enterpriseId);
    expect(enabled?.assign_membership_on_login).toBe(true);
    await other.scim
      .post("/Users", {
        schemas: ["urn:ietf:params:scim:schemas:core:2.0:User"],
        userName: "second@acme.test",
        active: true,
      })
      .expect(201);
    await sync.drain();
    expect(
      (await sync.emulator.login({ connection: CONNECTION, email: "second@acme.test", organization: orgId })).decision,
    ).toBe("allow");
  });
});
