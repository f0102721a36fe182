import { describe, expect, it } from "vitest";
import { BridgeError } from "../../src/errors.js";
import {
  checkMappingFile,
  loadMappingFile,
  MappingError,
  parseMapping,
  validateMapping,
} from "../../src/mapping/index.js";

// Test documents are deliberately malformed, so they are built untyped.
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- wrong shapes on purpose, reached into at any depth
type Doc = Record<string, any>;

const base = (): Doc => ({
  connection: { name: "acme-db", type: "database" },
  userModel: "isolated",
  profile: { email: "emails[primary eq true].value", nickname: { from: "userName", transforms: ["lowercase"] } },
  app_metadata: { namespace: "acme", keys: { dept: "title" } },
  roles: { rules: [{ when: { group: "Eng-Admins" }, grant: ["admin"] }], default: ["member"] },
  policies: { deactivation: { block: "always" } },
});
const transform = (t: unknown) => (d: Doc) => void (d.profile.nickname.transforms = [t]);
const rule = (r: unknown) => (d: Doc) => void (d.roles.rules = [r]);
const when = (w: unknown) => rule({ when: w, grant: ["x"] });

describe("validation names the place and the reason", () => {
  it.each<[string, (d: Doc) => void, string, string]>([
    ["not an object", (d) => Object.keys(d).forEach((k) => delete d[k]), "(document)", ""],
    ["missing connection", (d) => delete d.connection, "connection", "required"],
    ["missing connection name", (d) => delete d.connection.name, "connection.name", "required"],
    ["missing user model", (d) => delete d.userModel, "userModel", "required"],
    ["missing email", (d) => delete d.profile.email, "profile.email", "required"],
    [
      "unknown top-level key",
      (d) => (d.mapping = {}),
      "mapping",
      'unknown key "mapping" (allowed: $schema, description, connection, userModel, profile, app_metadata, roles, policies)',
    ],
    [
      "unknown nested key",
      (d) => (d.connection.kind = "db"),
      "connection.kind",
      'unknown key "kind" (allowed: name, type)',
    ],
    [
      "unknown profile field",
      (d) => (d.profile.emial = "userName"),
      "profile.emial",
      "allowed: email, username, given_name",
    ],
    [
      "password is refused with the reason",
      (d) => (d.profile.password = "x"),
      "profile.password",
      "never sets a password",
    ],
    ["blocked is refused with the reason", (d) => (d.profile.blocked = true), "profile.blocked", "follows policies"],
    [
      "email_verified is refused",
      (d) => (d.profile.email_verified = true),
      "profile.email_verified",
      "email_verified: false",
    ],
    [
      "bad user model",
      (d) => (d.userModel = "tenant"),
      "userModel",
      'expected one of "isolated", "shared" (got "tenant")',
    ],
    [
      "bad connection type",
      (d) => (d.connection.type = "saml"),
      "connection.type",
      'expected one of "database", "enterprise"',
    ],
    ["wrong type", (d) => (d.profile.email = 3), "profile.email", "not a value source"],
    [
      "bad SCIM path",
      (d) => (d.profile.email = "emails[primary eq true.value"),
      "profile.email",
      "not a SCIM attribute path",
    ],
    [
      "bad path in a from list",
      (d) => (d.profile.nickname = { from: ["userName", "name..x"] }),
      "profile.nickname.from[1]",
      "expected an attribute name",
    ],
    [
      "unclosed template",
      (d) => (d.profile.nickname = { template: "{name.givenName" }),
      "profile.nickname.template",
      'unclosed "{"',
    ],
    ["unmatched brace", (d) => (d.profile.nickname = { template: "a}" }), "profile.nickname.template", 'unmatched "}"'],
    [
      "template without placeholder",
      (d) => (d.profile.nickname = { template: "fixed" }),
      "profile.nickname.template",
      "no {placeholder}",
    ],
    [
      "{value} in a source template",
      (d) => (d.profile.nickname = { template: "{value}" }),
      "profile.nickname.template",
      "{value} exists only in a template transform",
    ],
    [
      "bad path in a template",
      (d) => (d.profile.nickname = { template: "{name.}" }),
      "profile.nickname.template",
      "expected an attribute name",
    ],
    [
      "unknown transform name",
      transform("lowercas"),
      "profile.nickname.transforms[0]",
      'expected one of "lowercase", "uppercase", "trim" (got "lowercas")',
    ],
    ["unknown transform object", transform({ captur: "x" }), "profile.nickname.transforms[0]", "not a transform"],
    [
      "lookup value must be a scalar",
      transform({ lookup: { a: { b: 1 } } }),
      "profile.nickname.transforms[0].lookup.a",
      "",
    ],
    [
      "lookup otherwise",
      transform({ lookup: { a: "b" }, otherwise: "drop" }),
      "profile.nickname.transforms[0].otherwise",
      'expected one of "null", "keep"',
    ],
    [
      "invalid regular expression",
      transform({ capture: "([a-z" }),
      "profile.nickname.transforms[0].capture",
      "not a valid regular expression",
    ],
    [
      "nested quantifier",
      transform({ capture: "^(a+)+$" }),
      "profile.nickname.transforms[0].capture",
      "nested quantifier",
    ],
    [
      "repeated alternation",
      transform({ capture: "^(a|aa)*$" }),
      "profile.nickname.transforms[0].capture",
      "nested quantifier",
    ],
    [
      "alternation nested in a repeated group",
      transform({ capture: "((a|b)c)+" }),
      "profile.nickname.transforms[0].capture",
      "nested quantifier",
    ],
    ["backreference", transform({ capture: "(a)\\1" }), "profile.nickname.transforms[0].capture", "backreferences"],
    [
      "named backreference",
      transform({ capture: "(?<x>a)\\k<x>" }),
      "profile.nickname.transforms[0].capture",
      "backreferences",
    ],
    [
      "lookahead",
      transform({ capture: "a(?=b)" }),
      "profile.nickname.transforms[0].capture",
      "lookahead and lookbehind",
    ],
    [
      "too many unbounded repetitions",
      transform({ capture: "a*b*c*d+" }),
      "profile.nickname.transforms[0].capture",
      "more than 3 unbounded",
    ],
    [
      "missing numbered group",
      transform({ capture: "(a)(b)", group: 3 }),
      "profile.nickname.transforms[0].group",
      "group 3 does not exist",
    ],
    [
      "missing named group",
      transform({ capture: "(?<a>x)", group: "b" }),
      "profile.nickname.transforms[0].group",
      'no group named "b"',
    ],
    [
      "pattern too long",
      transform({ capture: "a".repeat(201) }),
      "profile.nickname.transforms[0].capture",
      "longer than 200",
    ],
    [
      "empty glob",
      when({ group: { displayName: { glob: "" } } }),
      "roles.rules[0].when.group.displayName.glob",
      "the glob is empty",
    ],
    [
      "glob ends with a backslash",
      when({ group: { displayName: { glob: "Eng\\" } } }),
      "roles.rules[0].when.group.displayName.glob",
      'lone "\\"',
    ],
    ["unknown matcher key", when({ scimRole: { regex: "A.*" } }), "roles.rules[0].when.scimRole", "not a matcher"],
    ["empty condition", when({}), "roles.rules[0].when", "the condition is empty"],
    ["empty group condition", when({ group: {} }), "roles.rules[0].when.group", "name displayName or externalId"],
    [
      "attribute without predicate",
      when({ attribute: { path: "title" } }),
      "roles.rules[0].when.attribute",
      "give exactly one of equals, glob, oneOf, present (got none)",
    ],
    [
      "attribute with two predicates",
      when({ attribute: { path: "title", equals: "a", glob: "b*" } }),
      "roles.rules[0].when.attribute",
      "(got equals, glob)",
    ],
    [
      "attribute path",
      when({ attribute: { path: "emails[", present: true } }),
      "roles.rules[0].when.attribute.path",
      "not a SCIM attribute path",
    ],
    ["empty anyOf", when({ anyOf: [] }), "roles.rules[0].when.anyOf", ""],
    [
      "anyOf does not nest",
      when({ anyOf: [{ anyOf: [{ group: "A" }] }] }),
      "roles.rules[0].when.anyOf[0].anyOf",
      "unknown key",
    ],
    ["rule without when", rule({ grant: ["x"] }), "roles.rules[0].when", "required"],
    ["empty grant without stop", rule({ when: { group: "A" }, grant: [] }), "roles.rules[0].grant", "set stop: true"],
    ["grant is a list", rule({ when: { group: "A" }, grant: "admin" }), "roles.rules[0].grant", "expected array"],
    [
      "role name with spaces",
      rule({ when: { group: "A" }, grant: [" admin"] }),
      "roles.rules[0].grant[0]",
      "may not start or end with spaces",
    ],
    [
      "reserved namespace",
      (d) => (d.app_metadata.namespace = "blocked"),
      "app_metadata.namespace",
      '"blocked" is reserved by Auth0',
    ],
    [
      "reserved key without namespace",
      (d) => (d.app_metadata = { keys: { email: "userName" } }),
      "app_metadata.keys.email",
      '"email" is reserved by Auth0',
    ],
    [
      "key with a dot",
      (d) => (d.app_metadata.keys = { "a.b": "title" }),
      'app_metadata.keys["a.b"]',
      'Auth0 forbids "." and "$"',
    ],
    [
      "key with a dollar",
      (d) => (d.app_metadata.keys = { $set: "title" }),
      "app_metadata.keys.$set",
      "not a usable app_metadata name",
    ],
    [
      "prototype pollution through a key",
      (d) => (d.app_metadata.keys = JSON.parse('{"__proto__": "title"}')),
      "app_metadata.keys.__proto__",
      "not allowed",
    ],
    [
      "groups source in a profile field",
      (d) => (d.profile.nickname = { groups: "displayName" }),
      "profile.nickname",
      "not a value source",
    ],
    [
      "bad block policy",
      (d) => (d.policies.deactivation.block = "sometimes"),
      "policies.deactivation.block",
      'expected one of "always", "whenNoOtherOrganization", "never"',
    ],
    [
      "deleteUser is not a deactivation",
      (d) => (d.policies.deactivation.deleteUser = true),
      "policies.deactivation.deleteUser",
      'unknown key "deleteUser"',
    ],
    [
      "guard percent",
      (d) => (d.policies.massDeprovisionGuard = { percent: 150 }),
      "policies.massDeprovisionGuard.percent",
      "",
    ],
    [
      "guard window",
      (d) => (d.policies.massDeprovisionGuard = { windowMinutes: 1.5 }),
      "policies.massDeprovisionGuard.windowMinutes",
      "",
    ],
    [
      "invitation ttl",
      (d) => (d.policies.invitation = { send: true, ttlSeconds: 10 }),
      "policies.invitation.ttlSeconds",
      "",
    ],
    [
      "deactivation that cuts nothing",
      (d) => (d.policies.deactivation = { block: "never", removeMembership: false }),
      "policies.deactivation",
      "must cut access",
    ],
    [
      "whenNoOtherOrganization without removeMembership",
      (d) => (d.policies.deactivation = { block: "whenNoOtherOrganization", removeMembership: false }),
      "policies.deactivation.removeMembership",
      "needs removeMembership: true",
    ],
    [
      "whenBlocked with block never",
      (d) => (d.policies.deactivation = { block: "never", removeMembership: true, revokeSessions: "whenBlocked" }),
      "policies.deactivation.revokeSessions",
      "never applies",
    ],
    [
      "deleting shared users",
      (d) => {
        d.userModel = "shared";
        d.policies = { deletion: { deleteUser: true } };
      },
      "policies.deletion.deleteUser",
      "use removeMembership",
    ],
    [
      "invitation with an enterprise connection",
      (d) => {
        d.connection.type = "enterprise";
        d.policies = { invitation: { send: true } };
      },
      "policies.invitation.send",
      "need a database connection",
    ],
  ])("%s", (_name, change, path, reason) => {
    const doc = base();
    change(doc);
    const result = validateMapping(Object.keys(doc).length === 0 ? null : doc);
    expect(result.ok).toBe(false);
    if (result.ok) return;
    const issue = result.issues.find((i) => i.path === path);
    expect(issue, `issues: ${JSON.stringify(result.issues)}`).toBeDefined();
    expect(issue!.message).toContain(reason);
  });

  it("the base document of the table is valid, so each case fails for its own reason", () => {
    expect(validateMapping(base()).ok).toBe(true);
  });

  it("lists every problem at once", () => {
    const doc = base();
    doc.userModel = "x";
    doc.profile.picture = "photos[";
    doc.roles.rules[0].stopp = true;
    const result = validateMapping(doc);
    expect(result.ok ? [] : result.issues.map((i) => i.path)).toEqual([
      "userModel",
      "profile.picture",
      "roles.rules[0].stopp",
    ]);
  });

  it("parseMapping throws an invalidValue BridgeError whose message has one `<path>: <reason>` line per problem", () => {
    const doc = base();
    doc.userModel = "x";
    doc.connection.kind = 1;
    const error = (() => {
      try {
        parseMapping(doc);
      } catch (e) {
        return e;
      }
    })();
    expect(error).toBeInstanceOf(MappingError);
    expect(error).toBeInstanceOf(BridgeError);
    expect((error as BridgeError).kind).toBe("invalidValue");
    expect((error as BridgeError).message.split("\n").slice(1)).toEqual([
      '  connection.kind: unknown key "kind" (allowed: name, type)',
      '  userModel: expected one of "isolated", "shared" (got "x")',
    ]);
  });

  it("fills policies from the user model, keeping what the file says", () => {
    const m = parseMapping({ ...base(), userModel: "shared", policies: { deactivation: { removeRoles: false } } });
    expect(m.policies.deactivation).toEqual({
      block: "whenNoOtherOrganization",
      revokeSessions: "whenBlocked",
      removeMembership: true,
      removeRoles: false,
    });
    expect(m.policies.deletion.deleteUser).toBe(false);
    expect(m.connection.type).toBe("database");
  });
});

