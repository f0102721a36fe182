/**
 * SCIM filters (RFC 7644 §3.4.2.2) and sortBy (§3.4.2.3) give the same resources, in the same order,
 * on SQLite and on PostgreSQL. The users and groups are written through the SCIM service's own path
 * (normalizeResource, validateDocument, createUser/createGroup) into a SQLite store, and its rows
 * are copied as they are into a migrated PostgreSQL database whose default collation is an ICU
 * locale (where "a" < "B", unlike byte order), so only the columns' COLLATE "C" can make the two
 * orders agree. Both run the store's own list and count ops (listUsers, countUsers, listGroups,
 * countGroups), each with its dialect's target of src/scim/filter/; member conditions of PATCH run
 * through memberIdsWhere on both.
 */
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { onboardOrganizationOp } from "../../src/admin/onboarding.js";
import { openDatabase, type OpenDatabase } from "../../src/directory/database.js";
import { countGroups, createGroup, listGroups } from "../../src/directory/groups.js";
import { memberIdsWhere } from "../../src/directory/members.js";
import { migratePostgres } from "../../src/directory/postgres.js";
import { countUsers, createUser, deleteUser, getUser, listUsers, type ListQuery } from "../../src/directory/users.js";
import { changeBy, type WriteContext } from "../../src/directory/write-context.js";
import { parseFilter } from "../../src/scim/filter/parser.js";
import { elementCondition, filterToSql, type Dialect } from "../../src/scim/filter/sql.js";
import { groupsTarget, membersCollection, sortExpression, usersTarget } from "../../src/scim/filter/targets.js";
import { parseMembers } from "../../src/scim/members.js";
import { normalizeResource } from "../../src/scim/normalize.js";
import { groupSchema, userSchema } from "../../src/scim/schema.js";
import { validateDocument } from "../../src/scim/validate.js";
import { freshDatabase, postgresUnavailable, type TestDatabase } from "../support/postgres.js";
import { runOnClient, runSync, writeSync } from "../../src/directory/store-op.js";

const enterprise = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
const base = Date.parse("2024-03-01T12:00:00.000Z");

/** [created at (ms after base), SCIM body]: several users share a millisecond, so ids break ties. */
const people: [number, Record<string, unknown>][] = [
  [
    0,
    {
      userName: "alice@example.com",
      displayName: "Alice Smith",
      name: { givenName: "Alice", familyName: "Smith" },
      title: "Engineer",
      emails: [
        { value: "Alice@Example.com", type: "work", primary: true },
        { value: "alice@home.example", type: "home" },
      ],
      [enterprise]: { employeeNumber: "1001", department: "Engineering", manager: { value: "m-1" } },
    },
  ],
  [
    0,
    {
      userName: "Bob@Example.com",
      displayName: "bob jones",
      externalId: "EXT-b",
      active: false,
      name: { givenName: "Bob", familyName: "Jones" },
      emails: [{ value: "bob@example.com", type: "work" }],
      phoneNumbers: [{ value: "+49 30 1234", type: "work" }],
    },
  ],
  [
    0,
    {
      userName: "émile@example.fr",
      displayName: "Émile Zola",
      name: { givenName: "Émile", familyName: "Zola" },
      title: "engineer",
      emails: [{ value: "EMILE@example.fr", type: "Work" }],
      [enterprise]: { employeeNumber: "1002", department: "engineering" },
    },
  ],
  [
    1,
    {
      userName: "zoë@example.de",
      displayName: "Zoë Straße",
      externalId: "ext-z",
      name: { givenName: "Zoë", familyName: "Straße" },
      emails: [{ value: "zoe@example.de", type: "work", primary: true }],
      addresses: [{ country: "DE", locality: "Berlin", type: "work" }],
    },
  ],
  [
    1,
    { userName: "E\u0301ric@example.fr", displayName: "E\u0301ric Dupont", name: { familyName: "Dupont" }, emails: [] },
  ],
  [
    2,
    {
      userName: "İpek@example.tr",
      displayName: "İPEK YILMAZ",
      name: { givenName: "İpek", familyName: "Yılmaz" },
      emails: [{ value: "ipek@example.tr", type: "work" }],
      [enterprise]: { department: "Sales" },
    },
  ],
  [
    2,
    {
      userName: "ΟΔΥΣΣΕΑΣ@example.gr",
      displayName: "Οδυσσέας",
      name: { familyName: "ΠΑΠΑΔΟΠΟΥΛΟΣ" },
      title: "Μηχανικός",
    },
  ],
  [
    3,
    {
      userName: "yamada@example.jp",
      displayName: "山田 太郎",
      name: { givenName: "太郎", familyName: "山田" },
      emails: [{ value: "yamada@example.jp" }],
    },
  ],
  [
    3,
    {
      userName: "zed@example.com",
      displayName: "Zed 👍",
      nickName: "🚀",
      active: true,
      emails: [
        { value: "zed@example.com", type: "work", primary: false },
        { value: "ZED@example.org", type: "other" },
      ],
    },
  ],
  [4, { userName: "_under@example.com", displayName: "_under", externalId: "Ext-U", title: "" }],
  [
    4,
    {
      userName: "Ärger@example.de",
      displayName: "ärger",
      name: { givenName: "Änne" },
      emails: [{ value: "ärger@example.de", type: "work" }],
      [enterprise]: { employeeNumber: "999", costCenter: "CC-1" },
    },
  ],
  [
    5,
    {
      userName: "aaron@example.com",
      displayName: "Aaron",
      externalId: "ext-a",
      nickName: "AA",
      emails: [{ value: "aaron@example.com", type: "work" }],
    },
  ],
  [5, { userName: "gone@example.com", displayName: "Gone" }],
  [
    6,
    {
      userName: "ǅemal@example.ba",
      displayName: "ǅemal",
      name: { familyName: "ǅ" },
      emails: [{ value: "dzemal@example.ba", type: "home" }],
    },
  ],
  [7, { userName: "100%@example.com", displayName: "100% real", title: "a_b%c" }],
  [8, { userName: "Zachary@example.com", displayName: "zachary", name: { givenName: "zachary" } }],
];

