/**
 * docs/design.md "What Auth0 sees", row by row, end to end: SCIM request → store → job → worker → real node-auth0 client
 * → Auth0 emulator. Every assertion reads the emulator's state, as Auth0 would show it.
 */
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { activateMappingVersion, saveMappingVersion } from "../../src/directory/mappings.js";
import { parseMapping } from "../../src/mapping/index.js";
import { createTestBridge, type TestBridge } from "../helpers/scim.js";
import { applyDatabaseMapping, startSyncHarness, type SyncHarness } from "../helpers/sync-harness.js";
import { slugOf as organizationSlug, sqlExec, sqlRows, sqlValue } from "../helpers/sync-store.js";

const operator = { type: "operator" as const, id: "test" };

let bridge: TestBridge;
let sync: SyncHarness;

beforeEach(async () => {
  bridge = await createTestBridge();
  sync = await startSyncHarness(bridge.store);
});
afterEach(async () => {
  await sync.close();
  await bridge.close();
});

const scimUser = (userName: string, extra: Record<string, unknown> = {}) => ({
  schemas: ["urn:ietf:params:scim:schemas:core:2.0:User"],
  userName,
  name: { givenName: "Ada", familyName: "Lovelace" },
  emails: [{ value: userName, type: "work", primary: true }],
  active: true,
  ...extra,
});

const patchActive = (active: boolean | string) => ({
  schemas: ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
  Operations: [{ op: "Replace", path: "active", value: active }],
});

function auth0User(email: string) {
  const found = sync.emulator.state.usersByEmail(email.toLowerCase());
  expect(found, `Auth0 user for ${email}`).toHaveLength(1);
  return found[0]!;
}

function orgOf(slug: string) {
  const org = sync.emulator.state.organizationByName(slug);
  expect(org, `Auth0 organization ${slug}`).toBeDefined();
  return org!;
}

function roleNames(orgId: string, userId: string): string[] {
  return sync.emulator.state
    .memberRolesOf(orgId, userId)
    .map((id) => sync.emulator.state.roles.get(id)!.name)
    .sort();
}

const slugOf = (b: TestBridge): Promise<string> => organizationSlug(b.store, b.organizationId);

async function createUser(userName: string, extra: Record<string, unknown> = {}): Promise<string> {
  const res = await bridge.scim.post("/Users", scimUser(userName, extra)).expect(201);
  return res.body.id as string;
}

