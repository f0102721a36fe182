import type { SQL } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { onboardOrganizationOp } from "../../src/admin/onboarding.js";
import { openDatabase, type OpenDatabase } from "../../src/directory/database.js";
import { countGroups, createGroup, deleteGroup, getGroup, listGroups } from "../../src/directory/groups.js";
import { countUsers, createUser, deleteUser, getUser, listUsers, type UserRow } from "../../src/directory/users.js";
import { changeBy, type WriteContext } from "../../src/directory/write-context.js";
import { parseFilter } from "../../src/scim/filter/parser.js";
import { filterToSql } from "../../src/scim/filter/sql.js";
import { groupsTarget, sortExpression, usersTarget } from "../../src/scim/filter/targets.js";
import { runSync, writeSync } from "../../src/directory/store-op.js";

/**
 * List and count queries of SCIM's /Users and /Groups at the store: filtered pages come back in the
 * default order (creation, then id) with exactly the matching live users of the directory, and the
 * hot filters run on an index. SQLite plans without statistics here as in production (the bridge
 * never runs ANALYZE), so a plan seen on 40 rows is the plan a million rows get.
 */
let store: OpenDatabase;
let ctx: WriteContext;
let other: WriteContext;
let live: UserRow[];
const plans: { sql: string; plan: string }[] = [];

function contextOf(slug: string): WriteContext {
  const made = writeSync(store.db, onboardOrganizationOp({ slug }, changeBy({ type: "operator", id: "test" })));
  return {
    ...changeBy({ type: "directory", id: made.directory.id }),
    organizationId: made.organization.id,
    directoryId: made.directory.id,
  };
}

beforeAll(() => {
  store = openDatabase("sqlite::memory:");
  ctx = contextOf("plans-a");
  other = contextOf("plans-b");
  const base = Date.now();
  for (let i = 0; i < 40; i++) {
    // Four users share each creation millisecond, so the id decides their order.
    const at = { ...ctx, at: base + Math.floor(i / 4) };
    store.db.transaction((tx) =>
      runSync(
        tx,
        createUser(at, {
          userName: `person${i}@example.test`,
          externalId: `ext-${i % 10}`,
          displayName: `Person ${i % 5}`,
          active: i % 3 !== 0,
          emails: [{ value: `shared${i % 7}@example.test`, type: "work" }],
        }),
      ),
    );
    // The other tenant holds the same externalIds and emails: none of them may show up.
    if (i < 10)
      store.db.transaction((tx) =>
        runSync(
          tx,
          createUser(other, {
            userName: `person${i}@example.test`,
            externalId: `ext-${i}`,
            emails: [{ value: `shared${i % 7}@example.test` }],
          }),
        ),
      );
  }
  const all = runSync(store.db, listUsers(ctx.directoryId, { offset: 0, limit: 1000 }));
  // Tombstones in the middle of the order: an OFFSET page must skip them. Chosen by the number in
  // the userName, not by position (ids are random within a millisecond), so person7 always stays.
  const tombstoned = (row: { userName: string }) => Number(/\d+/.exec(row.userName)![0]) % 6 === 4;
  for (const row of all.filter(tombstoned)) store.db.transaction((tx) => runSync(tx, deleteUser(ctx, row)));
  live = all.filter((row) => !tombstoned(row));
  for (const name of ["Zeta", "alpha", "Beta", "gone"])
    store.db.transaction((tx) => runSync(tx, createGroup({ ...ctx, at: base }, { displayName: name }, [])));
  const goneFilter = filterToSql(parseFilter('displayName eq "gone"'), groupsTarget(ctx.directoryId));
  const gone = runSync(store.db, listGroups(ctx.directoryId, { where: () => goneFilter, offset: 0, limit: 10 }))[0]!;
  store.db.transaction((tx) => runSync(tx, deleteGroup(ctx, runSync(tx, getGroup(ctx.directoryId, gone.id))!)));

  // Every SELECT run from here on is planned again with its own parameters, to be inspected.
  const { sqlite } = store;
  const prepare = sqlite.prepare.bind(sqlite);
  sqlite.prepare = ((source: string) => {
    const statement = prepare(source);
    if (!/^\s*SELECT/i.test(source) || !/\bFROM (users|groups)\b/.test(source)) return statement;
    return new Proxy(statement, {
      get(target, key) {
        const value = Reflect.get(target, key) as unknown;
        if ((key === "all" || key === "get") && typeof value === "function")
          return (...args: unknown[]) => {
            const plan = (prepare(`EXPLAIN QUERY PLAN ${source}`).all(...args) as { detail: string }[])
              .map((r) => r.detail)
              .join(" | ");
            plans.push({ sql: source, plan });
            return (value as (...a: unknown[]) => unknown).apply(target, args);
          };
        return typeof value === "function" ? (value as (...a: unknown[]) => unknown).bind(target) : value;
      },
    });
  }) as typeof sqlite.prepare;
});
afterAll(() => store.close());