describe("mapping files", () => {
  const yaml = [
    "# a comment is fine",
    "connection:",
    "  name: acme-db",
    "userModel: isolated",
    "profile:",
    "  email: userName",
    "  nicknam: userName   # misspelt",
    "roles:",
    "  rules:",
    "    - when: { group: Eng }",
    "      grant: [admin]",
    "    - when: { scimRole: { glob: '' } }",
    "      grant: [x]",
  ].join("\n");

  it("names file, line and column of each problem", () => {
    const result = checkMappingFile(yaml, "acme.yaml");
    expect(result.ok).toBe(false);
    if (result.ok) return;
    expect(result.issues.map((i) => [i.line, i.column, i.path])).toEqual([
      [7, 3, "profile.nicknam"],
      [12, 27, "roles.rules[1].when.scimRole.glob"],
    ]);
    expect(() => loadMappingFile(yaml, "acme.yaml")).toThrow(/acme\.yaml:7:3: profile\.nicknam: unknown key "nicknam"/);
  });

  it("reads JSON too", () => {
    const json = JSON.stringify(
      { connection: { name: "c" }, userModel: "shared", profile: { email: "userName" } },
      null,
      2,
    );
    expect(loadMappingFile(json, "m.json").userModel).toBe("shared");
  });

  it("refuses a YAML syntax error as invalidSyntax with its line", () => {
    const error = (() => {
      try {
        loadMappingFile("connection:\n  name: [unclosed\nuserModel: isolated\n", "bad.yaml");
      } catch (e) {
        return e as BridgeError;
      }
    })();
    expect(error?.kind).toBe("invalidSyntax");
    expect(error?.message).toMatch(/bad\.yaml:\d+:\d+: YAML syntax/);
  });

  it("refuses a key written twice instead of keeping the last one", () => {
    const result = checkMappingFile("userModel: isolated\nuserModel: shared\n", "dup.yaml");
    expect(result.ok).toBe(false);
    if (!result.ok) expect(result.issues[0]).toMatchObject({ line: 2, message: expect.stringContaining("unique") });
  });
});
