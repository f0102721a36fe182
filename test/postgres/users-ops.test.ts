/**
 * The user store ops (SCIM create, replace, patch, deactivate, delete, migrated users and their
 * claim) give the same outcome on SQLite and PostgreSQL: rows, email index, audit entries and jobs
 * written in the write's transaction, counts and generation, uniqueness, and rollback on error.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createDirectory, getDirectory } from "../../src/directory/directories.js";
import { createMigratedUsers } from "../../src/directory/migrated.js";
import { Lane } from "../../src/directory/outbox.js";
import type { SqlStore } from "../../src/directory/sql.js";
import { exec, many, one, type StoreOp } from "../../src/directory/store-op.js";
import {
  createUser,
  deleteUser,
  getUser,
  lockUser,
  updateUser,
  type UserResource,
  type UserRow,
} from "../../src/directory/users.js";
import { changeBy, type WriteContext } from "../../src/directory/write-context.js";
import { isBridgeError } from "../../src/errors.js";
import { postgresRowsRead, sqlitePlan, statementsSent } from "../helpers/statement-reads.js";
import { seedOrganization, storeDialects } from "../support/store-dialects.js";

const system = { type: "system", id: "test" } as const;

describe.each(storeDialects())("user store ops on $name", (dialect) => {
  let store: SqlStore;
  let directoryId: string;
  let at = 10_000;
  const ctx = (actor: WriteContext["actor"] = system): WriteContext => ({
    organizationId: "org_1",
    directoryId,
    actor,
    requestId: "req-1",
    at: ++at,
  });
  const idp = () => ctx({ type: "directory", id: directoryId });

  const directory = () => store.read(getDirectory(directoryId)).then((d) => d!);
  const audit = (targetId: string) =>
    store.read(
      many<{ action: string; before: string | null; after: string | null; requestId: string }>(
        `SELECT action, before, after, request_id AS "requestId" FROM audit_entries WHERE target_id = ? ORDER BY id`,
        [targetId],
      ),
    );
  const job = (subjectId: string) =>
    store.read(
      one<{ lane: number; state: string }>(`SELECT lane, state FROM jobs WHERE key = ? AND state = 'pending'`, [
        `user:${subjectId}`,
      ]),
    );
  const emails = (userId: string) =>
    store.read(
      many<{ position: number; valueLower: string; type: string | null; primary: number }>(
        `SELECT position, value_lower AS "valueLower", type, "primary" FROM user_emails WHERE user_id = ? ORDER BY position`,
        [userId],
      ),
    );
  const refusal = async (write: Promise<unknown>): Promise<string> => {
    const error = await write.then(
      () => undefined,
      (e: unknown) => e,
    );
    if (!isBridgeError(error)) throw new Error(`expected a refusal, got ${String(error)}`);
    return error.kind;
  };

  beforeAll(async () => {
    store = await dialect.open();
    await store.write(seedOrganization());
    directoryId = (await store.write(createDirectory({ organizationId: "org_1" }, changeBy(system, { at: 1 })))).id;
  });
  afterAll(() => dialect.cleanup());

  it("creates a user with its email index, audit entry, provision job, count and generation in one write", async () => {
    const before = await directory();
    const row = await store.write(
      createUser(ctx(), {
        userName: "Ada@Example.com",
        externalId: "ext-ada",
        displayName: "Ada",
        emails: [{ value: "Ada@Example.com", type: "work", primary: true }, { value: "ada@home.test" }],
      }),
    );
    expect(row).toMatchObject({ userName: "Ada@Example.com", userNameLower: "ada@example.com", active: true });
    expect(row.version).toBe(1);
    const read = await store.read(getUser(directoryId, row.id));
    expect(read).toEqual(row);
    expect(read!.active).toBe(true);
    expect(await store.write(lockUser(directoryId, row.id))).toEqual(row);
    expect(await store.read(getUser("dir_other", row.id))).toBeUndefined();
    expect(await emails(row.id)).toEqual([
      { position: 0, valueLower: "ada@example.com", type: "work", primary: 1 },
      { position: 1, valueLower: "ada@home.test", type: null, primary: 0 },
    ]);
    expect(await audit(row.id)).toEqual([
      {
        action: "user.create",
        before: null,
        after: JSON.stringify({ userName: "Ada@Example.com", externalId: "ext-ada", active: true }),
        requestId: "req-1",
      },
    ]);
    expect(await job(row.id)).toEqual({ lane: Lane.provision, state: "pending" });
    const after = await directory();
    expect(after.userCount).toBe(before.userCount + 1);
    expect(after.generation).toBe(before.generation + 1);
  });

  it("indexes many emails of one user in multi-row statements", async () => {
    const list = Array.from({ length: 620 }, (_, i) => ({ value: `Many${i}@X.test` }));
    const row = await store.write(createUser(ctx(), { userName: "many@x.test", emails: list }));
    const rows = await emails(row.id);
    expect(rows).toHaveLength(620);
    expect(rows[619]).toEqual({ position: 619, valueLower: "many619@x.test", type: null, primary: 0 });
  });

  it("refuses a second user with the same userName in another case, and frees it again after delete", async () => {
    const first = await store.write(createUser(ctx(), { userName: "grace@example.com" }));
    expect(await refusal(store.write(createUser(ctx(), { userName: "GRACE@example.com" })))).toBe("uniqueness");
    const other = await store.write(createUser(ctx(), { userName: "hopper@example.com" }));
    // A rename onto a taken userName is refused too.
    expect(await refusal(store.write(updateUser(ctx(), other, { userName: "Grace@Example.com" }, "user.patch")))).toBe(
      "uniqueness",
    );
    await store.write(deleteUser(ctx(), first));
    const again = await store.write(createUser(ctx(), { userName: "Grace@example.com" }));
    expect(again.id).not.toBe(first.id);
  });

  it("leaves exactly one user when two creates of one userName race", async () => {
    // On PostgreSQL the first write stays open a moment after its insert, so the second one's early
    // check cannot see it and the unique index decides; SQLite runs the writes one after the other.
    const slowly = function* (op: StoreOp<UserRow>): StoreOp<UserRow> {
      const row = yield* op;
      if (dialect.name === "PostgreSQL") yield* exec("SELECT pg_sleep(0.3)");
      return row;
    };
    const results = await Promise.allSettled([
      store.write(slowly(createUser(ctx(), { userName: "race@example.com" }))),
      store.write(createUser(ctx(), { userName: "RACE@example.com" })),
    ]);
    expect(results.filter((r) => r.status === "fulfilled")).toHaveLength(1);
    const failed = results.find((r) => r.status === "rejected")!.reason as unknown;
    expect(isBridgeError(failed) && failed.kind).toBe("uniqueness");
    const live = await store.read(
      many(`SELECT id FROM users WHERE directory_id = ? AND user_name_lower = ? AND deleted_at IS NULL`, [
        directoryId,
        "race@example.com",
      ]),
    );
    expect(live).toHaveLength(1);
  });

  it("replaces, patches, deactivates (deprovision lane in the same write) and reactivates", async () => {
    const row = await store.write(
      createUser(ctx(), { userName: "lin@example.com", emails: [{ value: "lin@example.com" }] }),
    );
    const unchanged = await store.write(updateUser(ctx(), row, JSON.parse(row.resource) as UserResource, "user.patch"));
    expect(unchanged).toEqual(row);
    const generation = (await directory()).generation;
    const replaced = await store.write(
      updateUser(
        ctx(),
        row,
        { userName: "lin@example.com", displayName: "Lin", emails: [{ value: "lin@work.test", primary: true }] },
        "user.replace",
      ),
    );
    expect(replaced).toMatchObject({ version: 2, displayName: "Lin", active: true });
    expect(await store.read(getUser(directoryId, row.id))).toEqual(replaced);
    expect((await directory()).generation).toBe(generation + 1);
    expect(await emails(row.id)).toEqual([{ position: 0, valueLower: "lin@work.test", type: null, primary: 1 }]);

    const patched = await store.write(
      updateUser(ctx(), replaced, { ...JSON.parse(replaced.resource), title: "Engineer" }, "user.patch"),
    );
    expect(patched.version).toBe(3);

    const deactivated = await store.write(
      updateUser(ctx(), patched, { ...JSON.parse(patched.resource), active: false }, "user.patch"),
    );
    expect(deactivated.active).toBe(false);
    expect((await store.read(getUser(directoryId, row.id)))!.active).toBe(false);
    expect(await job(row.id)).toEqual({ lane: Lane.deprovision, state: "pending" });

    await store.write(
      updateUser(ctx(), deactivated, { ...JSON.parse(deactivated.resource), active: true }, "user.patch"),
    );
    const entries = await audit(row.id);
    expect(entries.map((e) => e.action)).toEqual([
      "user.create",
      "user.replace",
      "user.patch",
      "user.deactivate",
      "user.reactivate",
    ]);
    expect(JSON.parse(entries[1]!.after!)).toEqual({
      userName: "lin@example.com",
      externalId: null,
      active: true,
      changed: ["displayName", "emails"],
    });
    expect(JSON.parse(entries[3]!.before!)).toEqual({ userName: "lin@example.com", externalId: null, active: true });
  });

  it("refuses to write over a version that moved since it was read", async () => {
    const row = await store.write(createUser(ctx(), { userName: "stale@example.com" }));
    await store.write(updateUser(ctx(), row, { userName: "stale@example.com", title: "a" }, "user.patch"));
    expect(
      await refusal(store.write(updateUser(ctx(), row, { userName: "stale@example.com", title: "b" }, "user.patch"))),
    ).toBe("preconditionFailed");
    expect(await refusal(store.write(deleteUser(ctx(), row)))).toBe("preconditionFailed");
    expect(JSON.parse((await store.read(getUser(directoryId, row.id)))!.resource)).toMatchObject({ title: "a" });
  });

  it("deletes: tombstone, emails and memberships gone, groups' counts and versions moved, deprovision job", async () => {
    const row = await store.write(
      createUser(ctx(), { userName: "leaver@example.com", emails: [{ value: "leaver@example.com" }] }),
    );
    for (const g of ["grp_a", "grp_b"]) {
      await store.write(
        exec(
          `INSERT INTO groups (id, directory_id, display_name, display_name_lower, resource, version, member_count, created_at, modified_at)
           VALUES (?, ?, ?, ?, '{}', 1, 1, 1, 1)`,
          [g, directoryId, g, g],
        ),
      );
      await store.write(
        exec(
          `INSERT INTO group_members (group_id, member_id, directory_id, member_type, added_at) VALUES (?, ?, ?, 'User', 1)`,
          [g, row.id, directoryId],
        ),
      );
    }
    const before = await directory();
    const now = at + 1;
    await store.write(deleteUser(ctx(), row));
    expect(await store.read(getUser(directoryId, row.id))).toBeUndefined();
    expect(
      await store.read(
        one(`SELECT version, deleted_at AS "deletedAt", modified_at AS "modifiedAt" FROM users WHERE id = ?`, [row.id]),
      ),
    ).toEqual({ version: 2, deletedAt: now, modifiedAt: now });
    expect(await emails(row.id)).toEqual([]);
    expect(await store.read(many(`SELECT group_id FROM group_members WHERE member_id = ?`, [row.id]))).toEqual([]);
    expect(
      await store.read(
        many(`SELECT id, member_count AS "memberCount", version, modified_at AS "modifiedAt" FROM groups ORDER BY id`),
      ),
    ).toEqual([
      { id: "grp_a", memberCount: 0, version: 2, modifiedAt: now },
      { id: "grp_b", memberCount: 0, version: 2, modifiedAt: now },
    ]);
    const after = await directory();
    expect(after.userCount).toBe(before.userCount - 1);
    expect(after.generation).toBe(before.generation + 1);
    const entries = await audit(row.id);
    expect(entries.at(-1)!.action).toBe("user.delete");
    expect(JSON.parse(entries.at(-1)!.before!)).toEqual({
      userName: "leaver@example.com",
      externalId: null,
      active: true,
      groups: 2,
    });
    expect(await job(row.id)).toEqual({ lane: Lane.deprovision, state: "pending" });
  });

  it("rolls back the user, its emails, audit entry, job and counts when the write fails after them", async () => {
    const before = await directory();
    let id = "";
    const failing = function* (): StoreOp<void> {
      id = (yield* createUser(ctx(), { userName: "rollback@example.com", emails: [{ value: "rollback@x.test" }] })).id;
      throw new Error("fails after its writes");
    };
    await expect(store.write(failing())).rejects.toThrow("fails after its writes");
    expect(await store.read(one(`SELECT id FROM users WHERE id = ?`, [id]))).toBeUndefined();
    expect(await emails(id)).toEqual([]);
    expect(await audit(id)).toEqual([]);
    expect(await job(id)).toBeUndefined();
    expect(await directory()).toEqual(before);
  });

  it("records migrated users in batches, and the IdP's create of the same person claims one once", async () => {
    const list = Array.from({ length: 230 }, (_, i) => ({
      resource: { userName: `mig${i}@example.com`, emails: [{ value: `mig${i}@example.com`, primary: true }] },
      emailLower: `mig${i}@example.com`,
      externalId: i === 1 ? "ext-mig-1" : null,
    }));
    const before = await directory();
    const rows = await store.write(createMigratedUsers(ctx(), "imp_1", list));
    expect(rows).toHaveLength(230);
    expect(rows[0]!.active).toBe(true);
    const after = await directory();
    expect(after.userCount).toBe(before.userCount + 230);
    expect(after.generation).toBe(before.generation + 1);
    expect(await store.read(getUser(directoryId, rows[229]!.id))).toEqual(rows[229]);
    expect(await emails(rows[229]!.id)).toEqual([
      { position: 0, valueLower: "mig229@example.com", type: null, primary: 1 },
    ]);
    expect(JSON.parse((await audit(rows[229]!.id))[0]!.after!)).toEqual({
      userName: "mig229@example.com",
      externalId: null,
      active: true,
      migration: "imp_1",
    });
    expect(await job(rows[229]!.id)).toEqual({ lane: Lane.provision, state: "pending" });
    expect(
      await store.read(
        one<{ n: number }>(`SELECT count(*) AS n FROM migrated_users WHERE import_id = 'imp_1' AND claimed_at IS NULL`),
      ),
    ).toEqual({ n: 230 });
    // By email: the IdP's create takes the migrated user over (same id, a new version).
    const claimed = await store.write(
      createUser(idp(), {
        userName: "Mig0@Example.com",
        displayName: "Mig Zero",
        emails: [{ value: "mig0@example.com" }],
      }),
    );
    expect(claimed).toMatchObject({ id: rows[0]!.id, version: 2, displayName: "Mig Zero" });
    // By externalId, even when the emails differ.
    const byExternal = await store.write(createUser(idp(), { userName: "someone@else.test", externalId: "ext-mig-1" }));
    expect(byExternal.id).toBe(rows[1]!.id);
    // Claimed once: the same person again is a second create of a taken userName.
    expect(await refusal(store.write(createUser(idp(), { userName: "mig0@example.com" })))).toBe("uniqueness");
    // An operator's create never claims.
    expect(await refusal(store.write(createUser(ctx(), { userName: "mig2@example.com" })))).toBe("uniqueness");
    expect(
      await store.read(
        many(`SELECT user_id AS "userId" FROM migrated_users WHERE claimed_at IS NOT NULL ORDER BY user_id`),
      ),
    ).toEqual([rows[0]!.id, rows[1]!.id].sort().map((userId) => ({ userId })));
    // A migrated userName taken meanwhile: the unique index refuses the whole batch.
    expect(
      await refusal(
        store.write(
          createMigratedUsers(ctx(), "imp_2", [
            { resource: { userName: "MIG5@example.com" }, emailLower: "mig5@example.com", externalId: null },
          ]),
        ),
      ),
    ).toBe("uniqueness");
    expect(await store.write(createMigratedUsers(ctx(), "imp_2", []))).toEqual([]);
    // A migrated user sharing an email but carrying another externalId is someone else: the IdP's
    // create makes a new user, and the migrated one stays unclaimed.
    const [other] = await store.write(
      createMigratedUsers(ctx(), "imp_3", [
        { resource: { userName: "pre@example.com" }, emailLower: "shared@example.com", externalId: "ext-a" },
      ]),
    );
    const created = await store.write(
      createUser(idp(), {
        userName: "new@example.com",
        externalId: "ext-b",
        emails: [{ value: "shared@example.com" }],
      }),
    );
    expect(created).toMatchObject({ userName: "new@example.com", version: 1 });
    expect(created.id).not.toBe(other!.id);
    expect(await job(created.id)).toEqual({ lane: Lane.provision, state: "pending" });
    // Not the unit's first statement (on PostgreSQL a prepared statement, not a text sent with the
    // BEGIN): the same insert, its parameters typed as the columns'.
    const later = await store.write(
      (function* () {
        yield* one("SELECT 1 AS one");
        return yield* createUser(idp(), {
          userName: "second@example.com",
          active: false,
          emails: [{ value: "2@x.test" }],
        });
      })(),
    );
    expect(await store.read(getUser(directoryId, later.id))).toMatchObject({
      userName: "second@example.com",
      active: false,
      version: 1,
      createdAt: later.createdAt,
    });
    expect(
      await store.read(one(`SELECT claimed_at AS "claimedAt" FROM migrated_users WHERE user_id = ?`, [other!.id])),
    ).toEqual({ claimedAt: null });
  });

  it("asks only the migrated users a create could be, in a directory of 20,000 of them", async () => {
    const { id: bigDirectory } = await store.write(
      createDirectory({ organizationId: "org_1" }, changeBy(system, { at: 1 })),
    );
    const inBig = (actor: WriteContext["actor"]): WriteContext => ({ ...ctx(actor), directoryId: bigDirectory });
    const list = Array.from({ length: 20_000 }, (_, i) => ({
      resource: { userName: `legacy${i}@example.com` },
      emailLower: `legacy${i}@example.com`,
      externalId: `legacy-${i}`,
    }));
    await store.write(createMigratedUsers(inBig(system), "imp_big", list));
    // A person who is none of them, in a write rolled back (so that the statements can run again),
    // and not its unit's first statement (on PostgreSQL a statement with parameters of its own).
    const { sent } = await statementsSent(store, /FROM migrated_users/, () =>
      store
        .write(
          (function* () {
            yield* one("SELECT 1 AS one");
            yield* createUser(inBig({ type: "directory", id: bigDirectory }), {
              userName: "newcomer@example.com",
              externalId: "ext-newcomer",
              emails: [{ value: "newcomer@example.com" }],
            });
            throw new Error("rolled back");
          })(),
        )
        .catch((e: unknown) => e),
    );
    expect(sent.length).toBeGreaterThan(0);
    for (const statement of sent) {
      if (dialect.name === "SQLite") {
        const plan = sqlitePlan(store, statement.text);
        expect(plan).not.toMatch(/SCAN migrated_users/);
        for (const search of plan.split("; ").filter((step) => step.includes(" migrated_users ")))
          expect(search).toMatch(/\((directory_id=\? AND (external_id|email_lower)|user_id)=\?\)/);
      } else {
        expect(await postgresRowsRead(store, statement, "migrated_users")).toBeLessThanOrEqual(2);
      }
    }
  });
});
