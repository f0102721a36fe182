/**
 * Which mapped fields Auth0 lets the bridge write, per connection (Auth0 "Configure Connection Sync
 * with Auth0"): validation warns about the others, and desired() leaves them out.
 */
import { describe, expect, it } from "vitest";
import { connectionWritability, desired, unwrittenFields } from "../../src/mapping/index.js";
import { fixtureUser, mappingWith } from "./helpers.js";

const profile = {
  email: "userName",
  given_name: "name.givenName",
  family_name: "name.familyName",
  name: "displayName",
};

describe("connection sync and mapped fields", () => {
  it("warns that an Okta connection syncing at each login (Auth0's default) will not take root attributes or email", () => {
    const warnings = unwrittenFields({ profile }, connectionWritability({ strategy: "okta" }));
    expect(warnings.map((w) => w.path)).toEqual([
      "profile.email",
      "profile.given_name",
      "profile.family_name",
      "profile.name",
    ]);
    expect(warnings.find((w) => w.field === "given_name")!.message).toMatch(
      /set_user_root_attributes: on_each_login.*on_first_login or never_on_login/,
    );
    expect(warnings.find((w) => w.field === "email")!.message).toMatch(/still used to find the user/);
  });

  it("lets root attributes through when the connection syncs only at first login or never; never the IdP's email", () => {
    for (const setting of ["on_first_login", "never_on_login"]) {
      const warnings = unwrittenFields(
        { profile },
        connectionWritability({ strategy: "waad", setUserRootAttributes: setting }),
      );
      expect(warnings.map((w) => w.path)).toEqual(["profile.email"]);
    }
  });

  it("has nothing to say for a database or passwordless connection", () => {
    for (const strategy of ["auth0", "email", "sms"])
      expect(unwrittenFields({ profile }, connectionWritability({ strategy }))).toEqual([]);
  });

  it("desired() leaves the refused fields out of the profile but keeps the email, in the IdP's casing, for the lookup", () => {
    const mapping = mappingWith({
      connection: { name: "acme-okta", type: "enterprise" },
      profile: { email: "userName", given_name: "name.givenName" },
    });
    const user = fixtureUser("okta-user");
    const d = desired(mapping, { ...user, resource: { ...user.resource, userName: "Ann.Lee@Acme.test" } }, [], [], {
      connection: connectionWritability({ strategy: "okta" }),
    });
    expect(d.profile).toEqual({});
    expect(d.emailAsSent).toBe("Ann.Lee@Acme.test");
    expect(d.email).toBe("ann.lee@acme.test");
    expect(Object.keys(d.unwritable).sort()).toEqual(["email", "given_name"]);
  });
});
