import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseFilter } from "../../src/scim/filter/parser.js";
import { createTestBridge, type TestBridge } from "../helpers/scim.js";

/** RFC 7644 §3.4.2.2 filters: the grammar, then each operator's meaning as the directory answers it. */
describe("filter grammar", () => {
  it("gives not > and > or precedence, and parentheses override it", () => {
    expect(parseFilter('a eq "1" or b eq "2" and c eq "3"')).toMatchObject({ kind: "or", right: { kind: "and" } });
    expect(parseFilter('(a eq "1" or b eq "2") and c eq "3"')).toMatchObject({ kind: "and", left: { kind: "or" } });
    expect(parseFilter('not (a eq "1" or b eq "2")')).toMatchObject({ kind: "not", expr: { kind: "or" } });
  });

  it("reads nested parentheses, escaped quotes, keywords in any case and unquoted values", () => {
    expect(parseFilter('((userName eq "x"))')).toEqual({ kind: "compare", path: "userName", op: "eq", value: "x" });
    expect(parseFilter('displayName eq "O\\"Brien"')).toMatchObject({ value: 'O"Brien' });
    expect(parseFilter('userName EQ "a" OR active Eq TRUE')).toMatchObject({
      kind: "or",
      right: { op: "eq", value: true },
    });
    expect(parseFilter("externalId eq jyoung")).toMatchObject({ value: "jyoung" });
    expect(parseFilter("meta.created gt 2015-10-10T14:38:21.8617979-07:00")).toMatchObject({
      value: "2015-10-10T14:38:21.8617979-07:00",
    });
    expect(parseFilter("count ge 1.5e2")).toMatchObject({ value: 150 });
  });

  it("reads value paths, with a sub-attribute comparison after the bracket", () => {
    expect(parseFilter('emails[type eq "work" and primary eq true]')).toMatchObject({
      kind: "valuePath",
      path: "emails",
      filter: { kind: "and" },
    });
    expect(parseFilter('emails[type eq "work"].value eq "a@b"')).toEqual({
      kind: "valuePath",
      path: "emails",
      filter: {
        kind: "and",
        left: { kind: "compare", path: "type", op: "eq", value: "work" },
        right: { kind: "compare", path: "value", op: "eq", value: "a@b" },
      },
    });
  });
});

