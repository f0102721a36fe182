import { describe, expect, it } from "vitest";
import {
  connectionWritability,
  appliedFromDesired,
  applyOperation,
  desired,
  initialApplied,
  plan,
  type AppliedState,
  type DesiredUser,
  type MappingInput,
  type Operation,
} from "../../src/mapping/index.js";
import { fixtureUser, mappingWith } from "./helpers.js";

const rolesSpec = { rules: [{ when: { scimRole: "Admin" }, grant: ["admin"] }], default: ["member"] };
const adele = fixtureUser("entra-user");
const want = (change: Partial<MappingInput> = {}, user = adele, context = {}): DesiredUser =>
  desired(mappingWith({ roles: rolesSpec, ...change }), user, [], [], context);
const types = (ops: Operation[]): string[] => ops.map((o) => o.type);

/** Runs a plan with successful results and returns the state it leaves. */
function execute(d: DesiredUser, a: AppliedState, created = true): AppliedState {
  return plan(d, a).reduce((s, op) => applyOperation(s, op, { auth0UserId: s.auth0UserId ?? "auth0|new", created }), a);
}

describe("plan: the operations and their order (docs/design.md, What Auth0 sees)", () => {
  it("new user, database connection: create, then membership, then roles", () => {
    const ops = plan(want(), initialApplied());
    expect(types(ops)).toEqual(["createUser", "addMember", "addRoles"]);
    expect(ops[0]).toMatchObject({ connection: "acme-db", email: "adelev@contoso.com", appMetadata: {} });
    expect(ops[2]).toMatchObject({ roles: ["admin"] });
  });

  it("the invitation comes last, after creation", () => {
    expect(types(plan(want({ policies: { invitation: { send: true } } }), initialApplied()))).toEqual([
      "createUser",
      "addMember",
      "addRoles",
      "sendInvitation",
    ]);
  });

  it("new user, enterprise connection: link (never create), then write what is unknown, unblock last", () => {
    const m = {
      connection: { name: "globex-entra", type: "enterprise" as const },
      profile: { email: "userName", name: "displayName" },
    };
    const context = {
      connection: connectionWritability({ strategy: "waad", setUserRootAttributes: "on_first_login" }),
    };
    const ops = plan(want(m, adele, context), initialApplied());
    expect(types(ops)).toEqual(["linkUser", "updateUser", "addMember", "addRoles", "unblock"]);
    expect(ops[1]).toMatchObject({ profile: { name: "Adele Vance" } });
  });

  it("never writes root attributes an enterprise connection syncs at each login (Auth0's default), nor an IdP user's email", () => {
    const m = {
      connection: { name: "globex-entra", type: "enterprise" as const },
      profile: { email: "userName", name: "displayName" },
    };
    for (const context of [{}, { connection: connectionWritability({ strategy: "waad" }) }]) {
      const d = want(m, adele, context);
      expect(types(plan(d, initialApplied()))).toEqual(["linkUser", "addMember", "addRoles", "unblock"]);
      expect(Object.keys(d.unwritable).sort()).toEqual(["email", "name"]);
      expect(d.unwritable.name).toMatch(/on_each_login/);
      // The email is still the key that links the user.
      expect(d.emailAsSent).not.toBeNull();
    }
  });

  it("never creates a user only to deprovision it, nor one without an email", () => {
    expect(plan(want({}, { ...adele, active: false }), initialApplied())).toEqual([]);
    expect(plan(want({}, { ...adele, deleted: true }), initialApplied())).toEqual([]);
    expect(plan(want({ profile: { email: "title" } }), initialApplied())).toEqual([]);
  });

  it("isolated deactivation: block, then revoke access", () => {
    const applied = appliedFromDesired(want());
    expect(types(plan(want({}, { ...adele, active: false }), applied))).toEqual(["block", "revokeAccess"]);
  });

  it("shared deactivation while another organization holds the user: roles first, then membership; no block", () => {
    const m = { userModel: "shared" as const };
    const applied = appliedFromDesired(want(m));
    expect(types(plan(want(m, { ...adele, active: false }, { memberOfOtherOrganizations: true }), applied))).toEqual([
      "removeRoles",
      "removeMember",
    ]);
  });

  it("shared deactivation with no other organization: cut access first, then roles and membership", () => {
    const m = { userModel: "shared" as const };
    const applied = appliedFromDesired(want(m));
    expect(types(plan(want(m, { ...adele, active: false }, { memberOfOtherOrganizations: false }), applied))).toEqual([
      "block",
      "revokeAccess",
      "removeRoles",
      "removeMember",
    ]);
  });

  it("isolated deletion: block and revoke (reversible) before the delete the guard may pause", () => {
    const applied = appliedFromDesired(want());
    expect(types(plan(want({}, { ...adele, deleted: true }), applied))).toEqual([
      "block",
      "revokeAccess",
      "deleteUser",
    ]);
  });

  it("reactivation restores membership and roles before unblocking", () => {
    const m = { userModel: "shared" as const };
    let applied = execute(
      want(m, { ...adele, active: false }, { memberOfOtherOrganizations: false }),
      appliedFromDesired(want(m)),
    );
    expect(applied).toMatchObject({ blocked: true, member: false, roles: [], accessRevoked: true });
    expect(types(plan(want(m), applied))).toEqual(["addMember", "addRoles", "unblock"]);
    applied = execute(want(m), applied);
    expect(applied.accessRevoked).toBe(false); // the next deprovisioning revokes again
  });

  it("a role change removes the old role before adding the new one", () => {
    const applied = appliedFromDesired(want());
    const demoted = want({}, { ...adele, resource: { ...adele.resource, roles: [] } });
    expect(plan(demoted, applied)).toEqual([
      { type: "removeRoles", irreversible: false, roles: ["admin"] },
      { type: "addRoles", irreversible: false, roles: ["member"] },
    ]);
  });

  it("updates only the profile fields that changed", () => {
    const m = { profile: { email: "emails[primary eq true].value", name: "displayName", nickname: "name.givenName" } };
    const applied = appliedFromDesired(want(m));
    const renamed = want(m, { ...adele, resource: { ...adele.resource, displayName: "Adele V." } });
    expect(plan(renamed, applied)).toEqual([
      { type: "updateUser", irreversible: false, profile: { name: "Adele V." }, appMetadata: {} },
    ]);
  });

  it("clears a profile field the bridge wrote, leaves alone one it never wrote, and never clears the email", () => {
    const m = { profile: { email: "emails[primary eq true].value", nickname: "title", picture: "photos.value" } };
    const applied: AppliedState = {
      ...appliedFromDesired(want(m)),
      profile: { email: "adelev@contoso.com", nickname: "Retail Manager" },
    };
    const noTitle = want(m, { ...adele, resource: { ...adele.resource, title: undefined, emails: [] } });
    expect(plan(noTitle, applied)).toEqual([
      { type: "updateUser", irreversible: false, profile: { nickname: null }, appMetadata: {} },
    ]);
  });

  it("deletes an owned app_metadata key that is no longer produced, and never touches keys it does not own", () => {
    const m = {
      app_metadata: {
        keys: { department: "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department", title: "title" },
      },
    };
    const applied: AppliedState = {
      ...appliedFromDesired(want(m)),
      appMetadata: { department: "Finance", title: "Retail Manager", plan: "gold" },
    };
    const noTitle = want(m, { ...adele, resource: { ...adele.resource, title: undefined } });
    expect(plan(noTitle, applied)).toEqual([
      { type: "updateUser", irreversible: false, profile: {}, appMetadata: { title: null } },
    ]);
  });

  it("after adopting an existing user (createUser found one), planning again unblocks it and sends no invitation", () => {
    const d = want({ policies: { invitation: { send: true } } });
    const adopted = plan(d, initialApplied()).reduce(
      (s, op) => applyOperation(s, op, { auth0UserId: "auth0|old", created: false }),
      initialApplied(),
    );
    expect(types(plan(d, adopted))).toEqual(["unblock"]);
    expect(adopted.auth0UserId).toBe("auth0|old");
  });

  it("a linkUser that finds nothing leaves the state as it was (the user appears at first login)", () => {
    const d = want({ connection: { name: "globex-entra", type: "enterprise" } });
    const [link] = plan(d, initialApplied());
    expect(applyOperation(initialApplied(), link!, { auth0UserId: null })).toEqual({
      ...initialApplied(),
      awaitingFirstLogin: true,
    });
  });

  it("is empty when the applied state already matches", () => {
    for (const user of [adele, { ...adele, active: false }, { ...adele, deleted: true }]) {
      expect(plan(want({}, user), appliedFromDesired(want({}, user)))).toEqual([]);
    }
  });

  it("marks exactly deleteUser and removeMember as irreversible, and never sets a password", () => {
    const ops = [
      ...plan(want(), initialApplied()),
      ...plan(
        want({ userModel: "shared" }, { ...adele, active: false }, { memberOfOtherOrganizations: false }),
        appliedFromDesired(want({ userModel: "shared" })),
      ),
      ...plan(want({}, { ...adele, deleted: true }), appliedFromDesired(want())),
    ];
    expect(
      ops
        .filter((o) => o.irreversible)
        .map((o) => o.type)
        .sort(),
    ).toEqual(["deleteUser", "removeMember"]);
    expect(JSON.stringify(ops)).not.toContain("password");
  });

  it("applyOperation refuses a createUser result without the new user id", () => {
    const [create] = plan(want(), initialApplied());
    expect(() => applyOperation(initialApplied(), create!, {})).toThrow("auth0UserId");
  });
});
