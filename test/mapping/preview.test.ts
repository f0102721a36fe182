import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import type { OpenDatabase } from "../../src/directory/database.js";
import { saveMappingVersion } from "../../src/directory/mappings.js";
import { parseMapping, type MappingInput } from "../../src/mapping/index.js";
import { previewMapping } from "../../src/sync/preview.js";
import { linkUser, openMemoryDb, placeHold, scimUser, seedOrganization, seedUsers } from "./seed.js";
import { writeSync } from "../../src/directory/store-op.js";
import { sqliteStore } from "../../src/directory/sql.js";

const candidate = (change: Partial<MappingInput> = {}) =>
  parseMapping({
    connection: { name: "acme-db" },
    userModel: "isolated",
    profile: { email: "emails[primary eq true].value", given_name: "name.givenName" },
    app_metadata: { namespace: "acme", keys: { groups: { groups: "displayName" } } },
    roles: {
      rules: [
        { when: { group: "Eng-Admins" }, grant: ["admin"], stop: true },
        { when: { group: { displayName: { glob: "Eng-*" } } }, grant: ["eng"] },
      ],
      default: ["member"],
    },
    ...change,
  });

let handle: OpenDatabase;
beforeEach(() => {
  handle = openMemoryDb();
});
afterEach(() => handle.close());

function seedAcme() {
  const { orgId, dirId } = seedOrganization(handle.db, "acme");
  seedUsers(handle.db, dirId, [
    { id: "u1-ann", resource: scimUser("ann"), groups: ["Eng-Admins", "Eng-Platform"] },
    { id: "u2-bob", resource: scimUser("bob"), groups: ["Eng-Platform"] },
    { id: "u3-carol", resource: scimUser("carol") },
    { id: "u4-dave", resource: scimUser("dave"), active: false },
    { id: "u5-erin", resource: scimUser("erin"), deleted: true },
    { id: "u6-frank", resource: scimUser("frank") },
    { id: "u7-gina", resource: { userName: "gina" } },
  ]);
  placeHold(handle.db, orgId, dirId, "u6-frank");
  placeHold(handle.db, orgId, dirId, "u3-carol", true); // released: no longer counts
  return { orgId, dirId };
}