const userFilters = [
  // eq / ne on every kind of operand: folded column, plain column, JSON, case-exact id
  'userName eq "ALICE@example.com"',
  'userName eq "emile@example.fr"',
  'userName eq "émile@EXAMPLE.FR"',
  'userName eq "éric@example.fr"',
  'userName eq "i̇pek@example.tr"',
  'userName eq "οδυσσεασ@example.gr"',
  'userName ne "bob@example.com"',
  'displayName eq "alice smith"',
  'displayName eq "ZOË STRASSE"',
  'displayName eq "zoë straße"',
  'displayName ne "Aaron"',
  'externalId eq "ext-b"',
  'externalId eq "EXT-b"',
  'externalId ne "ext-z"',
  'title eq "ENGINEER"',
  'title ne "engineer"',
  'nickName eq "aa"',
  'name.familyName eq "straße"',
  'name.familyName eq "παπαδοπουλοσ"',
  'name.familyName eq "ǆ"',
  // co / sw / ew
  'userName co "EXAMPLE.FR"',
  'userName co "%"',
  'userName co "_"',
  'userName sw "z"',
  'userName sw "É"',
  'userName sw ""',
  'userName ew ".COM"',
  'userName ew ""',
  'displayName co "straße"',
  'displayName co "👍"',
  'displayName sw "ä"',
  'displayName ew "ZOLA"',
  'title co "_b%"',
  'title sw "μηχ"',
  'name.givenName ew "NE"',
  // ordering comparisons on text: byte order (code points), as SQLite's BINARY
  'userName gt "b"',
  'userName ge "bob@example.com"',
  'userName lt "z"',
  'userName le "émile@example.fr"',
  'displayName gt "Zed"',
  'displayName lt "a"',
  'externalId gt "EXT"',
  'externalId lt "ext-b"',
  'name.familyName gt "Smith"',
  'title lt "a"',
  'id gt "0"',
  // booleans (Entra sends "True"/"False" strings), presence, null, missing attributes
  "active eq true",
  "active eq false",
  'active ne "False"',
  "active pr",
  "title pr",
  "nickName pr",
  "externalId pr",
  "name pr",
  "name.givenName pr",
  "emails pr",
  "phoneNumbers pr",
  "addresses pr",
  "x509Certificates pr",
  "title eq null",
  "title ne null",
  'noSuchAttribute eq "x"',
  'noSuchAttribute ne "x"',
  "noSuchAttribute pr",
  'name.noSuchSub eq "x"',
  // dates (meta.created and meta.lastModified are epoch milliseconds in columns)
  'meta.created gt "2024-03-01T12:00:00.002Z"',
  'meta.created ge "2024-03-01T12:00:00.002Z"',
  'meta.created lt "2024-03-01T12:00:00.001Z"',
  'meta.created le "2024-03-01T13:00:00+01:00"',
  'meta.lastModified gt "2024-03-01T12:00:00.005Z"',
  'meta.resourceType eq "User"',
  'meta.resourceType eq "Group"',
  // multi-valued attributes and value paths
  'emails[type eq "work" and value pr]',
  'emails[type eq "work"]',
  'emails[type eq "WORK"]',
  'emails[type eq "work" and value co "example.com"]',
  'emails[type eq "work" or type eq "home"]',
  'emails[not (type eq "work")]',
  "emails[primary eq true]",
  "emails[primary eq false]",
  'emails[value sw "Z"]',
  'emails[value ew "ORG"]',
  'emails[display eq "x"]',
  "emails[type pr]",
  'emails.value eq "alice@example.com"',
  'emails.value eq "ÄRGER@example.de"',
  'emails.value ne "bob@example.com"',
  'emails co "example.de"',
  'emails.type eq "work"',
  'phoneNumbers[type eq "work" and value co "1234"]',
  'phoneNumbers.value sw "+49"',
  'addresses[country eq "de"]',
  'addresses[locality eq "Berlin" and type eq "work"]',
  "addresses.country pr",
  'name[givenName eq "alice"]',
  'name[familyName sw "s" or givenName sw "z"]',
  // extension attributes
  `${enterprise}:employeeNumber eq "1001"`,
  `${enterprise}:employeeNumber gt "1000"`,
  `${enterprise}:department eq "ENGINEERING"`,
  `${enterprise}:department co "eer"`,
  `${enterprise}:department pr`,
  `${enterprise}:manager.value eq "m-1"`,
  `${enterprise}:manager pr`,
  `${enterprise}:costCenter ne "cc-1"`,
  // and / or / not, grouping
  'userName sw "a" and active eq true',
  'userName sw "a" or userName sw "z"',
  'not (userName sw "a")',
  'not (title eq "engineer")',
  "not (title pr)",
  'not (emails[type eq "work"])',
  '(userName sw "a" or userName sw "b") and not (active eq false)',
  'title pr and (title eq "engineer" or displayName co "zola")',
  'not (not (emails.type eq "home") and name.familyName pr)',
  'displayName co "e" and (emails[type eq "work" and primary eq true] or externalId pr)',
];