describe("isolated organization, database connection", () => {
  it("creates the Auth0 user with an unverified email and no known password, and adds it to the organization", async () => {
    await createUser("Ada@Example.com");
    await sync.drain();
    const user = auth0User("ada@example.com");
    const org = orgOf(await slugOf(bridge));
    expect(user.email).toBe("ada@example.com");
    expect(user.email_verified).toBe(false);
    expect(user.blocked ?? false).toBe(false);
    expect(sync.emulator.state.membersOf(org.id)).toContain(user.user_id);
    // The organization carries the slug as its name and has the connection enabled.
    expect(sync.emulator.state.enabledConnectionsOf(org.id).length).toBe(1);
    // No call ever set a password on an existing user.
    const patches = sync.emulator.calls().filter((c) => c.method === "PATCH" && c.path.startsWith("/api/v2/users/"));
    expect(patches.every((c) => !JSON.stringify(c.body ?? {}).includes("password"))).toBe(true);
  });

  it("blocks and signs out a deactivated user, and restores it on reactivation", async () => {
    const id = await createUser("grace@example.com");
    await sync.drain();
    const user = auth0User("grace@example.com");
    const org = orgOf(await slugOf(bridge));
    const login = await sync.emulator.login({
      connection: "Username-Password-Authentication",
      email: "grace@example.com",
      organization: org.id,
    });
    expect(login.decision).toBe("allow");
    expect(sync.emulator.state.hasActiveAccess(user.user_id)).toBe(true);

    // Entra sends the boolean as a string.
    await bridge.scim.patch(`/Users/${id}`, patchActive("False")).expect(204);
    await sync.drain();
    expect(auth0User("grace@example.com").blocked).toBe(true);
    expect(sync.emulator.state.hasActiveAccess(user.user_id)).toBe(false);
    const denied = await sync.emulator.login({
      connection: "Username-Password-Authentication",
      email: "grace@example.com",
      organization: org.id,
    });
    expect(denied.decision).toBe("deny");
    // Isolated policy: block + revoke; the membership stays so reactivation is instant.
    expect(sync.emulator.state.membersOf(org.id)).toContain(user.user_id);

    await bridge.scim.patch(`/Users/${id}`, patchActive(true)).expect(204);
    await sync.drain();
    expect(auth0User("grace@example.com").blocked).toBe(false);
    expect(sync.emulator.state.membersOf(org.id)).toContain(user.user_id);
  });

  it("deletes the Auth0 user when the IdP deletes the user and the mapping says so", async () => {
    // The default mapping never deletes Auth0 users; deletion is an explicit mapping choice.
    await applyDatabaseMapping(bridge.store, bridge.organizationId, { policies: { deletion: { deleteUser: true } } });
    const id = await createUser("leaver@example.com");
    await sync.drain();
    const user = auth0User("leaver@example.com");
    await bridge.scim.delete(`/Users/${id}`).expect(204);
    await sync.drain();
    expect(sync.emulator.state.usersByEmail("leaver@example.com")).toHaveLength(0);
    expect(sync.emulator.state.membersOf(orgOf(await slugOf(bridge)).id)).not.toContain(user.user_id);
  });

  it("writes profile changes and owned app_metadata keys, leaving other keys alone", async () => {
    await bridge.store.write(
      saveMappingVersion(
        bridge.organizationId,
        parseMapping({
          connection: { name: "Username-Password-Authentication", type: "database" },
          userModel: "isolated",
          profile: { email: "userName", given_name: "name.givenName", family_name: "name.familyName" },
          app_metadata: {
            keys: { department: "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department" },
          },
        }),
        { actor: operator },
      ),
    );
    const id = await createUser("lin@example.com", {
      schemas: [
        "urn:ietf:params:scim:schemas:core:2.0:User",
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User",
      ],
      "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": { department: "Research" },
    });
    await sync.drain();
    const created = auth0User("lin@example.com");
    expect(created.given_name).toBe("Ada");
    expect(created.app_metadata).toMatchObject({ department: "Research" });

    // Someone else writes a key the bridge does not own.
    const client = sync.engine.gateway;
    await client.updateUser(created.user_id, { app_metadata: { billing: "gold" } }, 1);

    await bridge.scim
      .patch(`/Users/${id}`, {
        schemas: ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        Operations: [
          { op: "replace", path: "name.givenName", value: "Adele" },
          {
            op: "replace",
            path: "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department",
            value: "Platform",
          },
        ],
      })
      .expect(204);
    await sync.drain();
    const updated = auth0User("lin@example.com");
    expect(updated.given_name).toBe("Adele");
    expect(updated.app_metadata).toEqual({ department: "Platform", billing: "gold" });
  });

  it("turns group membership into organization roles, and removes them when the user leaves the group", async () => {
    await applyDatabaseMapping(bridge.store, bridge.organizationId, {
      roles: { rules: [{ when: { group: "Eng-Admins" }, grant: ["admin"] }], default: ["member"] },
    });
    const id = await createUser("ops@example.com");
    const group = await bridge.scim
      .post("/Groups", {
        schemas: ["urn:ietf:params:scim:schemas:core:2.0:Group"],
        displayName: "Eng-Admins",
        members: [],
      })
      .expect(201);
    await sync.drain();
    const user = auth0User("ops@example.com");
    const org = orgOf(await slugOf(bridge));
    expect(roleNames(org.id, user.user_id)).toEqual(["member"]);

    await bridge.scim
      .patch(`/Groups/${group.body.id}`, {
        schemas: ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        Operations: [{ op: "Add", path: "members", value: [{ value: id }] }],
      })
      .expect(204);
    await sync.drain();
    expect(roleNames(org.id, user.user_id)).toEqual(["admin"]);

    await bridge.scim
      .patch(`/Groups/${group.body.id}`, {
        schemas: ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        Operations: [{ op: "Remove", path: `members[value eq "${id}"]` }],
      })
      .expect(204);
    await sync.drain();
    expect(roleNames(org.id, user.user_id)).toEqual(["member"]);
  });

  it("adopts an Auth0 user that already exists with the same email instead of creating a twin", async () => {
    await sync.engine.gateway.createUser(
      { connection: "Username-Password-Authentication", email: "existing@example.com", password: "Xx1!aaaaaaaaaaaa" },
      1,
    );
    await createUser("Existing@example.com");
    await sync.drain();
    expect(sync.emulator.state.usersByEmail("existing@example.com")).toHaveLength(1);
    expect(sync.emulator.state.membersOf(orgOf(await slugOf(bridge)).id)).toContain(
      auth0User("existing@example.com").user_id,
    );
  });
});