describe("mapping preview", () => {
  it("compares every directory user under the candidate with the active mapping", async () => {
    const { orgId } = seedAcme();
    // Neither mapping deletes Auth0 users: erin (deleted in the directory) stays a blocked member with roles.
    const result = await previewMapping(
      sqliteStore(handle.sqlite),
      "acme",
      candidate({ policies: { deletion: { deleteUser: false } } }),
    );
    expect(result).toMatchObject({ organizationId: orgId, activeVersion: null, total: 7, withProblems: 1 });
    // Default mapping: no roles, no app_metadata. Candidate: ann admin; bob eng; carol, dave (deactivation
    // keeps roles), frank (a hold keeps roles) and gina member; everyone but erin (deleted) gets the namespace.
    expect(result.changed).toEqual({ membership: 0, roles: 7, profile: 0, metadata: 7, blocked: 0, users: 7 });
    const byUser = Object.fromEntries(result.users.map((u) => [u.userName, u]));
    expect(byUser["ann@acme.test"]).toMatchObject({
      status: "provisioned",
      changes: { roles: { added: ["admin"], removed: [] }, metadata: { keys: ["acme"] } },
    });
    expect(byUser["frank@acme.test"]).toMatchObject({ status: "held", changes: { roles: { added: ["member"] } } });
    expect(byUser["gina"]?.problems).toEqual(["profile.email produced no value: the user cannot be created or linked"]);
    expect(byUser["erin@acme.test"]).toMatchObject({ changes: { roles: { added: ["member"] } } });
  });

  it("compares with the active version once one is applied, and reports nothing when the candidate is the same", async () => {
    seedAcme();
    writeSync(handle.db, saveMappingVersion("acme", candidate(), { actor: { type: "operator", id: "t" } }));
    const same = await previewMapping(sqliteStore(handle.sqlite), "acme", candidate());
    expect(same).toMatchObject({ activeVersion: 1, changed: { users: 0 }, withProblems: 1 });
    const renamed = await previewMapping(
      sqliteStore(handle.sqlite),
      "acme",
      candidate({
        profile: {
          email: "emails[primary eq true].value",
          given_name: { from: "name.givenName", transforms: ["uppercase"] },
        },
      }),
    );
    expect(renamed.changed).toMatchObject({ profile: 5, roles: 0, users: 5 });
  });

  it("shows membership and block changes of a deprovisioning policy change (shared organization)", async () => {
    const { orgId, dirId } = seedOrganization(handle.db, "umbrella", "shared");
    seedUsers(handle.db, dirId, [
      { id: "s1", resource: scimUser("sam"), active: false },
      { id: "s2", resource: scimUser("sue"), active: false },
    ]);
    linkUser(handle.db, orgId, dirId, "s1", "auth0|sam");
    linkUser(handle.db, orgId, dirId, "s2", "auth0|sue");
    // Another organization holds sue's Auth0 user. Its sam has sam's email but is another Auth0 user
    // (two organizations' users with one email need not be one account): it does not hold ours.
    const other = seedOrganization(handle.db, "other", "shared");
    seedUsers(handle.db, other.dirId, [
      { id: "o1", resource: scimUser("sue") },
      { id: "o2", resource: scimUser("sam") },
    ]);
    linkUser(handle.db, other.orgId, other.dirId, "o1", "auth0|sue");
    linkUser(handle.db, other.orgId, other.dirId, "o2", "auth0|someone-else");
    const keepMembers = candidate({
      userModel: "shared",
      policies: { deactivation: { block: "whenNoOtherOrganization", removeMembership: true, removeRoles: false } },
    });
    const result = await previewMapping(sqliteStore(handle.sqlite), "umbrella", keepMembers);
    expect(result.changed.blocked).toBe(0);
    const ops = (r: typeof result, id: string) => r.users.find((u) => u.userId === id)?.operations.map((o) => o.type);
    // sam is held nowhere else: blocked and signed out; sue keeps her Auth0 account for the other organization.
    expect(ops(result, "s1")).toEqual(["block", "revokeAccess", "removeMember", "updateUser"]);
    expect(ops(result, "s2")).toEqual(["removeMember", "updateUser"]);
    const alwaysBlock = candidate({
      userModel: "shared",
      policies: { deactivation: { block: "always", removeMembership: false } },
    });
    const blocked = await previewMapping(sqliteStore(handle.sqlite), "umbrella", alwaysBlock);
    expect(blocked.changed).toMatchObject({ membership: 2, blocked: 1 });
    expect(blocked.users.find((u) => u.userId === "s2")?.changes).toMatchObject({
      membership: { before: "user", after: "member" },
      blocked: { before: false, after: true },
    });
  });

  it('decides "held by another organization" by the Auth0 link, as the worker does, not by email', async () => {
    const { orgId, dirId } = seedOrganization(handle.db, "umbrella", "shared");
    seedUsers(handle.db, dirId, [{ id: "s1", resource: scimUser("sam"), active: false }]);
    linkUser(handle.db, orgId, dirId, "s1", "auth0|sam");
    const other = seedOrganization(handle.db, "other", "shared");
    // Same email, never linked to our Auth0 user: it does not keep sam's account open.
    seedUsers(handle.db, other.dirId, [{ id: "o1", resource: scimUser("sam") }]);
    const m = candidate({ userModel: "shared" });
    const before = (await previewMapping(sqliteStore(handle.sqlite), "umbrella", m)).users.find(
      (u) => u.userId === "s1",
    )!;
    expect(before.operations.map((o) => o.type)).toContain("block");
    // A different email, linked to the same Auth0 user: it does.
    seedUsers(handle.db, other.dirId, [{ id: "o2", resource: scimUser("samuel") }]);
    linkUser(handle.db, other.orgId, other.dirId, "o2", "auth0|sam");
    const after = (await previewMapping(sqliteStore(handle.sqlite), "umbrella", m)).users.find(
      (u) => u.userId === "s1",
    )!;
    expect(after.operations.map((o) => o.type)).not.toContain("block");
    expect(after.operations.map((o) => o.type)).toContain("removeMember");
  });

  it("maps the SCIM id as the worker writes it (scim_id: id)", async () => {
    const { orgId } = seedAcme();
    const m = candidate({ app_metadata: { keys: { scim_id: "id", ext: "externalId" } } });
    const result = await previewMapping(sqliteStore(handle.sqlite), orgId, m);
    const ann = result.users.find((u) => u.userId === "u1-ann")!;
    const create = ann.operations.find((o) => o.type === "createUser");
    expect(create).toMatchObject({ type: "createUser", appMetadata: { scim_id: "u1-ann", ext: null } });
  });

  it("reads with a bounded number of queries (none per user) and writes nothing", async () => {
    const countQueries = async (n: number): Promise<number> => {
      const db = openMemoryDb();
      const { dirId } = seedOrganization(db.db, "acme");
      seedUsers(
        db.db,
        dirId,
        Array.from({ length: n }, (_, i) => ({ id: `u${i}`, resource: scimUser(`user${i}`), groups: [`G${i % 7}`] })),
      );
      const prepare = vi.spyOn(db.sqlite, "prepare");
      const before = db.sqlite.prepare("select total_changes() as n").get() as { n: number };
      prepare.mockClear();
      const progress: number[] = [];
      await previewMapping(sqliteStore(db.sqlite), "acme", candidate(), (p) => progress.push(p.done));
      const queries = prepare.mock.calls.length;
      expect(db.sqlite.prepare("select total_changes() as n").get()).toEqual(before);
      expect(progress.at(-1)).toBe(n);
      db.close();
      return queries;
    };
    expect(await countQueries(900)).toBe(await countQueries(5));
  });

  it("refuses an unknown organization", async () => {
    await expect(previewMapping(sqliteStore(handle.sqlite), "nope", candidate())).rejects.toThrow(
      'organization "nope" not found',
    );
  });
});
