import { describe, expect, it } from "vitest";
import { desired, type DirectoryGroup, type MappingInput } from "../../src/mapping/index.js";
import { fixtureGroups, fixtureUser, group, mappingWith, type UserFixture } from "./helpers.js";

type Roles = NonNullable<MappingInput["roles"]>;
const enterprise = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
const okta = fixtureGroups("okta-groups");
const entra = fixtureGroups("entra-groups");
const byName = (all: DirectoryGroup[], ...names: string[]) => all.filter((g) => names.includes(g.displayName));

function rolesOf(roles: Roles, fixture: UserFixture, groups: DirectoryGroup[]): string[] {
  return desired(mappingWith({ roles }), fixtureUser(fixture), groups, []).roles;
}

describe("role rules, over captured Okta and Entra payloads", () => {
  it.each<[string, Roles, UserFixture, DirectoryGroup[], string[]]>([
    [
      "group displayName, exact",
      { rules: [{ when: { group: "Eng-Admins" }, grant: ["admin"] }] },
      "okta-user",
      byName(okta, "Eng-Admins"),
      ["admin"],
    ],
    [
      "group displayName ignores case",
      { rules: [{ when: { group: "eng-admins" }, grant: ["admin"] }] },
      "okta-user",
      byName(okta, "Eng-Admins"),
      ["admin"],
    ],
    [
      "group displayName, case-sensitive on request",
      {
        rules: [{ when: { group: { displayName: { equals: "eng-admins", caseSensitive: true } } }, grant: ["admin"] }],
      },
      "okta-user",
      byName(okta, "Eng-Admins"),
      [],
    ],
    [
      "group displayName, glob",
      { rules: [{ when: { group: { displayName: { glob: "Eng-*" } } }, grant: ["eng"] }] },
      "okta-user",
      byName(okta, "Eng-Platform"),
      ["eng"],
    ],
    [
      "group glob with ?",
      { rules: [{ when: { group: { displayName: { glob: "Support-L?" } } }, grant: ["support"] }] },
      "okta-user",
      byName(okta, "Support-L2"),
      ["support"],
    ],
    [
      "group glob does not match",
      { rules: [{ when: { group: { displayName: { glob: "Eng-*" } } }, grant: ["eng"] }] },
      "okta-user",
      byName(okta, "Support-L2"),
      [],
    ],
    [
      "group displayName, oneOf",
      { rules: [{ when: { group: { displayName: { oneOf: ["Support-L1", "Support-L2"] } } }, grant: ["support"] }] },
      "okta-user",
      okta,
      ["support"],
    ],
    [
      "group externalId, exact",
      { rules: [{ when: { group: { externalId: "7d1b3c0e-5f2a-4c8e-9b61-2f0d8a4e6c13" } }, grant: ["admin"] }] },
      "entra-user",
      entra,
      ["admin"],
    ],
    [
      "group externalId, glob",
      { rules: [{ when: { group: { externalId: { glob: "8aa1a0c0-*" } } }, grant: ["fin"] }] },
      "entra-user",
      entra,
      ["fin"],
    ],
    [
      "group externalId never matches a group without one (Okta)",
      { rules: [{ when: { group: { externalId: { glob: "*" } } }, grant: ["x"] }] },
      "okta-user",
      okta,
      [],
    ],
    [
      "group displayName and externalId must both hold",
      {
        rules: [
          { when: { group: { displayName: "IT", externalId: "8aa1a0c0-c4c3-4bc0-b4a5-2ef676900159" } }, grant: ["x"] },
        ],
      },
      "entra-user",
      entra,
      [],
    ],
    [
      "SCIM role value (Entra app role)",
      { rules: [{ when: { scimRole: "Admin" }, grant: ["admin"] }] },
      "entra-user",
      [],
      ["admin"],
    ],
    [
      "SCIM role, glob",
      { rules: [{ when: { scimRole: { glob: "Reader.*" } }, grant: ["viewer"] }] },
      "entra-user",
      [],
      ["viewer"],
    ],
    [
      "SCIM role sent as a JSON string by an Entra PATCH",
      { rules: [{ when: { scimRole: "Reviewer" }, grant: ["reviewer"] }] },
      "entra-user-patched-roles",
      [],
      ["reviewer"],
    ],
    [
      "SCIM role, oneOf",
      { rules: [{ when: { scimRole: { oneOf: ["Owner", "Admin"] } }, grant: ["admin"] }] },
      "entra-user-patched-roles",
      [],
      ["admin"],
    ],
    [
      "SCIM role absent (Okta sends none)",
      { rules: [{ when: { scimRole: "Admin" }, grant: ["admin"] }] },
      "okta-user",
      [],
      [],
    ],
    [
      "attribute equals (extension)",
      { rules: [{ when: { attribute: { path: `${enterprise}:department`, equals: "finance" } }, grant: ["fin"] }] },
      "entra-user",
      [],
      ["fin"],
    ],
    [
      "attribute equals, case-sensitive",
      {
        rules: [
          {
            when: { attribute: { path: `${enterprise}:department`, equals: "finance", caseSensitive: true } },
            grant: ["fin"],
          },
        ],
      },
      "entra-user",
      [],
      [],
    ],
    [
      "attribute glob",
      { rules: [{ when: { attribute: { path: "title", glob: "*Manager" } }, grant: ["manager"] }] },
      "entra-user",
      [],
      ["manager"],
    ],
    [
      "attribute oneOf",
      { rules: [{ when: { attribute: { path: "locale", oneOf: ["en-US", "en-GB"] } }, grant: ["en"] }] },
      "okta-user",
      [],
      ["en"],
    ],
    [
      "attribute equals a boolean",
      { rules: [{ when: { attribute: { path: "emails.primary", equals: true } }, grant: ["p"] }] },
      "okta-user",
      [],
      ["p"],
    ],
    [
      "attribute present",
      { rules: [{ when: { attribute: { path: `${enterprise}:manager.value`, present: true } }, grant: ["managed"] }] },
      "entra-user",
      [],
      ["managed"],
    ],
    [
      "attribute absent",
      { rules: [{ when: { attribute: { path: `${enterprise}:manager`, present: false } }, grant: ["no-manager"] }] },
      "okta-user",
      [],
      ["no-manager"],
    ],
    [
      "anyOf: one alternative holds",
      { rules: [{ when: { anyOf: [{ group: "IT" }, { scimRole: "Nope" }] }, grant: ["it"] }] },
      "entra-user",
      entra,
      ["it"],
    ],
    [
      "anyOf: none holds",
      { rules: [{ when: { anyOf: [{ group: "HR" }, { scimRole: "Nope" }] }, grant: ["it"] }] },
      "entra-user",
      entra,
      [],
    ],
    [
      "keys of one condition all hold (and)",
      {
        rules: [
          {
            when: { scimRole: "Admin", attribute: { path: `${enterprise}:department`, equals: "Finance" } },
            grant: ["fin-admin"],
          },
        ],
      },
      "entra-user",
      [],
      ["fin-admin"],
    ],
    [
      "keys of one condition: one fails",
      { rules: [{ when: { scimRole: "Admin", group: "HR" }, grant: ["x"] }] },
      "entra-user",
      entra,
      [],
    ],
    [
      "matching rules add up, sorted and de-duplicated",
      {
        rules: [
          { when: { group: { displayName: { glob: "Eng-*" } } }, grant: ["member", "eng"] },
          { when: { group: "Eng-Admins" }, grant: ["admin", "member"] },
        ],
      },
      "okta-user",
      okta,
      ["admin", "eng", "member"],
    ],
    [
      "stop: rules below a matching stop rule do not apply",
      {
        rules: [
          { when: { group: "Eng-Admins" }, grant: ["admin"], stop: true },
          { when: { group: { displayName: { glob: "Eng-*" } } }, grant: ["eng"] },
        ],
      },
      "okta-user",
      okta,
      ["admin"],
    ],
    [
      "stop: rules above still apply",
      {
        rules: [
          { when: { group: "Support-L2" }, grant: ["support"] },
          { when: { group: "Eng-Admins" }, grant: ["admin"], stop: true },
          { when: { group: "Eng-Platform" }, grant: ["eng"] },
        ],
      },
      "okta-user",
      okta,
      ["admin", "support"],
    ],
    [
      "stop rule that does not match changes nothing",
      {
        rules: [
          { when: { group: "HR" }, grant: ["hr"], stop: true },
          { when: { group: "Eng-Platform" }, grant: ["eng"] },
        ],
      },
      "okta-user",
      okta,
      ["eng"],
    ],
    [
      "empty grant with stop: no roles, and no default",
      { rules: [{ when: { group: "Contractors" }, grant: [], stop: true }], default: ["member"] },
      "okta-user",
      okta,
      [],
    ],
    [
      "default roles when no rule matches",
      { rules: [{ when: { group: "HR" }, grant: ["hr"] }], default: ["member", "viewer"] },
      "okta-user",
      okta,
      ["member", "viewer"],
    ],
    [
      "no default roles when a rule matches",
      { rules: [{ when: { group: "Eng-Admins" }, grant: ["admin"] }], default: ["member"] },
      "okta-user",
      okta,
      ["admin"],
    ],
  ])("%s", (_name, roles, fixture, groups, expected) => {
    expect(rolesOf(roles, fixture, groups)).toEqual(expected);
  });

  it("a group rename moves the user to the rule of the new name", () => {
    const roles: Roles = { rules: [{ when: { group: "Administrators" }, grant: ["admin"] }], default: ["member"] };
    expect(rolesOf(roles, "okta-user", [group("Eng-Admins")])).toEqual(["member"]);
    expect(rolesOf(roles, "okta-user", [group("Administrators")])).toEqual(["admin"]);
  });
});