describe("filters answered by the directory", () => {
  let bridge: TestBridge;
  const ids: Record<string, string> = {};
  const enterprise = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";

  beforeAll(async () => {
    bridge = await createTestBridge();
    const people = [
      {
        userName: "Alice@Example.com",
        displayName: "Alice Liddell",
        externalId: "E-1",
        active: true,
        title: "Engineer",
        name: { givenName: "Alice", familyName: "Liddell" },
        emails: [
          { value: "alice@work.test", type: "work", primary: true },
          { value: "alice@home.test", type: "home" },
        ],
        [enterprise]: { department: "Engineering", employeeNumber: "100" },
      },
      {
        userName: "bob@example.com",
        displayName: "Bob Builder",
        externalId: "e-1",
        active: false,
        title: "Builder",
        name: { givenName: "Bob", familyName: "Builder" },
        emails: [{ value: "bob@work.test", type: "work" }],
        phoneNumbers: [{ value: "+1 555 0101", type: "mobile" }],
        [enterprise]: { department: "Sales" },
      },
      {
        userName: "carol@other.org",
        displayName: "Carol O'Brien",
        active: true,
        name: { givenName: "Carol", familyName: 'O"Brien' },
      },
    ];
    for (const p of people)
      ids[p.userName.split("@")[0]!.toLowerCase()] = (await bridge.scim.post("/Users", p).expect(201)).body.id;
  });
  afterAll(async () => bridge.close());

  const find = async (filter: string): Promise<string[]> => {
    const res = await bridge.scim.get(`/Users?filter=${encodeURIComponent(filter)}`).expect(200);
    expect(res.body.totalResults).toBe(res.body.Resources.length);
    const byId = Object.fromEntries(Object.entries(ids).map(([k, v]) => [v, k]));
    return res.body.Resources.map((r: { id: string }) => byId[r.id]).sort();
  };

  it.each([
    ['userName eq "ALICE@example.COM"', ["alice"]],
    ['userName ne "alice@example.com"', ["bob", "carol"]],
    ['userName co "EXAMPLE"', ["alice", "bob"]],
    ['userName sw "B"', ["bob"]],
    ['userName ew ".ORG"', ["carol"]],
    ['userName gt "bob@example.com"', ["carol"]],
    ['userName ge "bob@example.com"', ["bob", "carol"]],
    ['userName lt "bob"', ["alice"]],
    ['userName le "bob@example.com"', ["alice", "bob"]],
    ['externalId eq "E-1"', ["alice"]],
    ["externalId pr", ["alice", "bob"]],
    ["not (externalId pr)", ["carol"]],
    ['displayName eq "alice liddell"', ["alice"]],
    ['displayName eq "Carol O\'Brien"', ["carol"]],
    ['name.familyName eq "O\\"Brien"', ["carol"]],
    ["active eq false", ["bob"]],
    ['active eq "True"', ["alice", "carol"]],
    ['title co "build"', ["bob"]],
    ['emails.value eq "BOB@work.test"', ["bob"]],
    ['emails co "home"', ["alice"]],
    ['emails[type eq "work"].value eq "alice@work.test"', ["alice"]],
    ['emails[type eq "home" and value sw "alice"]', ["alice"]],
    ['emails[type eq "work" and primary eq true]', ["alice"]],
    ["emails pr", ["alice", "bob"]],
    ['phoneNumbers[type eq "mobile"]', ["bob"]],
    [`${enterprise}:department eq "sales"`, ["bob"]],
    ["urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber pr", ["alice"]],
    ['userName sw "a" or (active eq false and title eq "builder")', ["alice", "bob"]],
    ['(userName sw "a" or userName sw "b") and not (active eq false)', ["alice"]],
    ['name[givenName eq "carol"]', ["carol"]],
    ['meta.resourceType eq "User"', ["alice", "bob", "carol"]],
    ['nonexistentAttribute eq "x"', []],
    ['nonexistentAttribute ne "x"', ["alice", "bob", "carol"]],
    ['urn:example:unknown:2.0:User:thing eq "x"', []],
  ])("%s", async (filter, expected) => {
    expect(await find(filter)).toEqual(expected);
  });

  it("compares meta.created and meta.lastModified as instants", async () => {
    expect(await find("meta.created gt 2015-10-10T14:38:21.8617979-07:00")).toEqual(["alice", "bob", "carol"]);
    expect(await find(`meta.lastModified gt "${new Date(Date.now() + 60_000).toISOString()}"`)).toEqual([]);
  });

  it("filters groups by displayName (case-insensitively) and by member", async () => {
    const group = await bridge.scim
      .post("/Groups", { displayName: "Readers", members: [{ value: ids.alice }] })
      .expect(201);
    await bridge.scim.post("/Groups", { displayName: "Writers" }).expect(201);
    const byName = await bridge.scim
      .get(`/Groups?filter=${encodeURIComponent('displayName eq "READERS"')}`)
      .expect(200);
    expect(byName.body.Resources.map((g: { id: string }) => g.id)).toEqual([group.body.id]);
    const byMember = await bridge.scim
      .get(
        `/Groups?filter=${encodeURIComponent(`id eq "${group.body.id}" and members[value eq "${ids.alice}"]`)}&attributes=id`,
      )
      .expect(200);
    expect(byMember.body.Resources).toEqual([
      { schemas: ["urn:ietf:params:scim:schemas:core:2.0:Group"], id: group.body.id },
    ]);
    const withMembers = await bridge.scim.get(`/Groups?filter=${encodeURIComponent("members pr")}`).expect(200);
    expect(withMembers.body.Resources.map((g: { id: string }) => g.id)).toEqual([group.body.id]);
  });
});
