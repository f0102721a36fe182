/**
 * The store ops behind SCIM lists (RFC 7644 §3.4.2): counts, filtered and sorted pages, startIndex /
 * count paging, keyset anchors and group members give the same rows in the same order on SQLite and
 * on PostgreSQL. The rows are written as plain SQL, so each dialect holds exactly the same data:
 * ids and names chosen so that byte order, case folding and creation-time ties decide the order.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createDirectory } from "../../src/directory/directories.js";
import { foldCase } from "../../src/directory/fold.js";
import { recordDirectoryWrite } from "../../src/directory/generations.js";
import { countGroups, listGroups } from "../../src/directory/groups.js";
import { listMembers } from "../../src/directory/members.js";
import type { SqlStore } from "../../src/directory/sql.js";
import { exec } from "../../src/directory/store-op.js";
import { countUsers, listUsers } from "../../src/directory/users.js";
import { changeBy } from "../../src/directory/write-context.js";
import { isBridgeError } from "../../src/errors.js";
import { parseFilter } from "../../src/scim/filter/parser.js";
import { filterToSql } from "../../src/scim/filter/sql.js";
import { groupsTarget, usersTarget } from "../../src/scim/filter/targets.js";
import type { ListParams } from "../../src/scim/list.js";
import { PageAnchors, resultSetKey } from "../../src/scim/paging.js";
import { groupsPage, usersPage } from "../../src/scim/reads.js";
import { seedOrganization, storeDialects } from "../support/store-dialects.js";

const system = { type: "system", id: "test" } as const;
const base = 1_700_000_000_000;

/** [id, created at (ms after base), SCIM document]: ids tie-break equal times, in byte order ("B" < "a"). */
const people: [string, number, Record<string, unknown>][] = [
  ["u-a", 0, { userName: "alice@example.com", displayName: "Alice", title: "Engineer", externalId: "x-1" }],
  ["u-B", 0, { userName: "Bob@Example.com", displayName: "bob", active: false, externalId: "x-2" }],
  ["u-c", 1, { userName: "émile@example.fr", displayName: "Émile", title: "engineer" }],
  ["u-D", 1, { userName: "Zoë@example.de", displayName: "zoë", externalId: "x-1" }],
  ["u-e", 2, { userName: "aaron@example.com", displayName: "Aaron", title: "Manager" }],
  ["u-f", 3, { userName: "anna@example.com", displayName: "Anna", active: false }],
  ["u-g", 3, { userName: "gone@example.com", displayName: "Gone" }],
  ["u-h", 4, { userName: "ärger@example.de", displayName: "Ärger", title: "engineer" }],
];
const deleted = new Set(["u-g"]);
const emails: [string, string, string | null][] = [
  ["u-a", "Alice@Example.com", "work"],
  ["u-a", "alice@home.example", "home"],
  ["u-B", "bob@example.com", "work"],
  ["u-D", "zoe@example.de", "home"],
  ["u-h", "aerger@example.de", "work"],
];
/** [id, created at, displayName, externalId, members]. */
const teams: [string, number, string, string | null, string[]][] = [
  ["g-1", 0, "Engineers", "G-1", ["u-c", "u-a", "u-h", "u-B"]],
  ["g-2", 0, "sales", null, ["u-e"]],
  ["g-3", 1, "Éditeurs", "G-3", []],
  ["g-4", 2, "Straße", null, ["u-D", "u-a"]],
  ["g-5", 2, "gone", null, []],
];
const deletedGroups = new Set(["g-5"]);

/** The live users in the default order (creation, then id bytewise). */
const liveUsers = people
  .filter(([id]) => !deleted.has(id))
  .sort(([a, at], [b, bt]) => at - bt || (a < b ? -1 : a > b ? 1 : 0))
  .map(([id]) => id);

const params = (p: Partial<ListParams> = {}): Pick<ListParams, "filter" | "sortBy" | "descending"> => ({
  descending: false,
  ...p,
});