describe("mapping version changes", () => {
  it("reconciles the whole organization in the background when a new mapping is applied, and rolls back", async () => {
    const ids = [await createUser("m1@example.com"), await createUser("m2@example.com")];
    await sync.drain();
    const org = orgOf(await slugOf(bridge));
    const users = ["m1@example.com", "m2@example.com"].map((e) => auth0User(e).user_id);
    expect(users.map((u) => roleNames(org.id, u))).toEqual([[], []]);

    const mapping = (role: string) =>
      parseMapping({
        connection: { name: "Username-Password-Authentication", type: "database" },
        userModel: "isolated",
        profile: { email: "userName" },
        roles: { default: [role] },
      });
    const backgroundJobs = async () =>
      (await sqlValue<number>(
        bridge.store,
        "select count(*) from jobs where kind = 'user' and lane = 2 and subject_id in (?, ?)",
        [ids[0]!, ids[1]!],
      ))!;
    const before = await backgroundJobs();
    // The worker waits while the new version is saved, so the queued job is seen before a worker
    // (woken at once on PostgreSQL by the job channel) claims it.
    await sync.engine.worker.stop();
    const v1 = await bridge.store.write(
      saveMappingVersion(bridge.organizationId, mapping("viewer"), { actor: operator }),
    );
    const queued = await sqlRows<{ lane: number; kind: string }>(
      bridge.store,
      "select lane, kind from jobs where state = 'pending' order by id",
    );
    expect(queued).toContainEqual({ lane: 2, kind: "organization" });
    sync.engine.worker.start();
    await sync.drain();
    expect(users.map((u) => roleNames(org.id, u))).toEqual([["viewer"], ["viewer"]]);
    expect((await backgroundJobs()) - before).toBe(2);

    await bridge.store.write(saveMappingVersion(bridge.organizationId, mapping("editor"), { actor: operator }));
    await sync.drain();
    expect(users.map((u) => roleNames(org.id, u))).toEqual([["editor"], ["editor"]]);

    // Rollback = activating the earlier version again.
    await bridge.store.write(activateMappingVersion(bridge.organizationId, v1.version, operator));
    await sync.drain();
    expect(users.map((u) => roleNames(org.id, u))).toEqual([["viewer"], ["viewer"]]);
  });
});

describe("shared organizations", () => {
  it("removes the membership on deactivation, and blocks tenant-wide only when no other organization holds the user", async () => {
    const mk = async (slug: string) => {
      const dir = await bridge.newDirectory();
      await sqlExec(bridge.store, "update organizations set user_model = 'shared', slug = ? where id = ?", [
        slug,
        dir.organizationId,
      ]);
      return dir;
    };
    const a = await mk("shared-a");
    const b = await mk("shared-b");
    const ids: Record<string, string> = {};
    for (const [name, dir] of [
      ["a", a],
      ["b", b],
    ] as const) {
      const res = await dir.scim.post("/Users", scimUser("kim@example.com")).expect(201);
      ids[name] = res.body.id;
    }
    await sync.drain();
    const user = auth0User("kim@example.com");
    const orgA = orgOf("shared-a");
    const orgB = orgOf("shared-b");
    expect(sync.emulator.state.membersOf(orgA.id)).toContain(user.user_id);
    expect(sync.emulator.state.membersOf(orgB.id)).toContain(user.user_id);

    await a.scim.patch(`/Users/${ids.a}`, patchActive(false)).expect(204);
    await sync.drain();
    expect(sync.emulator.state.membersOf(orgA.id)).not.toContain(user.user_id);
    expect(sync.emulator.state.membersOf(orgB.id)).toContain(user.user_id);
    expect(auth0User("kim@example.com").blocked ?? false).toBe(false);

    await b.scim.patch(`/Users/${ids.b}`, patchActive(false)).expect(204);
    await sync.drain();
    expect(sync.emulator.state.membersOf(orgB.id)).not.toContain(user.user_id);
    expect(auth0User("kim@example.com").blocked).toBe(true);
    // Shared model never deletes the Auth0 user.
    await b.scim.delete(`/Users/${ids.b}`).expect(204);
    await sync.drain();
    expect(sync.emulator.state.usersByEmail("kim@example.com")).toHaveLength(1);
  });
});