const groupFilters = [
  'displayName eq "ENGINEERS"',
  'displayName eq "straße-team"',
  'displayName co "TEAM"',
  'displayName sw "é"',
  'displayName gt "Sales"',
  'displayName lt "e"',
  'externalId eq "G-1"',
  "externalId pr",
  "members pr",
  "not (members pr)",
  'members[value eq "$alice"]',
  'members.value eq "$bob"',
  'members[display co "ZOË"]',
  'members[type eq "User" and display sw "a"]',
  'members ne "$alice"',
  'meta.created gt "2024-03-01T12:00:00.000Z"',
  'displayName ew "S" or members[display eq "İpek"]',
];

/** Member conditions of PATCH `members[…]` (memberIdsWhere), per group display name. */
const memberConditions = [
  'value eq "$alice"',
  'display eq "ALICE SMITH"',
  'display co "ö"',
  'display gt "B"',
  'type eq "User" and not (display pr)',
  'not (value eq "$bob") or display sw "z"',
];

const sortKeys = [
  "userName",
  "displayName",
  "externalId",
  "title",
  "nickName",
  "name.familyName",
  "name.givenName",
  "emails",
  "emails.type",
  "active",
  "meta.created",
  "meta.lastModified",
  "id",
  `${enterprise}:employeeNumber`,
  `${enterprise}:department`,
];