describe.each(storeDialects())("SCIM read ops on $name", (dialect) => {
  let store: SqlStore;
  let dir: string;
  let other: string;

  beforeAll(async () => {
    store = await dialect.open();
    await store.write(seedOrganization());
    dir = (await store.write(createDirectory({ organizationId: "org_1" }, changeBy(system, { at: base })))).id;
    other = (await store.write(createDirectory({ organizationId: "org_1", name: "b" }, changeBy(system)))).id;
    const insertUser = (directoryId: string, id: string, at: number, doc: Record<string, unknown>) =>
      exec(
        `INSERT INTO users (id, directory_id, user_name, user_name_lower, external_id, display_name, active, resource,
           version, created_at, modified_at, deleted_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 1, ?, ?, ?)`,
        [
          id,
          directoryId,
          doc.userName as string,
          foldCase(doc.userName as string),
          (doc.externalId as string | undefined) ?? null,
          (doc.displayName as string | undefined) ?? null,
          doc.active !== false,
          JSON.stringify(doc),
          base + at,
          base + at + 10,
          deleted.has(id) ? base + 20 : null,
        ],
      );
    await store.write(
      (function* () {
        for (const [id, at, doc] of people) yield* insertUser(dir, id, at, doc);
        // Another directory's users share externalIds and creation times: never listed or counted here.
        yield* insertUser(other, "o-1", 0, { userName: "alice@example.com", externalId: "x-1", title: "Engineer" });
        yield* insertUser(other, "o-2", 1, { userName: "zed@example.com", externalId: "x-2" });
        for (const [position, [userId, value, type]] of emails.entries())
          yield* exec(
            `INSERT INTO user_emails (user_id, directory_id, position, value_lower, type, "primary") VALUES (?, ?, ?, ?, ?, ?)`,
            [userId, dir, position, foldCase(value), type, position === 0],
          );
        for (const [id, at, displayName, externalId, members] of teams) {
          yield* exec(
            `INSERT INTO groups (id, directory_id, display_name, display_name_lower, external_id, resource, version,
               member_count, created_at, modified_at, deleted_at) VALUES (?, ?, ?, ?, ?, ?, 1, ?, ?, ?, ?)`,
            [
              id,
              dir,
              displayName,
              foldCase(displayName),
              externalId,
              JSON.stringify({ displayName, ...(externalId ? { externalId } : {}) }),
              members.length,
              base + at,
              base + at,
              deletedGroups.has(id) ? base + 20 : null,
            ],
          );
          for (const member of members) {
            const person = people.find(([pid]) => pid === member)![2];
            yield* exec(
              `INSERT INTO group_members (group_id, member_id, directory_id, member_type, display, added_at)
               VALUES (?, ?, ?, 'User', ?, ?)`,
              [id, member, dir, (person.displayName as string | undefined) ?? null, base],
            );
          }
        }
        yield* recordDirectoryWrite(dir, { users: liveUsers.length, groups: teams.length - deletedGroups.size });
        yield* recordDirectoryWrite(other, { users: 2 });
      })(),
    );
  });
  afterAll(() => dialect.cleanup());

  const userIds = async (filter: string | undefined, offset = 0, limit = 100, extra: Partial<ListParams> = {}) => {
    const page = await store.read(
      usersPage(dir, params({ ...(filter ? { filter: parseFilter(filter) } : {}), ...extra }), offset, limit),
    );
    return { total: page.total, ids: page.rows.map((r) => r.id) };
  };

  it("counts live users and groups from the directory's counters, and filtered ones by counting", async () => {
    expect(await store.read(countUsers(dir))).toBe(7);
    expect(await store.read(countUsers(other))).toBe(2);
    expect(await store.read(countGroups(dir))).toBe(4);
    const where = (filter: string) => (d: "sqlite" | "postgres") =>
      filterToSql(parseFilter(filter), usersTarget(dir, d));
    expect(await store.read(countUsers(dir, where('externalId eq "x-1"')))).toBe(2);
    expect(await store.read(countUsers(dir, where("active eq false")))).toBe(2);
    expect(await store.read(countUsers(dir, where('userName eq "gone@example.com"')))).toBe(0);
    expect(await store.read(countUsers(dir, where('emails[type eq "work"]')))).toBe(3);
    const groupWhere = (filter: string) => (d: "sqlite" | "postgres") =>
      filterToSql(parseFilter(filter), groupsTarget(dir, d));
    expect(await store.read(countGroups(dir, groupWhere("members pr")))).toBe(3);
    expect(await store.read(countGroups(dir, groupWhere('members[value eq "u-a"]')))).toBe(2);
  });

  it("lists live users in creation order, ids breaking ties bytewise, as rows of the store's shape", async () => {
    const rows = await store.read(listUsers(dir, { offset: 0, limit: 100 }));
    expect(rows.map((r) => r.id)).toEqual(liveUsers);
    expect(liveUsers.slice(0, 4)).toEqual(["u-B", "u-a", "u-D", "u-c"]);
    expect(rows[1]).toEqual({
      id: "u-a",
      directoryId: dir,
      userName: "alice@example.com",
      userNameLower: "alice@example.com",
      externalId: "x-1",
      displayName: "Alice",
      active: true,
      resource: JSON.stringify(people[0]![2]),
      version: 1,
      createdAt: base,
      modifiedAt: base + 10,
      deletedAt: null,
    });
    expect(rows[0]!.active).toBe(false);
    expect(await store.read(listUsers(dir, { offset: 0, limit: 0 }))).toEqual([]);
    expect(await store.read(listUsers(dir, { offset: 2, limit: 3 }))).toEqual(rows.slice(2, 5));
  });

  it.each([
    ['userName sw "a"', ["u-a", "u-e", "u-f"]],
    ['userName eq "BOB@example.COM"', ["u-B"]],
    ['externalId eq "x-1"', ["u-a", "u-D"]],
    ['title eq "ENGINEER"', ["u-a", "u-c", "u-h"]],
    ['emails[type eq "work"]', ["u-B", "u-a", "u-h"]],
    ['emails.value eq "ZOE@example.de"', ["u-D"]],
    ['displayName co "ë" or active eq false', ["u-B", "u-D", "u-f"]],
    ["not (title pr)", ["u-B", "u-D", "u-f"]],
  ])("filters %s: the matches in creation order, paged by startIndex and count", async (filter, expected) => {
    expect(await userIds(filter)).toEqual({ total: expected.length, ids: expected });
    expect(await userIds(filter, 1, 1)).toEqual({ total: expected.length, ids: expected.slice(1, 2) });
    expect(await userIds(filter, expected.length, 5)).toEqual({ total: expected.length, ids: [] });
  });

  it.each([
    // Folded names in byte order: "ärger" (C3 A4) before "émile" (C3 A9), both after ASCII.
    ["userName", false, ["u-e", "u-a", "u-f", "u-B", "u-D", "u-h", "u-c"]],
    ["userName", true, ["u-c", "u-h", "u-D", "u-B", "u-f", "u-a", "u-e"]],
    // Case folded: "bob" sorts among the lower-case names, "Ärger" and "Émile" after every ASCII letter.
    ["displayName", false, ["u-e", "u-a", "u-f", "u-B", "u-D", "u-h", "u-c"]],
    // Users without a title first ascending, last descending; equal titles in creation order.
    ["title", false, ["u-B", "u-D", "u-f", "u-a", "u-c", "u-h", "u-e"]],
    ["title", true, ["u-e", "u-a", "u-c", "u-h", "u-B", "u-D", "u-f"]],
    ["externalId", true, ["u-B", "u-a", "u-D", "u-c", "u-e", "u-f", "u-h"]],
    ["meta.created", true, ["u-h", "u-f", "u-e", "u-D", "u-c", "u-B", "u-a"]],
  ] as const)("sorts by %s (descending: %s) in the same order", async (sortBy, descending, expected) => {
    expect((await userIds(undefined, 0, 100, { sortBy, descending })).ids).toEqual(expected);
    expect((await userIds("userName pr", 2, 3, { sortBy, descending })).ids).toEqual(expected.slice(2, 5));
  });

  it("walks pages by keyset anchors with the same answers as OFFSET, and drops them when the directory changes", async () => {
    const anchors = new PageAnchors();
    const walk = async (filter?: string) => {
      const seen: string[] = [];
      const p = params(filter ? { filter: parseFilter(filter) } : {});
      for (let offset = 0; offset < 10; offset += 2)
        seen.push(...(await store.read(usersPage(dir, p, offset, 2, anchors))).rows.map((r) => r.id));
      return seen;
    };
    expect(await walk()).toEqual(liveUsers);
    // The walk left an anchor at each page's end (at the directory's current generation, 1: the seed's write).
    expect(anchors.at(resultSetKey(dir, "User", undefined), 1, 3)).toMatchObject({ id: liveUsers[1] });
    expect(await walk()).toEqual(liveUsers);
    expect(await walk("active eq true")).toEqual(liveUsers.filter((id) => !["u-B", "u-f"].includes(id)));
    // A write moves the generation: the old anchors no longer apply, and the answers stay OFFSET's.
    await store.write(exec("UPDATE users SET deleted_at = ? WHERE id = 'u-a'", [base + 30]));
    await store.write(recordDirectoryWrite(dir, { users: -1 }));
    const remaining = liveUsers.filter((id) => id !== "u-a");
    expect(await walk()).toEqual(remaining);
    expect(await walk()).toEqual(remaining);
    // listUsers' own keyset: rows after (created_at, id) in creation order.
    const after = await store.read(listUsers(dir, { offset: 0, limit: 2, after: { createdAt: base + 1, id: "u-D" } }));
    expect(after.map((r) => r.id)).toEqual(["u-c", "u-e"]);
    await store.write(exec("UPDATE users SET deleted_at = NULL WHERE id = 'u-a'"));
    await store.write(recordDirectoryWrite(dir, { users: 1 }));
  });

  it("lists groups by filter and sort, and each group's members by id", async () => {
    const ids = async (filter?: string, extra: Partial<ListParams> = {}, offset = 0, limit = 100) => {
      const page = await store.read(
        groupsPage(dir, params({ ...(filter ? { filter: parseFilter(filter) } : {}), ...extra }), offset, limit),
      );
      return { total: page.total, ids: page.rows.map((r) => r.id) };
    };
    expect(await ids()).toEqual({ total: 4, ids: ["g-1", "g-2", "g-3", "g-4"] });
    expect(await ids(undefined, {}, 1, 2)).toEqual({ total: 4, ids: ["g-2", "g-3"] });
    expect(await ids('members[value eq "u-a"]')).toEqual({ total: 2, ids: ["g-1", "g-4"] });
    expect(await ids('members[display co "Ë"]')).toEqual({ total: 1, ids: ["g-4"] });
    expect(await ids("not (members pr)")).toEqual({ total: 1, ids: ["g-3"] });
    expect(await ids('displayName eq "SALES"')).toEqual({ total: 1, ids: ["g-2"] });
    expect(await ids('externalId sw "G"')).toEqual({ total: 2, ids: ["g-1", "g-3"] });
    expect((await ids(undefined, { sortBy: "displayName" })).ids).toEqual(["g-1", "g-2", "g-4", "g-3"]);
    expect((await ids(undefined, { sortBy: "externalId", descending: true })).ids).toEqual([
      "g-3",
      "g-1",
      "g-2",
      "g-4",
    ]);
    const [first] = await store.read(listGroups(dir, { offset: 0, limit: 1 }));
    expect(first).toEqual({
      id: "g-1",
      directoryId: dir,
      displayName: "Engineers",
      displayNameLower: "engineers",
      externalId: "G-1",
      resource: '{"displayName":"Engineers","externalId":"G-1"}',
      version: 1,
      memberCount: 4,
      createdAt: base,
      modifiedAt: base,
      deletedAt: null,
    });
    expect(await store.read(listMembers("g-1"))).toEqual([
      { memberId: "u-B", display: "bob", memberType: "User" },
      { memberId: "u-a", display: "Alice", memberType: "User" },
      { memberId: "u-c", display: "Émile", memberType: "User" },
      { memberId: "u-h", display: "Ärger", memberType: "User" },
    ]);
    expect(await store.read(listMembers("g-3"))).toEqual([]);
  });

  it("refuses a filter or sortBy it cannot run with a 400, even when the page would be empty", async () => {
    const refusal = async (p: Partial<ListParams>, offset = 0) => {
      try {
        await store.read(usersPage(dir, params(p), offset, 10));
      } catch (err) {
        return isBridgeError(err) ? { kind: err.kind, status: err.status } : err;
      }
      return "answered";
    };
    expect(await refusal({ filter: parseFilter("active gt true") })).toEqual({ kind: "invalidFilter", status: 400 });
    expect(await refusal({ sortBy: "name" }, 1000)).toEqual({ kind: "invalidValue", status: 400 });
    expect(await refusal({ filter: parseFilter('meta.created gt "yesterday"') })).toEqual({
      kind: "invalidFilter",
      status: 400,
    });
  });
});
