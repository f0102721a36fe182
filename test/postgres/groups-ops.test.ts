/**
 * The store ops of groups and their members give the same outcome on SQLite and on PostgreSQL:
 * rows, member lists, the audit entry and the reconcile jobs written in the write's own transaction,
 * displayName uniqueness per directory (also between concurrent transactions on PostgreSQL), and a
 * failed write leaving nothing behind.
 */
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  createGroup,
  deleteGroup,
  getGroup,
  lockGroup,
  updateGroup,
  type GroupRow,
  type MemberOperation,
} from "../../src/directory/groups.js";
import {
  deleteAllMembers,
  deleteMembers,
  deleteMembersExcept,
  enqueueMemberJobs,
  insertMembers,
  memberIdsWhere,
  missingUsers,
} from "../../src/directory/members.js";
import type { SqlStore } from "../../src/directory/sql.js";
import { migratePostgres } from "../../src/directory/postgres.js";
import { exec, many, one, runOnClient, sqliteShapedTypes, type StoreOp } from "../../src/directory/store-op.js";
import type { WriteContext } from "../../src/directory/write-context.js";
import { parseFilter } from "../../src/scim/filter/parser.js";
import { elementCondition } from "../../src/scim/filter/sql.js";
import { membersCollection } from "../../src/scim/filter/targets.js";
import { groupSchema } from "../../src/scim/schema.js";
import { freshDatabase, postgresUnavailable, type TestDatabase } from "../support/postgres.js";
import { seedOrganization, storeDialects } from "../support/store-dialects.js";

const ctx = (at: number, directoryId = "dir_1"): WriteContext => ({
  actor: { type: "directory", id: directoryId },
  requestId: `req-${at}`,
  at,
  organizationId: "org_1",
  directoryId,
});

/** `members[<filter>]` of a PATCH path, as src/scim/members.ts builds it. */
const membersWhere = (filter: string): MemberOperation => ({
  kind: "removeWhere",
  condition: (dialect) =>
    elementCondition(
      parseFilter(filter),
      membersCollection(groupSchema.core.attributes.get("members")!, (c) => c, dialect),
    ),
});

/** A PUT/PATCH as the SCIM handlers run it: lock the group, then update it, in one transaction. */
function* change(
  at: number,
  id: string,
  resource: Record<string, unknown> | undefined,
  operations: MemberOperation[],
): StoreOp<GroupRow> {
  const existing = yield* lockGroup("dir_1", id);
  if (!existing) throw new Error(`no group ${id}`);
  return yield* updateGroup(ctx(at), existing, resource, operations, "group.patch");
}