describe.skipIf(postgresUnavailable !== "")("SCIM filters and sortBy on SQLite and PostgreSQL", () => {
  let store: OpenDatabase;
  let ctx: WriteContext;
  let database: TestDatabase;
  let pool: pg.Pool;
  /** $name in a filter: that user's id (ids are random). */
  const ids = new Map<string, string>();
  const groupIds = new Map<string, string>();

  const bind = (filter: string) => filter.replace(/\$([a-z]+)/g, (_, name: string) => ids.get(name) ?? name);

  beforeAll(async () => {
    store = openDatabase("sqlite::memory:");
    const made = writeSync(
      store.db,
      onboardOrganizationOp({ slug: "parity" }, changeBy({ type: "operator", id: "test" })),
    );
    ctx = {
      ...changeBy({ type: "directory", id: made.directory.id }),
      organizationId: made.organization.id,
      directoryId: made.directory.id,
    };
    for (const [offset, body] of people) {
      const { document } = normalizeResource(userSchema, { schemas: [userSchema.core.urn], ...body });
      const resource = validateDocument(userSchema, document);
      const row = store.db.transaction((tx) => runSync(tx, createUser({ ...ctx, at: base + offset }, resource)));
      ids.set(String(body.userName).split("@")[0]!.toLowerCase(), row.id);
    }
    // A deleted user is in neither answer.
    const gone = runSync(store.db, getUser(ctx.directoryId, ids.get("gone")!))!;
    store.db.transaction((tx) => runSync(tx, deleteUser({ ...ctx, at: base + 9 }, gone)));
    const groupBodies: [string, string | undefined, string[]][] = [
      ["Engineers", "G-1", ["alice", "émile", "zoë"]],
      ["Straße-Team", undefined, ["zoë", "Ärger", "Bob"]],
      ["sales", "g-2", ["İpek"]],
      ["Éditeurs", undefined, []],
      ["Zebras", undefined, ["zed", "alice"]],
    ];
    for (const [i, [displayName, externalId, members]] of groupBodies.entries()) {
      const { document, kept } = normalizeResource(
        groupSchema,
        {
          schemas: [groupSchema.core.urn],
          displayName,
          ...(externalId ? { externalId } : {}),
          members: members.map((m) => {
            const id = ids.get(m.toLowerCase())!;
            return { value: id, display: runSync(store.db, getUser(ctx.directoryId, id))!.displayName };
          }),
        },
        ["members"],
      );
      const resource = validateDocument(groupSchema, document);
      const memberInput = parseMembers(kept.get("members"), "members");
      const row = store.db.transaction((tx) =>
        runSync(tx, createGroup({ ...ctx, at: base + i }, resource, memberInput)),
      );
      groupIds.set(displayName, row.id);
    }

    database = await freshDatabase({ icuLocale: "en-US" });
    await migratePostgres(database.url);
    pool = new pg.Pool({ connectionString: database.url, max: 2 });
    // Every row of the directory's tables, as SQLite holds it (0/1 become booleans where PostgreSQL has them).
    const booleans = new Set(
      (
        await pool.query<{ c: string }>(
          "SELECT table_name || '.' || column_name AS c FROM information_schema.columns WHERE table_schema = 'public' AND data_type = 'boolean'",
        )
      ).rows.map((r) => r.c),
    );
    for (const table of ["organizations", "directories", "users", "user_emails", "groups", "group_members"]) {
      const rows = store.sqlite.prepare(`SELECT * FROM ${table}`).all() as Record<string, unknown>[];
      for (const row of rows) {
        const columns = Object.keys(row);
        const values = columns.map((c) => (booleans.has(`${table}.${c}`) ? row[c] === 1 : row[c]));
        await pool.query(
          `INSERT INTO ${table} (${columns.map((c) => `"${c}"`).join(", ")}) VALUES (${columns.map((_, i) => `$${i + 1}`).join(", ")})`,
          values,
        );
      }
    }
  }, 60_000);

  afterAll(async () => {
    store?.close();
    await pool?.end();
    await database?.drop();
  });

  it("holds the same rows on both sides, in a database whose own collation does not order by code point", async () => {
    const count = async (table: string) => Number((await pool.query(`SELECT count(*) AS n FROM ${table}`)).rows[0].n);
    for (const table of ["users", "user_emails", "groups", "group_members"]) {
      const sqliteCount = (store.sqlite.prepare(`SELECT count(*) AS n FROM ${table}`).get() as { n: number }).n;
      expect({ table, count: await count(table) }).toEqual({ table, count: sqliteCount });
    }
    // The control: ordered by the database's default collation, these names are not in byte order.
    const names = ["alice", "Bob", "émile", "Zoë", "_under"];
    const { rows } = await pool.query<{ v: string[] }>(
      `SELECT array_agg(v ORDER BY v COLLATE "default") AS v FROM unnest($1::text[]) v`,
      [names],
    );
    expect(rows[0]!.v).not.toEqual([...names].sort());
    // The columns order by code point all the same (no astral characters here, where JavaScript's
    // UTF-16 order would differ).
    const userNames = await pool.query<{ user_name: string }>("SELECT user_name FROM users ORDER BY user_name");
    const column = userNames.rows.map((r) => r.user_name);
    expect(column).toEqual([...column].sort());
  });

  /**
   * The ids the store's listUsers op lists for a filter on SQLite and on PostgreSQL, in the default
   * order (created, id) or by `sort`, and what countUsers counts on each.
   */
  async function usersBoth(filter: string, sort?: { by: string; descending: boolean }) {
    const node = parseFilter(bind(filter));
    const query: ListQuery = {
      where: (dialect) => filterToSql(node, usersTarget(ctx.directoryId, dialect)),
      sortBy: sort && {
        expression: (dialect) => sortExpression(usersTarget(ctx.directoryId, dialect), sort.by),
        descending: sort.descending,
      },
      offset: 0,
      limit: 1000,
    };
    const sqliteIds = runSync(store.db, listUsers(ctx.directoryId, query)).map((r) => r.id);
    const postgresIds = (await runOnClient(pool, listUsers(ctx.directoryId, query))).map((r) => r.id);
    const sqliteCount = runSync(store.db, countUsers(ctx.directoryId, query.where));
    const postgresCount = await runOnClient(pool, countUsers(ctx.directoryId, query.where));
    return { sqliteIds, postgresIds, sqliteCount, postgresCount };
  }

  const names = (list: string[]) => list.map((id) => [...ids].find(([, v]) => v === id)?.[0] ?? id);

  it.each(userFilters)("users: %s", async (filter) => {
    const { sqliteIds, postgresIds, sqliteCount, postgresCount } = await usersBoth(filter);
    expect(names(postgresIds)).toEqual(names(sqliteIds));
    expect({ sqliteCount, postgresCount }).toEqual({ sqliteCount: sqliteIds.length, postgresCount: sqliteIds.length });
  });

  it("the corpus is not trivial: filters match between one user and all but one", async () => {
    const sizes = await Promise.all(userFilters.map(async (f) => (await usersBoth(f)).sqliteIds.length));
    expect(sizes.filter((n) => n > 0 && n < people.length - 1).length).toBeGreaterThan(userFilters.length / 2);
    expect(new Set(sizes).size).toBeGreaterThan(8);
  });

  it.each(groupFilters)("groups: %s", async (filter) => {
    const node = parseFilter(bind(filter));
    const where = (dialect: Dialect) => filterToSql(node, groupsTarget(ctx.directoryId, dialect));
    const query = { where, offset: 0, limit: 100 };
    const sqliteIds = runSync(store.db, listGroups(ctx.directoryId, query)).map((r) => r.id);
    const postgresIds = (await runOnClient(pool, listGroups(ctx.directoryId, query))).map((r) => r.id);
    expect(postgresIds).toEqual(sqliteIds);
    expect(await runOnClient(pool, countGroups(ctx.directoryId, where))).toBe(sqliteIds.length);
    expect(runSync(store.db, countGroups(ctx.directoryId, where))).toBe(sqliteIds.length);
  });

  it.each(memberConditions)("members of each group: %s", async (condition) => {
    const node = parseFilter(bind(condition));
    const members = groupSchema.core.attributes.get("members")!;
    for (const groupId of groupIds.values()) {
      const op = () =>
        memberIdsWhere(groupId, (dialect) =>
          elementCondition(
            node,
            membersCollection(members, (c) => c, dialect),
          ),
        );
      const sqliteIds = runSync(store.db, op());
      const postgresIds = await runOnClient(pool, op());
      expect(postgresIds.sort()).toEqual(sqliteIds.sort());
    }
  });

  it.each(sortKeys.flatMap((key) => [[key, false] as const, [key, true] as const]))(
    "users sorted by %s (descending: %s) come in the same order, mixed case and non-ASCII text included",
    async (sortBy, descending) => {
      const { sqliteIds, postgresIds } = await usersBoth("userName pr", { by: sortBy, descending });
      expect(names(postgresIds)).toEqual(names(sqliteIds));
    },
  );

  it("keyset pages (created_at, id) walk the users in the same order, whatever their ids", async () => {
    const walk = async (dialect: Dialect): Promise<string[]> => {
      const seen: string[] = [];
      let after: { createdAt: number; id: string } | undefined;
      for (;;) {
        const op = listUsers(ctx.directoryId, { offset: 0, limit: 2, after });
        const page = dialect === "sqlite" ? runSync(store.db, op) : await runOnClient(pool, op);
        if (page.length === 0) return seen;
        seen.push(...page.map((r) => r.id));
        after = { createdAt: page.at(-1)!.createdAt, id: page.at(-1)!.id };
      }
    };
    const sqliteWalk = await walk("sqlite");
    expect(sqliteWalk).toHaveLength(people.length - 1);
    expect(await walk("postgres")).toEqual(sqliteWalk);
  });
});
