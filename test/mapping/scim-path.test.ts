import { describe, expect, it } from "vitest";
import { parseScimPath, resolveScimPath } from "../../src/mapping/scim-path.js";
import { fixtureUser } from "./helpers.js";

const okta = fixtureUser("okta-user").resource;
const entra = fixtureUser("entra-user").resource;
const entraPatched = fixtureUser("entra-user-patched-roles").resource;
const enterprise = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";

describe("SCIM attribute paths resolve against captured payloads", () => {
  it.each([
    ["simple attribute", okta, "userName", ["test.user@okta.local"], false],
    ["attribute names ignore case", okta, "USERNAME", ["test.user@okta.local"], false],
    ["sub-attribute", entra, "name.givenName", ["Adele"], false],
    ["filter on a boolean", okta, "emails[primary eq true].value", ["test.user@okta.local"], true],
    ["filter value ignores case", entra, 'emails[type eq "WORK"].value', ["AdeleV@Contoso.com"], true],
    ['Entra\'s "True" string equals true', entraPatched, "roles[primary eq true].value", ["Admin"], true],
    ['a "True" literal equals the string', entraPatched, 'roles[primary eq "True"].value', ["Admin"], true],
    [
      "filter with and",
      entra,
      'roles[type eq "WindowsAzureActiveDirectoryRole" and value sw "Read"].value',
      ["Reader.All"],
      true,
    ],
    ["filter with or", entra, 'roles[value eq "nope" or display eq "admin"].value', ["Admin"], true],
    ["pr operator", entra, "emails[type pr].value", ["AdeleV@Contoso.com"], true],
    ["unfiltered multi-valued gives a list", entra, "roles.value", ["Admin", "Reader.All"], true],
    ["extension URN attribute", entra, `${enterprise}:department`, ["Finance"], false],
    [
      "extension URN sub-attribute",
      entra,
      `${enterprise}:manager.value`,
      ["2c2f6fb8-254f-492e-b7fe-c09c5a61c8a2"],
      false,
    ],
    ["missing attribute", okta, "title", [], false],
    ["no element matches the filter", okta, 'emails[type eq "home"].value', [], true],
  ])("%s: %s", (_name, resource, path, values, crossesList) => {
    const resolved = resolveScimPath(resource, parseScimPath(path));
    expect(resolved.values).toEqual(values);
    if (values.length > 0) expect(resolved.multi).toBe(crossesList && !path.includes("["));
  });

  it("keeps the first match of a filtered segment only", () => {
    const resource = {
      emails: [
        { type: "work", value: "a@x" },
        { type: "work", value: "b@x" },
      ],
    };
    expect(resolveScimPath(resource, parseScimPath('emails[type eq "work"].value')).values).toEqual(["a@x"]);
  });

  it.each([
    ["", "the path is empty"],
    ["emails[primary eq true.value", '"true.value" is not a value'],
    ["emails[type eq work].value", '"work" is not a value (quote strings)'],
    ['emails[type like "w"].value', 'unknown operator "like"'],
    ['emails[type eq "w"', 'expected "and", "or" or "]"'],
    ['emails[type eq "w].value', "unterminated string"],
    ["name..givenName", "expected an attribute name"],
    ["1name", "expected an attribute name"],
    ["name givenName", 'unexpected " "'],
    [`${enterprise}:`, "names a schema URN but no attribute"],
    ["a".repeat(257), "longer than 256 characters"],
  ])("refuses %j: %s", (path, reason) => {
    expect(() => parseScimPath(path)).toThrow(reason);
  });
});
