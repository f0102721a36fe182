/**
 * Deleting an organization while its IdP creates a user, from two instances: the user is never lost
 * with its job left behind, and the create never fails on a foreign key (a 500). Either the delete
 * sees the new user (409) or the create finds the directory gone (404).
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createDirectory } from "../../src/directory/directories.js";
import { deleteOrganization, getOrganization } from "../../src/directory/organizations.js";
import { postgresPoolOf, type SqlStore } from "../../src/directory/sql.js";
import { exec, many, one, type StoreOp } from "../../src/directory/store-op.js";
import { createUser, type UserRow } from "../../src/directory/users.js";
import { createGroup } from "../../src/directory/groups.js";
import { changeBy, type WriteContext } from "../../src/directory/write-context.js";
import { isBridgeError } from "../../src/errors.js";
import { withClient } from "../support/postgres.js";
import { storeDialects } from "../support/store-dialects.js";

const operator = { type: "operator", id: "ops" } as const;

const kindOf = async (p: Promise<unknown>): Promise<string> => {
  const error = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  if (error === undefined) return "ok";
  if (!isBridgeError(error)) throw error;
  return error.kind;
};

describe.each(storeDialects())("deleting an organization while a user is created, on $name", (dialect) => {
  let a: SqlStore;
  let b: SqlStore;
  let n = 0;
  beforeAll(async () => {
    [a, b] = await dialect.openTwo();
    // Each instance's pool has a connection open already, so that neither is slow to start a unit.
    await Promise.all([a.read(one("SELECT 1")), b.read(one("SELECT 1"))]);
  });
  afterAll(() => dialect.cleanup());

  /** A fresh organization with one directory; the IdP's write context in it. */
  const organization = async () => {
    const id = `org_race_${++n}`;
    await a.write(
      exec(
        `INSERT INTO organizations (id, slug, display_name, user_model, connection, created_at, updated_at)
         VALUES (?, ?, 'Race', 'isolated', 'race-db', 1, 1)`,
        [id, `race-${n}`],
      ),
    );
    const directory = await a.write(createDirectory({ organizationId: id }, changeBy(operator, { at: 1 })));
    const ctx = (): WriteContext => ({
      organizationId: id,
      directoryId: directory.id,
      actor: { type: "directory", id: directory.id },
      requestId: null,
      at: Date.now(),
    });
    return { id, ctx, row: (await a.read(getOrganization(id)))! };
  };

  const remains = (orgId: string) =>
    a.read(function* () {
      return {
        organizations: (yield* one<{ n: number }>("SELECT count(*) AS n FROM organizations WHERE id = ?", [orgId]))!.n,
        users: (yield* one<{ n: number }>(
          `SELECT count(*) AS n FROM users u JOIN directories d ON d.id = u.directory_id WHERE d.organization_id = ?`,
          [orgId],
        ))!.n,
        jobs: (yield* many<{ kind: string }>("SELECT kind FROM jobs WHERE organization_id = ? ORDER BY kind", [
          orgId,
        ])).map((j) => j.kind),
      };
    });

  it("a create whose organization another instance deleted meanwhile answers 404 and writes nothing", async () => {
    const org = await organization();
    const ctx = org.ctx();
    await b.write(deleteOrganization(org.row, changeBy(operator)));
    expect(await kindOf(a.write(createUser(ctx, { userName: "late@example.com", active: true })))).toBe("notFound");
    expect(await kindOf(a.write(createGroup(ctx, { displayName: "Late" }, [])))).toBe("notFound");
    expect(await remains(org.id)).toEqual({ organizations: 0, users: 0, jobs: [] });
  });

  if (dialect.name !== "PostgreSQL") return;

  /** Waits until a unit of `store` sits in its pg_sleep, holding what it locked so far. */
  const untilSleeping = async (store: SqlStore) => {
    const url = (postgresPoolOf(store)!.options as { connectionString: string }).connectionString;
    const app = (postgresPoolOf(store)!.options as { application_name: string }).application_name;
    for (let i = 0; i < 400; i++) {
      const { rows } = await withClient(url, (c) =>
        c.query<{ n: number }>(
          "SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = $1 AND state = 'active' AND query LIKE 'SELECT pg_sleep%'",
          [app],
        ),
      );
      if (rows[0]!.n > 0) return;
      await new Promise((r) => setTimeout(r, 10));
    }
    throw new Error("the unit never reached its sleep");
  };

  const thenSleep = function* <T>(op: StoreOp<T>): StoreOp<T> {
    const value = yield* op;
    yield* exec("SELECT pg_sleep(1)");
    return value;
  };

  it("a create under way when the delete starts: the delete waits for it, then refuses (409)", async () => {
    const org = await organization();
    const created = a.write(thenSleep(createUser(org.ctx(), { userName: "racer@example.com", active: true })));
    await untilSleeping(a);
    expect(await kindOf(b.write(deleteOrganization(org.row, changeBy(operator))))).toBe("conflict");
    const user: UserRow = await created;
    expect(user.userName).toBe("racer@example.com");
    expect(await remains(org.id)).toEqual({ organizations: 1, users: 1, jobs: ["user"] });
  });

  it("a delete under way when the create starts: the create waits for it, then answers 404", async () => {
    const org = await organization();
    const deleted = b.write(thenSleep(deleteOrganization(org.row, changeBy(operator))));
    await untilSleeping(b);
    expect(await kindOf(a.write(createUser(org.ctx(), { userName: "late@example.com", active: true })))).toBe(
      "notFound",
    );
    await deleted;
    expect(await remains(org.id)).toEqual({ organizations: 0, users: 0, jobs: [] });
  });
});
