import { describe, expect, it } from "vitest";
import { defaultMapping, desired, parseMapping, type DesiredUser } from "../../src/mapping/index.js";
import { fixtureUser, mappingWith } from "./helpers.js";

const roles = { rules: [{ when: { scimRole: "Admin" }, grant: ["admin"] }], default: ["member"] };
const isolated = mappingWith({ roles });
const shared = mappingWith({ userModel: "shared", roles });
const adele = fixtureUser("entra-user");
const hold = { id: "h1", reason: "security review" };

type Access = Pick<DesiredUser, "status" | "exists" | "member" | "blocked" | "revokeAccess" | "deleteUser" | "roles">;
const access = (d: DesiredUser): Access => ({
  status: d.status,
  exists: d.exists,
  member: d.member,
  blocked: d.blocked,
  revokeAccess: d.revokeAccess,
  deleteUser: d.deleteUser,
  roles: d.roles,
});

describe("desired: what each situation means in Auth0 (docs/design.md, What Auth0 sees)", () => {
  it("an active user is a member with its roles, not blocked", () => {
    expect(access(desired(isolated, adele, [], []))).toEqual({
      status: "provisioned",
      exists: true,
      member: true,
      blocked: false,
      revokeAccess: false,
      deleteUser: false,
      roles: ["admin"],
    });
  });

  it("isolated, deactivated: block and revoke access, keep membership and roles", () => {
    expect(access(desired(isolated, { ...adele, active: false }, [], []))).toEqual({
      status: "deactivated",
      exists: true,
      member: true,
      blocked: true,
      revokeAccess: true,
      deleteUser: false,
      roles: ["admin"],
    });
  });

  it("isolated, deleted: delete the Auth0 user (blocked and revoked first)", () => {
    expect(access(desired(isolated, { ...adele, deleted: true }, [], []))).toEqual({
      status: "deleted",
      exists: false,
      member: false,
      blocked: true,
      revokeAccess: true,
      deleteUser: true,
      roles: [],
    });
  });

  it("a hold wins over active: true and applies the deactivation policy", () => {
    const d = desired(isolated, adele, [], [hold]);
    expect(access(d)).toMatchObject({ status: "held", blocked: true, revokeAccess: true });
    expect(d.holdIds).toEqual(["h1"]);
  });

  it("deletion wins over a hold", () => {
    expect(desired(isolated, { ...adele, deleted: true }, [], [hold]).status).toBe("deleted");
  });

  it("shared, deactivated, still held by another organization: membership and roles go, no tenant-wide block, sessions kept", () => {
    expect(access(desired(shared, { ...adele, active: false }, [], [], { memberOfOtherOrganizations: true }))).toEqual({
      status: "deactivated",
      exists: true,
      member: false,
      blocked: false,
      revokeAccess: false,
      deleteUser: false,
      roles: [],
    });
  });

  it("shared, deactivated, no other organization: also block and revoke", () => {
    expect(
      access(desired(shared, { ...adele, active: false }, [], [], { memberOfOtherOrganizations: false })),
    ).toMatchObject({ member: false, blocked: true, revokeAccess: true });
  });

  it("shared, unknown other memberships: no tenant-wide block (membership removal still cuts this organization)", () => {
    expect(access(desired(shared, { ...adele, active: false }, [], []))).toMatchObject({
      member: false,
      blocked: false,
    });
  });

  it("shared, deleted: membership removed, the user is never deleted", () => {
    expect(
      access(desired(shared, { ...adele, deleted: true }, [], [], { memberOfOtherOrganizations: true })),
    ).toMatchObject({ status: "deleted", exists: true, member: false, deleteUser: false });
  });

  it("isolated users belong to no other organization, so whenNoOtherOrganization blocks", () => {
    const m = mappingWith({ policies: { deactivation: { block: "whenNoOtherOrganization", removeMembership: true } } });
    expect(desired(m, { ...adele, active: false }, [], []).blocked).toBe(true);
  });

  it("removeRoles keeps the membership but strips roles", () => {
    const m = mappingWith({ roles, policies: { deactivation: { block: "always", removeRoles: true } } });
    expect(access(desired(m, { ...adele, active: false }, [], []))).toMatchObject({
      member: true,
      blocked: true,
      roles: [],
    });
  });

  it("an invitation is wanted only for an active user of a database connection whose mapping asks for one", () => {
    const m = mappingWith({ policies: { invitation: { send: true, ttlSeconds: 3600 } } });
    expect(desired(m, adele, [], [])).toMatchObject({ invite: true, invitationTtlSeconds: 3600 });
    expect(desired(m, { ...adele, active: false }, [], []).invite).toBe(false);
    expect(desired(isolated, adele, [], []).invite).toBe(false);
  });

  it("reports a user without an email as a problem", () => {
    const m = mappingWith({ profile: { email: "title" } });
    const d = desired(m, fixtureUser("okta-user"), [], []);
    expect(d.email).toBeNull();
    expect(d.problems).toEqual(["profile.email produced no value: the user cannot be created or linked"]);
  });

  it("treats an email that is not an address as no email, and says so", () => {
    const d = desired(mappingWith({ profile: { email: "displayName" } }), adele, [], []);
    expect(d.email).toBeNull();
    expect(d.problems).toEqual([
      'profile.email "Adele Vance" is not an email address: the user cannot be created or linked',
    ]);
  });

  it("reports a source that yields an object instead of a string", () => {
    const m = mappingWith({ profile: { email: "userName", nickname: "name" } });
    expect(desired(m, adele, [], []).problems).toEqual([
      "profile.nickname: the source gave an object; name one of its sub-attributes",
    ]);
  });
});

