/**
 * A legacy user per password-hash algorithm, end to end: import through Auth0's import jobs (the
 * emulator), membership and roles from the organization's mapping, login with the original password
 * (and again after Auth0's bcrypt rehash), a wrong password refused; then the IdP's SCIM create of the
 * same person takes over the migrated user (no second Auth0 user), and its deactivation blocks it.
 */
import { eq } from "drizzle-orm";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { migratedUsers, users, userSync } from "../../db/schema.js";
import { runImport } from "../../src/sync/import/service.js";
import { createTestBridge, type TestBridge } from "../helpers/scim.js";
import { applyDatabaseMapping, startSyncHarness, type SyncHarness } from "../helpers/sync-harness.js";
import { ALGORITHMS, legacyHash } from "./hashes.js";
import { importDeps, jsonl, operator, writeTemp } from "./helpers.js";

const connection = "Username-Password-Authentication";
let bridge: TestBridge;
let sync: SyncHarness;

beforeEach(async () => {
  bridge = await createTestBridge();
  sync = await startSyncHarness(bridge.store);
  await applyDatabaseMapping(bridge.store, bridge.organizationId, { roles: { default: ["member"], rules: [] } });
});
afterEach(async () => {
  await sync.close();
  await bridge.close();
});

const slug = () =>
  bridge.sqlite.prepare("select slug from organizations where id = ?").pluck().get(bridge.organizationId) as string;

describe.each(ALGORITHMS)("a user migrated with a %s hash", (algorithm) => {
  it("imports, joins the organization with its roles, logs in with the old password, and is adopted by the IdP's push", async () => {
    const email = `${algorithm}.user@Example.com`;
    const password = `Legacy-${algorithm}-pässword!`;
    const file = writeTemp(
      "users.jsonl",
      jsonl([
        {
          email,
          email_verified: true,
          given_name: "Legacy",
          family_name: algorithm,
          external_id: `okta-${algorithm}`,
          custom_password_hash: await legacyHash(algorithm, password),
        },
      ]),
    );

    const report = await runImport(importDeps(bridge.db, sync), {
      organization: bridge.organizationId,
      filePath: file,
      format: "jsonl",
      actor: operator,
    });
    expect(report.problems).toEqual([]);
    expect(report).toMatchObject({ state: "done", records: 1, inserted: 1, failed: 0, linked: 1 });

    // Membership and the mapping's default role arrive through the reconcile the import enqueued.
    await sync.drain();
    const [auth0User, ...others] = sync.emulator.state.usersByEmail(email.toLowerCase());
    expect(others).toHaveLength(0);
    const org = sync.emulator.state.organizationByName(slug())!;
    expect(sync.emulator.state.membersOf(org.id)).toContain(auth0User!.user_id);
    expect(
      sync.emulator.state
        .memberRolesOf(org.id, auth0User!.user_id)
        .map((id) => sync.emulator.state.roles.get(id)!.name),
    ).toEqual(["member"]);

    const login = (pwd: string) => sync.emulator.login({ connection, email, organization: org.id, password: pwd });
    expect((await login(`${password}x`)).decision).toBe("deny");
    expect((await login(password)).decision).toBe("allow");
    // Auth0 rehashed it with bcrypt at that login: the same password still works, a wrong one still does not.
    expect((await login(password)).decision).toBe("allow");
    expect(await login("hello")).toMatchObject({ decision: "deny", reason: "Wrong email or password." });

    // The IdP pushes the same person: the migrated directory user is taken over, not duplicated.
    const migrated = bridge.db.select().from(migratedUsers).get()!;
    const res = await bridge.scim
      .post("/Users", {
        schemas: ["urn:ietf:params:scim:schemas:core:2.0:User"],
        userName: email,
        externalId: `okta-${algorithm}`,
        name: { givenName: "Legacy", familyName: algorithm },
        emails: [{ value: email, type: "work", primary: true }],
        active: true,
      })
      .expect(201);
    expect(res.body.id).toBe(migrated.userId);
    expect(bridge.db.select().from(users).all()).toHaveLength(1);
    expect(bridge.db.select().from(userSync).where(eq(userSync.userId, migrated.userId)).get()!.auth0UserId).toBe(
      auth0User!.user_id,
    );
    await sync.drain();
    expect(sync.emulator.state.usersByEmail(email.toLowerCase())).toHaveLength(1);
    expect((await login(password)).decision).toBe("allow");

    // Deprovisioning works on the adopted user at once.
    await bridge.scim
      .patch(`/Users/${migrated.userId}`, {
        schemas: ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        Operations: [{ op: "replace", path: "active", value: false }],
      })
      .expect(204);
    await sync.drain();
    expect(sync.emulator.state.users.get(auth0User!.user_id)!.blocked).toBe(true);
    expect(await login(password)).toMatchObject({ decision: "deny", reason: "user is blocked" });
  });
});

describe("Auth0's documented examples", () => {
  it("verify the password 'hello' for the bcrypt password_hash and the unsalted md5, sha1 and sha512 hashes", async () => {
    const file = writeTemp(
      "users.json",
      JSON.stringify([
        { email: "bcrypt@example.com", password_hash: "$2b$10$nFguVi9LsCAcvTZFKQlRKeLVydo8ETv483lkNsSFI/Wl1Rz1Ypo1K" },
        {
          email: "md5@example.com",
          custom_password_hash: {
            algorithm: "md5",
            hash: { value: "5d41402abc4b2a76b9719d911017c592", encoding: "hex" },
          },
        },
        {
          email: "sha1@example.com",
          custom_password_hash: {
            algorithm: "sha1",
            hash: { value: "aaf4c61ddcc5e8a2dabede0f3b482cd9aea9434d", encoding: "hex" },
          },
        },
        {
          email: "sha512@example.com",
          custom_password_hash: {
            algorithm: "sha512",
            hash: {
              value:
                "9b71d224bd62f3785d96d46ad3ea3d73319bfbc2890caadae2dff72519673ca72323c3d99ba5c11d7c7acc6e14b8c5da0c4663475c2e5c3adef46f73bcdec043",
              encoding: "hex",
            },
          },
        },
      ]),
    );
    const report = await runImport(importDeps(bridge.db, sync), {
      organization: bridge.organizationId,
      filePath: file,
      format: "json",
      actor: operator,
    });
    expect(report).toMatchObject({ state: "done", inserted: 4, linked: 4 });
    await sync.drain();
    const org = sync.emulator.state.organizationByName(slug())!;
    for (const who of ["bcrypt", "md5", "sha1", "sha512"]) {
      const email = `${who}@example.com`;
      expect(
        (await sync.emulator.login({ connection, email, organization: org.id, password: "hello" })).decision,
        who,
      ).toBe("allow");
      expect(
        (await sync.emulator.login({ connection, email, organization: org.id, password: "Hello" })).decision,
        who,
      ).toBe("deny");
    }
  });
});
