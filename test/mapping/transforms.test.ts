import { describe, expect, it } from "vitest";
import { desired, type MappingInput } from "../../src/mapping/index.js";
import { fixtureGroups, fixtureUser, mappingWith, type UserFixture } from "./helpers.js";

const enterprise = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
type Source = NonNullable<MappingInput["profile"]["nickname"]>;

/** The nickname a source gives for a fixture user (profile fields are strings or null). */
function nickname(fixture: UserFixture, source: Source): string | null | undefined {
  const m = mappingWith({ profile: { email: "userName", nickname: source } });
  return desired(m, fixtureUser(fixture), [], []).profile.nickname;
}

describe("transforms, over captured Okta and Entra payloads", () => {
  it.each<[string, UserFixture, Source, string | null]>([
    ["plain path", "entra-user", "displayName", "Adele Vance"],
    ["lowercase", "entra-user", { from: "userName", transforms: ["lowercase"] }, "adelev@contoso.onmicrosoft.com"],
    ["uppercase", "okta-user", { from: "name.familyName", transforms: ["uppercase"] }, "USER"],
    ["trim", "okta-user-put", { from: "emails[primary eq true].value", transforms: ["trim"] }, "Test.User@Okta.Local"],
    [
      "trim then lowercase",
      "okta-user-put",
      { from: "emails[primary eq true].value", transforms: ["trim", "lowercase"] },
      "test.user@okta.local",
    ],
    ["template source", "okta-user", { template: "{name.familyName}, {name.givenName}" }, "User, Test"],
    [
      "template source with an extension path",
      "entra-user",
      { template: "{displayName} ({" + enterprise + ":department})" },
      "Adele Vance (Finance)",
    ],
    ["template source with every placeholder empty is null", "okta-user", { template: "{title} / {nickName}" }, null],
    [
      "template transform with {value}",
      "okta-user",
      { from: "externalId", transforms: [{ template: "okta:{value}" }] },
      "okta:00ujl29u0le5T6Aj10h7",
    ],
    ["template with literal braces", "okta-user", { template: "{{{userName}}}" }, "{test.user@okta.local}"],
    ["default when missing", "okta-user", { from: "title", transforms: [{ default: "n/a" }] }, "n/a"],
    [
      "default keeps a present value",
      "entra-user",
      { from: "title", transforms: [{ default: "n/a" }] },
      "Retail Manager",
    ],
    ["first path with a value wins", "okta-user", { from: ["nickName", "title", "name.givenName"] }, "Test"],
    [
      "lookup",
      "entra-user",
      { from: `${enterprise}:department`, transforms: [{ lookup: { Finance: "FIN", Sales: "SAL" } }] },
      "FIN",
    ],
    [
      "lookup ignoring case",
      "entra-user",
      { from: `${enterprise}:division`, transforms: [{ lookup: { "North America": "na" }, ignoreCase: true }] },
      "na",
    ],
    [
      "lookup is case-sensitive by default",
      "entra-user",
      { from: `${enterprise}:division`, transforms: [{ lookup: { "North America": "na" } }] },
      null,
    ],
    [
      "lookup miss then default",
      "entra-user",
      { from: "title", transforms: [{ lookup: { CEO: "exec" } }, { default: "staff" }] },
      "staff",
    ],
    [
      "lookup otherwise keep",
      "entra-user",
      { from: "title", transforms: [{ lookup: { CEO: "exec" }, otherwise: "keep" }] },
      "Retail Manager",
    ],
    [
      "capture group 1 by default",
      "okta-user",
      { from: "userName", transforms: [{ capture: "^([^@]+)@" }] },
      "test.user",
    ],
    [
      "capture a numbered group",
      "entra-user",
      { from: "userName", transforms: [{ capture: "^(\\w+)@(\\w+)", group: 2 }] },
      "contoso",
    ],
    [
      "capture a named group",
      "entra-user",
      { from: "userName", transforms: [{ capture: "@(?<tenant>[a-z]+)\\.", group: "tenant" }] },
      "contoso",
    ],
    [
      "capture ignoring case",
      "entra-user",
      { from: "userName", transforms: [{ capture: "^(adelev)", ignoreCase: true }] },
      "AdeleV",
    ],
    [
      "capture without groups keeps the whole match",
      "okta-user",
      { from: "externalId", transforms: [{ capture: "[0-9]+" }] },
      "00",
    ],
    [
      "capture with no match gives null",
      "okta-user",
      { from: "displayName", transforms: [{ capture: "^(\\d+)$" }] },
      null,
    ],
    [
      "capture of a number",
      "entra-user",
      { from: `${enterprise}:employeeNumber`, transforms: [{ capture: "^(\\d{3})" }] },
      "701",
    ],
    ["constant", "okta-user", { value: "fixed" }, "fixed"],
    [
      "an empty result is null (Auth0 refuses empty names)",
      "okta-user",
      { from: "displayName", transforms: [{ capture: "^(x*)" }] },
      null,
    ],
  ])("%s", (_name, fixture, source, expected) => {
    expect(nickname(fixture, source)).toBe(expected);
  });

  it("a value longer than 256 characters never reaches the pattern (ReDoS input cap)", () => {
    const long = { userName: `${"a".repeat(300)}@x.com`, emails: [] };
    const m = mappingWith({
      profile: { email: "userName", nickname: { from: "userName", transforms: [{ capture: "^([^@]+)@" }] } },
    });
    expect(
      desired(m, { id: "u", directoryId: "d", active: true, deleted: false, resource: long }, [], []).profile.nickname,
    ).toBeNull();
  });

  it("email is always lower-cased and trimmed, whatever the mapping says", () => {
    const m = mappingWith({ profile: { email: "emails[primary eq true].value" } });
    const d = desired(m, fixtureUser("okta-user-put"), [], []);
    expect(d.email).toBe("test.user@okta.local");
    expect(d.profile.email).toBe("test.user@okta.local");
  });
});