describe("defaultMapping", () => {
  it("maps email and names from the SCIM core user, no roles, no app_metadata", () => {
    const m = defaultMapping({ connection: "acme-db", userModel: "isolated" });
    const d = desired(m, adele, [], []);
    expect(d).toMatchObject({
      connection: "acme-db",
      connectionType: "database",
      email: "adelev@contoso.com",
      roles: [],
      appMetadata: {},
      ownedAppMetadataKeys: [],
    });
    expect(d.profile).toEqual({
      email: "adelev@contoso.com",
      given_name: "Adele",
      family_name: "Vance",
      name: "Adele Vance",
    });
  });

  it("falls back to an email-shaped userName, and refuses one that is not an address", () => {
    const m = defaultMapping({ connection: "c", userModel: "isolated" });
    const okta = { id: "u", directoryId: "d", active: true, deleted: false };
    expect(desired(m, { ...okta, resource: { userName: "Jane@Example.com" } }, [], []).email).toBe("jane@example.com");
    expect(desired(m, { ...okta, resource: { userName: "jane" } }, [], []).email).toBeNull();
  });

  it("isolated: block + revoke on deactivation and on deletion, never deleting; shared: remove membership, block only when no other organization", () => {
    const isolatedDefault = defaultMapping({ connection: "c", userModel: "isolated" }).policies;
    expect(isolatedDefault.deactivation).toMatchObject({
      block: "always",
      revokeSessions: "always",
      removeMembership: false,
    });
    expect(isolatedDefault.deletion).toMatchObject({ deleteUser: false, block: "always", revokeSessions: "always" });
    const sharedDefault = defaultMapping({ connection: "c", userModel: "shared" }).policies;
    expect(sharedDefault.deactivation).toMatchObject({ block: "whenNoOtherOrganization", removeMembership: true });
    expect(sharedDefault.deletion).toMatchObject({ deleteUser: false, removeMembership: true });
  });

  it("for an enterprise connection maps the email only: the IdP owns the profile", () => {
    const m = defaultMapping({ connection: "okta-acme", userModel: "isolated", connectionType: "enterprise" });
    const d = desired(m, adele, [], []);
    expect(d).toMatchObject({ connectionType: "enterprise", email: "adelev@contoso.com" });
    expect(Object.keys(m.profile)).toEqual(["email"]);
    // Auth0 refuses to update an IdP user's email, so nothing of the profile is written.
    expect(d.profile).toEqual({});
    expect(m.policies.deletion.deleteUser).toBe(false);
  });

  it("is itself a valid mapping document", () => {
    const m = defaultMapping({ connection: "c", userModel: "shared", connectionType: "enterprise" });
    expect(parseMapping(JSON.parse(JSON.stringify(m)))).toEqual(m);
  });
});