describe.each(storeDialects())("group store ops on $name", (dialect) => {
  let store: SqlStore;
  const members = (groupId: string) =>
    store.read(
      many<{ memberId: string; display: string | null; directoryId: string; addedAt: number }>(
        `SELECT member_id AS "memberId", display, directory_id AS "directoryId", added_at AS "addedAt"
         FROM group_members WHERE group_id = ? ORDER BY member_id`,
        [groupId],
      ),
    );
  const jobs = () =>
    store
      .read(many<{ key: string; lane: number }>(`SELECT key, lane FROM jobs ORDER BY key`))
      .then((rows) => rows.map((r) => r.key));
  const clearJobs = () => store.write(exec(`DELETE FROM jobs`));
  const directory = () =>
    store.read(
      one<{ groupCount: number; generation: number }>(
        `SELECT group_count AS "groupCount", generation FROM directories WHERE id = 'dir_1'`,
      ),
    );
  const audit = (targetId: string) =>
    store.read(
      many<{ action: string; before: string | null; after: string | null; requestId: string }>(
        `SELECT action, before, after, request_id AS "requestId" FROM audit_entries WHERE target_id = ? ORDER BY id`,
        [targetId],
      ),
    );

  beforeAll(async () => {
    store = await dialect.open();
    await store.write(seedOrganization());
    for (const dir of ["dir_1", "dir_2"])
      await store.write(
        exec(`INSERT INTO directories (id, organization_id, name, created_at) VALUES (?, 'org_1', ?, 1)`, [dir, dir]),
      );
    const user = (id: string, directoryId: string, deletedAt: number | null = null) =>
      exec(
        `INSERT INTO users (id, directory_id, user_name, user_name_lower, active, resource, version, created_at, modified_at, deleted_at)
         VALUES (?, ?, ?, ?, ?, '{}', 1, 1, 1, ?)`,
        [id, directoryId, id, id, true, deletedAt],
      );
    for (const id of ["u1", "u2", "u3", "u4"]) await store.write(user(id, "dir_1"));
    await store.write(user("u_gone", "dir_1", 5));
    await store.write(user("u_other", "dir_2"));
  });
  afterAll(() => dialect.cleanup());

  it("creates a group with its members, counts, generation, audit entry and member jobs in one write", async () => {
    const before = await directory();
    const row = await store.write(
      createGroup(ctx(1000), { displayName: "Engineering", externalId: "ext-eng" }, [
        { value: "u1", display: "User One" },
        { value: "u2" },
        { value: "u1" },
      ]),
    );
    expect(row).toMatchObject({
      directoryId: "dir_1",
      displayName: "Engineering",
      displayNameLower: "engineering",
      externalId: "ext-eng",
      version: 1,
      memberCount: 2,
      createdAt: 1000,
      modifiedAt: 1000,
      deletedAt: null,
    });
    expect(JSON.parse(row.resource)).toEqual({ displayName: "Engineering", externalId: "ext-eng" });
    expect(await store.read(getGroup("dir_1", row.id))).toEqual(row);
    expect(await store.read(getGroup("dir_2", row.id))).toBeUndefined();
    expect(await members(row.id)).toEqual([
      { memberId: "u1", display: "User One", directoryId: "dir_1", addedAt: 1000 },
      { memberId: "u2", display: null, directoryId: "dir_1", addedAt: 1000 },
    ]);
    expect(await directory()).toEqual({ groupCount: before!.groupCount + 1, generation: before!.generation + 1 });
    const [entry, ...rest] = await audit(row.id);
    expect(rest).toEqual([]);
    expect(entry!.action).toBe("group.create");
    expect(entry!.requestId).toBe("req-1000");
    expect(JSON.parse(entry!.after!)).toEqual({
      displayName: "Engineering",
      externalId: "ext-eng",
      members: { added: 2, removed: 0, addedIds: ["u1", "u2"], removedIds: [] },
    });
    expect(await jobs()).toEqual(["user:u1", "user:u2"]);
    await clearJobs();
  });

  it("refuses a second live group with the same displayName, ignoring case, and writes nothing", async () => {
    const before = await directory();
    const error = await store.write(createGroup(ctx(2000), { displayName: "ENGINEERING" }, [])).catch((e) => e);
    expect(error).toMatchObject({ kind: "uniqueness", status: 409 });
    // The same name in another directory is fine.
    const elsewhere = await store.write(createGroup(ctx(2000, "dir_2"), { displayName: "Engineering" }, []));
    expect(elsewhere.directoryId).toBe("dir_2");
    expect(await directory()).toEqual(before);
    const names = await store.read(
      many<{ n: number }>(`SELECT count(*) AS n FROM groups WHERE display_name_lower = 'engineering'`),
    );
    expect(names).toEqual([{ n: 2 }]);
    await expect(store.write(createGroup(ctx(2000), { displayName: "  " }, []))).rejects.toMatchObject({
      kind: "invalidValue",
    });
    await clearJobs();
  });

  it("refuses members that are not live users of the directory, writing nothing", async () => {
    expect(await store.read(missingUsers("dir_1", ["u1", "u_other", "u_gone", "nobody", "u1"]))).toEqual([
      "u_other",
      "u_gone",
      "nobody",
    ]);
    expect(await store.read(missingUsers("dir_1", []))).toEqual([]);
    const before = await directory();
    await expect(
      store.write(createGroup(ctx(3000), { displayName: "Cross" }, [{ value: "u1" }, { value: "u_other" }])),
    ).rejects.toMatchObject({ kind: "invalidValue", message: expect.stringContaining("u_other") });
    expect(await directory()).toEqual(before);
    expect(await store.read(many(`SELECT id FROM groups WHERE display_name = 'Cross'`))).toEqual([]);
    expect(await jobs()).toEqual([]);
  });

  it("renames a group: new version, group job, audit of what changed; the case of its own name may change", async () => {
    const group = await store.write(createGroup(ctx(4000), { displayName: "Sales" }, [{ value: "u3" }]));
    await store.write(createGroup(ctx(4000), { displayName: "Marketing" }, []));
    await clearJobs();
    const before = await directory();
    const renamed = await store.write(change(4100, group.id, { displayName: "sales EMEA", externalId: "ext-s" }, []));
    expect(renamed).toMatchObject({
      displayName: "sales EMEA",
      displayNameLower: "sales emea",
      externalId: "ext-s",
      version: 2,
      memberCount: 1,
      createdAt: 4000,
      modifiedAt: 4100,
    });
    expect((await directory())!.generation).toBe(before!.generation + 1);
    expect(await jobs()).toEqual([`group:${group.id}`]);
    const entries = await audit(group.id);
    expect(entries.map((e) => e.action)).toEqual(["group.create", "group.patch"]);
    expect(JSON.parse(entries[1]!.before!)).toEqual({ displayName: "Sales", externalId: null });
    expect(JSON.parse(entries[1]!.after!)).toMatchObject({
      displayName: "sales EMEA",
      externalId: "ext-s",
      changed: ["displayName", "externalId"],
    });

    const cased = await store.write(change(4200, group.id, { displayName: "Sales EMEA", externalId: "ext-s" }, []));
    expect(cased).toMatchObject({ displayName: "Sales EMEA", version: 3 });
    await expect(store.write(change(4300, group.id, { displayName: "MARKETING" }, []))).rejects.toMatchObject({
      kind: "uniqueness",
    });
    expect(await store.read(getGroup("dir_1", group.id))).toEqual(cased);

    // Nothing changed: no new version, no generation move, no audit entry.
    const generation = (await directory())!.generation;
    const same = await store.write(change(4400, group.id, { displayName: "Sales EMEA", externalId: "ext-s" }, []));
    expect(same).toEqual(cased);
    expect((await directory())!.generation).toBe(generation);
    expect(await audit(group.id)).toHaveLength(3);
    await clearJobs();
  });

  it("applies member edits in order, with a job for exactly the users whose membership changed", async () => {
    const group = await store.write(createGroup(ctx(5000), { displayName: "Edits" }, [{ value: "u1" }]));
    await clearJobs();
    // Added then removed in one request: no change, no job, for u2; u3 added.
    const patched = await store.write(
      change(5100, group.id, undefined, [
        { kind: "add", members: [{ value: "u2" }, { value: "u3", display: "Three" }, { value: "u1" }] },
        { kind: "remove", ids: ["u2", "nobody"] },
      ]),
    );
    expect(patched).toMatchObject({ version: 2, memberCount: 2, modifiedAt: 5100 });
    expect((await members(group.id)).map((m) => m.memberId)).toEqual(["u1", "u3"]);
    expect(await jobs()).toEqual(["user:u3"]);
    const [, entry] = await audit(group.id);
    expect(JSON.parse(entry!.after!).members).toEqual({ added: 1, removed: 0, addedIds: ["u3"], removedIds: [] });
    await clearJobs();

    // members[value eq "u3"] (Okta and Entra's PATCH remove), then a full replace.
    const filtered = await store.write(change(5200, group.id, undefined, [membersWhere('value eq "u3"')]));
    expect(filtered).toMatchObject({ version: 3, memberCount: 1 });
    expect(await jobs()).toEqual(["user:u3"]);
    await clearJobs();
    const replaced = await store.write(
      change(5300, group.id, undefined, [{ kind: "replace", members: [{ value: "u2" }, { value: "u4" }] }]),
    );
    expect(replaced).toMatchObject({ version: 4, memberCount: 2 });
    expect((await members(group.id)).map((m) => m.memberId)).toEqual(["u2", "u4"]);
    expect(await jobs()).toEqual(["user:u1", "user:u2", "user:u4"]);
    await clearJobs();

    // A member of another directory is refused; the earlier edits of the same request are undone.
    await expect(
      store.write(
        change(5400, group.id, undefined, [{ kind: "removeAll" }, { kind: "add", members: [{ value: "u_other" }] }]),
      ),
    ).rejects.toMatchObject({ kind: "invalidValue" });
    expect((await members(group.id)).map((m) => m.memberId)).toEqual(["u2", "u4"]);
    expect(await store.read(getGroup("dir_1", group.id))).toEqual(replaced);

    const emptied = await store.write(change(5500, group.id, undefined, [{ kind: "removeAll" }]));
    expect(emptied).toMatchObject({ version: 5, memberCount: 0 });
    expect(await members(group.id)).toEqual([]);
    expect(await jobs()).toEqual(["user:u2", "user:u4"]);
    await clearJobs();
  });

  it("runs the member statements on their own: inserts, deletes, except-lists and conditions", async () => {
    const group = await store.write(createGroup(ctx(6000), { displayName: "Raw" }, []));
    expect(
      (
        await store.write(insertMembers("dir_1", group.id, [{ value: "u1" }, { value: "u2" }, { value: "u3" }], 6001))
      ).sort(),
    ).toEqual(["u1", "u2", "u3"]);
    expect(await store.write(insertMembers("dir_1", group.id, [{ value: "u1" }], 6002))).toEqual([]);
    expect(await store.write(insertMembers("dir_1", group.id, [], 6002))).toEqual([]);
    const displayCondition = membersWhere('value eq "u2" or value eq "u3"');
    if (displayCondition.kind !== "removeWhere") throw new Error("unreachable");
    expect((await store.read(memberIdsWhere(group.id, displayCondition.condition))).sort()).toEqual(["u2", "u3"]);
    expect(await store.write(deleteMembers(group.id, ["u2", "u2", "nobody"]))).toEqual(["u2"]);
    expect(await store.write(deleteMembers(group.id, []))).toEqual([]);
    expect(await store.write(deleteMembersExcept(group.id, ["u1"]))).toEqual(["u3"]);
    expect(await store.write(deleteAllMembers(group.id))).toEqual(["u1"]);
    expect(await store.write(deleteMembersExcept(group.id, []))).toEqual([]);
    await store.write(enqueueMemberJobs(ctx(6003), ["u1", "u1", "u4"], 6003));
    expect(await jobs()).toEqual(["user:u1", "user:u4"]);
    await clearJobs();
  });

  it("deletes a group: tombstone, memberships gone, group and member jobs, count down; its name is free again", async () => {
    const group = await store.write(
      createGroup(ctx(7000), { displayName: "Doomed" }, [{ value: "u1" }, { value: "u2" }]),
    );
    await clearJobs();
    const before = await directory();
    await store.write(
      (function* () {
        const existing = yield* lockGroup("dir_1", group.id);
        yield* deleteGroup(ctx(7100), existing!);
      })(),
    );
    expect(await store.read(getGroup("dir_1", group.id))).toBeUndefined();
    expect(await store.write(lockGroup("dir_1", group.id))).toBeUndefined();
    const tombstone = await store.read(
      one(`SELECT deleted_at AS "deletedAt", member_count AS "memberCount", version FROM groups WHERE id = ?`, [
        group.id,
      ]),
    );
    expect(tombstone).toEqual({ deletedAt: 7100, memberCount: 0, version: 2 });
    expect(await members(group.id)).toEqual([]);
    expect(await directory()).toEqual({ groupCount: before!.groupCount - 1, generation: before!.generation + 1 });
    expect(await jobs()).toEqual([`group:${group.id}`, "user:u1", "user:u2"]);
    const entries = await audit(group.id);
    expect(entries.map((e) => e.action)).toEqual(["group.create", "group.delete"]);
    expect(JSON.parse(entries[1]!.before!)).toEqual({ displayName: "Doomed", externalId: null, members: 2 });
    const again = await store.write(createGroup(ctx(7200), { displayName: "doomed" }, []));
    expect(again.id).not.toBe(group.id);
    await clearJobs();
  });

  it("rolls back the group, its members, audit entry, jobs and counts when the write fails later on", async () => {
    const before = await directory();
    const auditCount = await store.read(one<{ n: number }>(`SELECT count(*) AS n FROM audit_entries`));
    await expect(
      store.write(
        (function* () {
          yield* createGroup(ctx(8000), { displayName: "Phantom" }, [{ value: "u1" }]);
          throw new Error("crash after the writes, before commit");
        })(),
      ),
    ).rejects.toThrow("crash");
    expect(await directory()).toEqual(before);
    expect(await store.read(one<{ n: number }>(`SELECT count(*) AS n FROM audit_entries`))).toEqual(auditCount);
    expect(await store.read(many(`SELECT id FROM groups WHERE display_name = 'Phantom'`))).toEqual([]);
    expect(await jobs()).toEqual([]);
  });

  it("keeps names unique and member counts exact when writes of one directory run at the same time", async () => {
    const results = await Promise.allSettled(
      [0, 1, 2, 3].map((i) => store.write(createGroup(ctx(9000 + i), { displayName: `Race ${i % 2}` }, []))),
    );
    expect(results.filter((r) => r.status === "fulfilled")).toHaveLength(2);
    const refused = results.filter((r): r is PromiseRejectedResult => r.status === "rejected");
    expect(refused.map((r) => (r.reason as { kind: string }).kind)).toEqual(["uniqueness", "uniqueness"]);

    const group = await store.write(createGroup(ctx(9100), { displayName: "Busy" }, []));
    await Promise.all(
      ["u1", "u2", "u3", "u4"].map((id, i) =>
        store.write(change(9200 + i, group.id, undefined, [{ kind: "add", members: [{ value: id }] }])),
      ),
    );
    expect(await store.read(getGroup("dir_1", group.id))).toMatchObject({ memberCount: 4, version: 5 });
    await clearJobs();
  });
});