const where = (filter: string) => filterToSql(parseFilter(filter), usersTarget(ctx.directoryId));
const idsOf = (rows: { id: string }[]) => rows.map((r) => r.id);

/** Runs one filtered page and count, returning what they answered and how SQLite ran them. */
function page(
  filter: string | undefined,
  offset: number,
  limit: number,
  sortBy?: { expression: () => SQL; descending: boolean },
) {
  plans.length = 0;
  const condition = filter ? where(filter) : undefined;
  const filtered = condition && (() => condition);
  const rows = runSync(store.db, listUsers(ctx.directoryId, { where: filtered, sortBy, offset, limit }));
  const total = runSync(store.db, countUsers(ctx.directoryId, filtered));
  return { ids: idsOf(rows), total, plans: plans.map((p) => p.plan) };
}

const docOf = (row: UserRow) => JSON.parse(row.resource) as Record<string, unknown>;
const cases: [string, (row: UserRow) => boolean][] = [
  ['userName eq "PERSON7@example.test"', (r) => r.userName === "person7@example.test"],
  ['externalId eq "ext-3"', (r) => r.externalId === "ext-3"],
  ['displayName eq "Person 2"', (r) => r.displayName === "Person 2"],
  [
    'emails.value eq "shared4@example.test"',
    (r) => (docOf(r).emails as { value: string }[]).some((e) => e.value === "shared4@example.test"),
  ],
  [
    'emails[type eq "work"].value eq "shared1@example.test"',
    (r) =>
      (docOf(r).emails as { value: string; type?: string }[]).some(
        (e) => e.type === "work" && e.value === "shared1@example.test",
      ),
  ],
  ["active eq false", (r) => !r.active],
  ['userName sw "person1"', (r) => r.userName.startsWith("person1")],
];

describe("filtered lists", () => {
  it.each(cases)("%s: the directory's live matches, in creation order, paged and counted", (filter, matches) => {
    const expected = idsOf(live.filter(matches));
    expect(expected.length).toBeGreaterThan(0);
    const all = page(filter, 0, 1000);
    expect(all.ids).toEqual(expected);
    expect(all.total).toBe(expected.length);
    expect(page(filter, 1, 2).ids).toEqual(expected.slice(1, 3));
  });

  it.each(cases.slice(0, 5))("%s runs on an index, never a scan of the directory", (filter) => {
    const { plans: seen } = page(filter, 0, 100);
    expect(seen).toHaveLength(2);
    for (const plan of seen) {
      expect(plan).not.toMatch(/\bSCAN users\b/);
      // Not a walk of the whole directory in creation order either.
      expect(plan).not.toMatch(/users_dir_live_created_idx/);
    }
  });

  it("sorted by userName descending, filtered: the same order as sorting the matches", () => {
    const order = { expression: () => sortExpression(usersTarget(ctx.directoryId), "userName"), descending: true };
    const expected = idsOf(
      live.filter((r) => r.externalId === "ext-4").sort((a, b) => b.userNameLower.localeCompare(a.userNameLower)),
    );
    expect(page('externalId eq "ext-4"', 0, 100, order).ids).toEqual(expected);
  });
});

describe("unfiltered pages", () => {
  it("follow creation order, skip deleted users at any offset, and read the live-users index in order", () => {
    const expected = idsOf(live);
    for (const offset of [0, 5, 17, live.length - 2]) {
      const { ids, plans: seen } = page(undefined, offset, 4);
      expect(ids).toEqual(expected.slice(offset, offset + 4));
      // Ordered by the index itself: one page read, no sort of the directory.
      expect(seen[0]).toMatch(/users_dir_live_created_idx/);
      expect(seen[0]).not.toMatch(/TEMP B-TREE/);
    }
    expect(page(undefined, 0, 1).total).toBe(live.length);
  });

  it("lists live groups in creation order and by displayName filter", () => {
    const names = (rows: { displayName: string }[]) => rows.map((r) => r.displayName);
    const all = runSync(store.db, listGroups(ctx.directoryId, { offset: 0, limit: 10 }));
    expect(names(all).sort()).toEqual(["Beta", "Zeta", "alpha"]);
    const filter = filterToSql(parseFilter('displayName eq "BETA"'), groupsTarget(ctx.directoryId));
    plans.length = 0;
    expect(
      names(runSync(store.db, listGroups(ctx.directoryId, { where: () => filter, offset: 0, limit: 10 }))),
    ).toEqual(["Beta"]);
    expect(
      runSync(
        store.db,
        countGroups(ctx.directoryId, () => filter),
      ),
    ).toBe(1);
    // Entra looks groups up by displayName: one index probe, never a walk of the directory's groups.
    expect(plans).toHaveLength(2);
    for (const { plan } of plans) {
      expect(plan).toMatch(/groups_dir_display_idx/);
      expect(plan).not.toMatch(/\bSCAN groups\b/);
    }
    expect(runSync(store.db, getUser(other.directoryId, live[0]!.id))).toBeUndefined();
  });
});