describe("app_metadata values", () => {
  const groups = fixtureGroups("okta-groups");
  it("maps keys under a namespace as one object, dropping keys without a value", () => {
    const m = mappingWith({
      app_metadata: {
        namespace: "acme",
        keys: {
          oktaId: "externalId",
          title: "title",
          eng: { groups: "displayName", match: "Eng-*" },
          roles: "roles.value",
        },
      },
    });
    const d = desired(m, fixtureUser("okta-user"), [...groups].reverse(), []);
    expect(d.ownedAppMetadataKeys).toEqual(["acme"]);
    expect(d.appMetadata).toEqual({ acme: { oktaId: "00ujl29u0le5T6Aj10h7", eng: ["Eng-Admins", "Eng-Platform"] } });
  });

  it("without a namespace every key is owned and a missing value is null (deleted in Auth0)", () => {
    const m = mappingWith({
      app_metadata: { keys: { department: `${enterprise}:department`, title: "title", roles: "roles.value" } },
    });
    expect(desired(m, fixtureUser("entra-user"), [], []).appMetadata).toEqual({
      department: "Finance",
      title: "Retail Manager",
      roles: ["Admin", "Reader.All"],
    });
    const okta = desired(m, fixtureUser("okta-user"), [], []);
    expect(okta.appMetadata).toEqual({ department: null, title: null, roles: null });
    expect(okta.ownedAppMetadataKeys).toEqual(["department", "roles", "title"]);
  });

  it("a namespace with nothing in it is null, so Auth0 deletes the key", () => {
    const m = mappingWith({ app_metadata: { namespace: "acme", keys: { title: "title" } } });
    expect(desired(m, fixtureUser("okta-user"), [], []).appMetadata).toEqual({ acme: null });
  });

  it("transforms apply to each element of a list", () => {
    const m = mappingWith({
      app_metadata: { keys: { roles: { from: "roles.value", transforms: ["lowercase", { capture: "^([a-z]+)" }] } } },
    });
    expect(desired(m, fixtureUser("entra-user"), [], []).appMetadata.roles).toEqual(["admin", "reader"]);
  });
});