/**
 * Two instances' transactions interleaved by hand: the first has written and not yet committed when
 * the second starts; the second must wait for it and then act on what it committed.
 */
describe.skipIf(postgresUnavailable !== "")("group writes of two PostgreSQL transactions at once", () => {
  let database: TestDatabase;
  const clients: pg.Client[] = [];
  const connect = async () => {
    const client = new pg.Client({ connectionString: database.url, types: sqliteShapedTypes });
    await client.connect();
    clients.push(client);
    return client;
  };
  let first: pg.Client;
  let second: pg.Client;

  /** Resolves once `client`'s backend waits for a lock another transaction holds. */
  const blocked = async (client: pg.Client) => {
    for (;;) {
      const { rows } = await first.query<{ waiting: boolean }>(
        "SELECT wait_event_type = 'Lock' AS waiting FROM pg_stat_activity WHERE pid = $1",
        [(client as unknown as { processID: number }).processID],
      );
      if (rows[0]?.waiting) return;
      await new Promise((r) => setTimeout(r, 10));
    }
  };

  beforeAll(async () => {
    database = await freshDatabase();
    await migratePostgres(database.url);
    first = await connect();
    second = await connect();
    await first.query(`INSERT INTO organizations (id, slug, display_name, user_model, connection, created_at, updated_at)
      VALUES ('org_1', 'acme', 'Acme', 'isolated', 'acme-db', 1, 1)`);
    await first.query(
      `INSERT INTO directories (id, organization_id, name, created_at) VALUES ('dir_1', 'org_1', 'd', 1)`,
    );
  });
  afterAll(async () => {
    await Promise.all(clients.splice(0).map((c) => c.end()));
    await database?.drop();
  });

  it("refuses the second of two groups created with one displayName before either committed", async () => {
    await first.query("BEGIN");
    await runOnClient(first, createGroup(ctx(1000), { displayName: "Twins" }, []));
    await second.query("BEGIN");
    const late = runOnClient(second, createGroup(ctx(1001), { displayName: "TWINS" }, [])).catch((e: unknown) => e);
    await blocked(second);
    await first.query("COMMIT");
    const outcome = await late;
    await second.query("ROLLBACK");
    expect(outcome).toMatchObject({ kind: "uniqueness" });
    const { rows } = await first.query("SELECT display_name FROM groups WHERE display_name_lower = 'twins'");
    expect(rows).toEqual([{ display_name: "Twins" }]);
  });

  it("applies a PATCH to the document the other transaction committed, not to the one it read before", async () => {
    const group = await runOnClient(first, createGroup(ctx(2000), { displayName: "Shared" }, []));
    const patch = (at: number, attribute: string) =>
      (function* () {
        const existing = yield* lockGroup("dir_1", group.id);
        const resource = { ...(JSON.parse(existing!.resource) as Record<string, unknown>), [attribute]: at };
        return yield* updateGroup(ctx(at), existing!, resource, [], "group.patch");
      })();
    await first.query("BEGIN");
    await runOnClient(first, patch(2001, "urn:test:first"));
    await second.query("BEGIN");
    const late = runOnClient(second, patch(2002, "urn:test:second"));
    await blocked(second);
    await first.query("COMMIT");
    const row = await late;
    await second.query("COMMIT");
    expect(row.version).toBe(3);
    expect(JSON.parse(row.resource)).toEqual({
      displayName: "Shared",
      "urn:test:first": 2001,
      "urn:test:second": 2002,
    });
  });
});
