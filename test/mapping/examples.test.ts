import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import {
  desired,
  initialApplied,
  loadMappingFile,
  mappingJsonSchemaText,
  plan,
  type MappingDocument,
} from "../../src/mapping/index.js";
import { fixtureGroups, fixtureUser } from "./helpers.js";

const dir = join(import.meta.dirname, "..", "..", "mappings");
const example = (name: string): MappingDocument => loadMappingFile(readFileSync(join(dir, name), "utf8"), name);
const okta = fixtureGroups("okta-groups");
const entra = fixtureGroups("entra-groups");
const named = (groups: typeof okta, ...names: string[]) => groups.filter((g) => names.includes(g.displayName));

describe("mappings/", () => {
  it("schema.json is generated from the current zod schema (npx tsx src/main.ts mapping schema --write)", () => {
    expect(readFileSync(join(dir, "schema.json"), "utf8")).toBe(mappingJsonSchemaText());
  });

  it.each(readdirSync(dir).filter((f) => f.endsWith(".yaml")))("%s is a valid, commented mapping", (name) => {
    const text = readFileSync(join(dir, name), "utf8");
    expect(text).toMatch(/^# yaml-language-server: \$schema=\.\/schema\.json/);
    expect(text.split("\n").filter((l) => l.trim().startsWith("#")).length).toBeGreaterThan(3);
    expect(() => example(name)).not.toThrow();
  });

  it("okta-groups.yaml: pushed groups decide the roles", () => {
    const m = example("okta-groups.yaml");
    const user = fixtureUser("okta-user");
    expect(desired(m, user, named(okta, "Eng-Admins", "Eng-Platform"), []).roles).toEqual(["admin"]);
    expect(desired(m, user, named(okta, "Eng-Platform", "Support-L2"), []).roles).toEqual([
      "engineer",
      "member",
      "support",
    ]);
    expect(desired(m, user, named(okta, "Contractors", "Eng-Platform"), []).roles).toEqual([]);
    expect(desired(m, user, [], []).roles).toEqual(["member"]);
    const d = desired(m, user, okta, []);
    expect(d.profile).toMatchObject({ email: "test.user@okta.local", nickname: "test.user", name: "Test User" });
    expect(d.appMetadata).toEqual({ acme: { oktaId: "00ujl29u0le5T6Aj10h7", groups: ["Eng-Admins", "Eng-Platform"] } });
  });

  it("entra-app-roles.yaml: app roles (also in Entra's PATCH form) and enterprise attributes", () => {
    const m = example("entra-app-roles.yaml");
    const adele = desired(m, fixtureUser("entra-user"), named(entra, "Finance"), []);
    expect(adele.roles).toEqual(["admin", "viewer"]);
    expect(adele.email).toBe("adelev@contoso.com");
    expect(adele.appMetadata).toEqual({
      department: "Finance",
      employee_number: "701984",
      cost_center: "CC-4410",
      region: "na",
    });
    const megan = desired(m, fixtureUser("entra-user-patched-roles"), [], []);
    expect(megan.roles).toEqual(["admin", "finance-reviewer"]);
    expect(megan.appMetadata).toMatchObject({ cost_center: "unassigned", region: "other", employee_number: null });
    expect(desired(m, fixtureUser("okta-user"), named(entra, "Break Glass"), []).roles).toEqual(["admin"]);
    expect(plan(adele, initialApplied())[0]).toMatchObject({ type: "linkUser", connection: "globex-entra" });
  });

  it("isolated-database.yaml: creates the user, then sends the invitation", () => {
    const m = example("isolated-database.yaml");
    const d = desired(m, fixtureUser("okta-user"), [], []);
    expect(d.profile).toMatchObject({ username: "test.user", name: "Test User" });
    expect(d.roles).toEqual(["employee"]);
    expect(plan(d, initialApplied()).map((o) => o.type)).toEqual([
      "createUser",
      "addMember",
      "addRoles",
      "sendInvitation",
    ]);
    expect(desired(m, fixtureUser("entra-user"), [], []).roles).toEqual(["manager"]);
  });

  it("shared-users.yaml: deactivation ends this organization's access without locking the user out of others", () => {
    const m = example("shared-users.yaml");
    const user = { ...fixtureUser("entra-user"), active: false };
    expect(desired(m, user, [], [], { memberOfOtherOrganizations: true })).toMatchObject({
      member: false,
      blocked: false,
      revokeAccess: false,
      exists: true,
    });
    expect(desired(m, user, [], [], { memberOfOtherOrganizations: false })).toMatchObject({
      member: false,
      blocked: true,
      revokeAccess: true,
    });
    expect(desired(m, { ...user, deleted: true }, [], [])).toMatchObject({
      exists: true,
      deleteUser: false,
      member: false,
    });
  });
});
