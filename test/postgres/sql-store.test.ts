import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Database from "better-sqlite3";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import {
  isUniqueViolation,
  NestedUnitOfWork,
  postgresStore,
  sqliteStore,
  toPositional,
  type SqlStore,
} from "../../src/directory/sql.js";
import { exec, forUpdate, jsonTextList, later, many, one, savepoint } from "../../src/directory/store-op.js";
import { freshDatabase, postgresUnavailable, type TestDatabase } from "../support/postgres.js";

describe("toPositional", () => {
  it("numbers placeholders and leaves those in strings, identifiers and comments alone", () => {
    expect(
      toPositional(`SELECT 'what?', "odd?name", ? -- not ?\n, /* nor ? */ ? FROM t WHERE x = 'it''s?' AND y = ?`),
    ).toBe(`SELECT 'what?', "odd?name", $1 -- not ?\n, /* nor ? */ $2 FROM t WHERE x = 'it''s?' AND y = $3`);
  });
});

interface Dialect {
  name: string;
  open(): Promise<SqlStore>;
  cleanup(): Promise<void>;
}

const sqlite = (): Dialect => {
  const dir = mkdtempSync(join(tmpdir(), "sql-store-"));
  let store: SqlStore | undefined;
  return {
    name: "SQLite",
    open: async () => {
      const connection = new Database(join(dir, "store.db"));
      connection.pragma("journal_mode = WAL");
      connection.pragma("busy_timeout = 5000");
      store = sqliteStore(connection);
      return store;
    },
    cleanup: async () => {
      await store?.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
};

const postgres = (): Dialect => {
  let database: TestDatabase | undefined;
  let store: SqlStore | undefined;
  return {
    name: "PostgreSQL",
    open: async () => {
      database = await freshDatabase();
      store = postgresStore(database.url, { poolSize: 4, applicationName: "sql-store test" });
      return store;
    },
    cleanup: async () => {
      await store?.close();
      await database?.drop();
    },
  };
};

// The SQLite half needs no server; both halves run in the postgres project so that one file holds
// the one contract (under CI the PostgreSQL half fails rather than skips when no server starts).
const dialects = postgresUnavailable === "" ? [sqlite(), postgres()] : [sqlite()];

describe.each(dialects)("SqlStore on $name", (dialect) => {
  let store: SqlStore;
  beforeAll(async () => {
    store = await dialect.open();
    await store.write(
      (function* () {
        // Type names both dialects accept; on PostgreSQL they are real int8 and boolean columns.
        yield* exec(
          `CREATE TABLE people (id integer PRIMARY KEY, name text NOT NULL UNIQUE, seen_at bigint, admin boolean)`,
        );
        yield* exec(`CREATE TABLE counter (id integer PRIMARY KEY, n integer NOT NULL)`);
        yield* exec(`INSERT INTO counter (id, n) VALUES (1, 0)`);
      })(),
    );
  });
  afterAll(() => dialect.cleanup());

  const count = () => store.read(one<{ n: number }>(`SELECT n FROM counter WHERE id = 1`));

  it("returns rows of the same shape: int8 as a number, booleans as 1/0, quoted aliases kept", async () => {
    const at = 1_765_000_000_123;
    await store.write(exec(`INSERT INTO people (id, name, seen_at, admin) VALUES (?, ?, ?, ?)`, [1, "Ada", at, true]));
    const row = await store.read(
      one(`SELECT id, name AS "displayName", seen_at AS "seenAt", admin, 'why?' AS note FROM people WHERE id = ?`, [1]),
    );
    expect(row).toEqual({ id: 1, displayName: "Ada", seenAt: at, admin: 1, note: "why?" });
    expect(await store.read(one(`SELECT id FROM people WHERE id = ?`, [99]))).toBeUndefined();
    expect(await store.write(exec(`UPDATE people SET seen_at = ? WHERE id IN (?, ?)`, [at + 1, 1, 99]))).toBe(1);
  });

  it("rolls back everything a failed write did, and rejects with its error", async () => {
    const failure = store.write(
      (function* () {
        yield* exec(`INSERT INTO people (id, name) VALUES (?, ?)`, [2, "Grace"]);
        yield* exec(`UPDATE counter SET n = n + 100 WHERE id = 1`);
        throw new Error("refused halfway");
      })(),
    );
    await expect(failure).rejects.toThrow("refused halfway");
    expect(await store.read(many(`SELECT id FROM people WHERE id = 2`))).toEqual([]);
    expect(await count()).toEqual({ n: 0 });
  });

  it("tells a duplicate in a unique index from other errors", async () => {
    const outcome = (p: Promise<unknown>) =>
      p.then(
        () => undefined,
        (err: unknown) => err,
      );
    const duplicate = await outcome(store.write(exec(`INSERT INTO people (id, name) VALUES (?, ?)`, [3, "Ada"])));
    expect(isUniqueViolation(duplicate)).toBe(true);
    const other = await outcome(store.write(exec(`INSERT INTO people (id, name) VALUES (?, ?)`, [4, null])));
    expect(other).toBeInstanceOf(Error);
    expect(isUniqueViolation(other)).toBe(false);
  });

  it("undoes only a savepoint's part when it fails, and the write goes on to commit the rest", async () => {
    const outcome = await store.write(
      (function* () {
        yield* exec(`INSERT INTO people (id, name) VALUES (?, ?)`, [7, "Hedy"]);
        try {
          yield* savepoint(
            (function* () {
              yield* exec(`UPDATE counter SET n = n + 1000 WHERE id = 1`);
              yield* exec(`INSERT INTO people (id, name) VALUES (?, ?)`, [8, "Ada"]);
            })(),
          );
          return "no conflict";
        } catch (error) {
          if (!isUniqueViolation(error)) throw error;
          // PostgreSQL would refuse this statement in an aborted transaction without the savepoint.
          yield* exec(`INSERT INTO people (id, name) VALUES (?, ?)`, [9, "Ada Lovelace"]);
          return "conflict handled";
        }
      })(),
    );
    expect(outcome).toBe("conflict handled");
    expect(await store.read(many(`SELECT id FROM people WHERE id IN (7, 8, 9) ORDER BY id`))).toEqual([
      { id: 7 },
      { id: 9 },
    ]);
    expect(await count()).toEqual({ n: 0 });
  });

  it("runs held writes in order, before the op's next statement and at commit, with their values exactly", async () => {
    const name = `O'Brien \\ "x" ? ' -- /* */ \\' ü 😀 \\n`;
    const at = 1_765_000_000_999;
    const seen = await store.write(
      (function* () {
        yield* later(`INSERT INTO people (id, name, seen_at, admin) VALUES (?, ?, ?, ?)`, [30, name, at, false]);
        yield* later(`UPDATE counter SET n = n + ? WHERE id = ?`, [5, 1]);
        // The next statement sees both.
        const row = yield* one<{ name: string; seenAt: number; admin: number; n: number }>(
          `SELECT p.name, p.seen_at AS "seenAt", p.admin, c.n FROM people p, counter c WHERE p.id = ? AND c.id = 1`,
          [30],
        );
        yield* later(`UPDATE counter SET n = n - ? WHERE id = ?`, [5, 1]);
        yield* later(`UPDATE people SET seen_at = ? WHERE id = ?`, [null, 30]);
        return row;
      })(),
    );
    expect(seen).toEqual({ name, seenAt: at, admin: 0, n: 5 });
    expect(await store.read(one(`SELECT name, seen_at AS "seenAt" FROM people WHERE id = ?`, [30]))).toEqual({
      name,
      seenAt: null,
    });
    expect(await count()).toEqual({ n: 0 });
  });

  it("fails the whole unit when a held write fails, without throwing it into the op", async () => {
    let caught: unknown;
    let cleanedUp = false;
    const failure = store.write(
      (function* () {
        try {
          yield* exec(`INSERT INTO people (id, name) VALUES (?, ?)`, [31, "Katherine"]);
          // A duplicate name: the unique index refuses it.
          yield* later(`INSERT INTO people (id, name) VALUES (?, ?)`, [32, "Ada"]);
          try {
            yield* one(`SELECT 1 AS one`);
          } catch (error) {
            caught = error;
          }
          yield* exec(`UPDATE counter SET n = n + 1 WHERE id = 1`);
        } finally {
          cleanedUp = true;
        }
      })(),
    );
    const error = await failure.then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(isUniqueViolation(error)).toBe(true);
    expect(caught).toBeUndefined();
    expect(cleanedUp).toBe(true);
    expect(await store.read(many(`SELECT id FROM people WHERE id IN (31, 32)`))).toEqual([]);
    expect(await count()).toEqual({ n: 0 });
  });

  it("binds a list as one parameter", async () => {
    const list = await store.read(
      (function* () {
        return yield* many<{ id: number }>(
          `SELECT id FROM people WHERE CAST(id AS text) IN (${yield* jsonTextList()}) ORDER BY id`,
          [JSON.stringify(["1", "7", "404"])],
        );
      })(),
    );
    expect(list).toEqual([{ id: 1 }, { id: 7 }]);
  });

  it("loses no update when concurrent writes read, then write, a row they lock", async () => {
    const increment = function* () {
      const row = yield* one<{ n: number }>(`SELECT n FROM counter WHERE id = 1 ${yield* forUpdate()}`);
      yield* exec(`UPDATE counter SET n = ? WHERE id = 1`, [row!.n + 1]);
    };
    await Promise.all(Array.from({ length: 20 }, () => store.write(increment())));
    expect(await count()).toEqual({ n: 20 });
  });
});

describe("SqlStore on SQLite", () => {
  it("refuses a unit of work opened inside a transaction of the same connection instead of joining it", async () => {
    const dir = mkdtempSync(join(tmpdir(), "sql-store-"));
    const connection = new Database(join(dir, "store.db"));
    try {
      const store = sqliteStore(connection);
      connection.prepare("BEGIN").run();
      await expect(store.read(one(`SELECT 1 AS one`))).rejects.toBeInstanceOf(NestedUnitOfWork);
      connection.prepare("COMMIT").run();
      expect(await store.read(one(`SELECT 1 AS one`))).toEqual({ one: 1 });
    } finally {
      connection.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe.skipIf(postgresUnavailable !== "")("SqlStore on PostgreSQL, connection loss", () => {
  let database: TestDatabase;
  let store: SqlStore;
  beforeAll(async () => {
    database = await freshDatabase();
    store = postgresStore(database.url, { poolSize: 1 });
  });
  afterAll(async () => {
    await store?.close();
    await database?.drop();
  });

  it("sends a write unit's BEGIN with its first statement and its held writes with its COMMIT", async () => {
    await store.write(exec(`CREATE TABLE IF NOT EXISTS trips (id integer PRIMARY KEY, note text)`));
    const queries: string[] = [];
    const query = pg.Client.prototype.query;
    const spy = vi.spyOn(pg.Client.prototype, "query").mockImplementation(function (
      this: pg.Client,
      ...args: unknown[]
    ) {
      const q = args[0] as string | { text: string };
      queries.push(typeof q === "string" ? q : q.text);
      return (query as (...a: unknown[]) => unknown).apply(this, args);
    } as typeof query);
    try {
      await store.write(
        (function* () {
          const none = yield* one(`SELECT id FROM trips WHERE id = ?`, [1]);
          if (none) throw new Error("expected an empty table");
          yield* later(`INSERT INTO trips (id, note) VALUES (?, ?)`, [1, "a"]);
          yield* later(`INSERT INTO trips (id, note) VALUES (?, ?)`, [2, "b"]);
        })(),
      );
    } finally {
      spy.mockRestore();
    }
    expect(queries).toHaveLength(2);
    expect(queries[0]).toMatch(/^BEGIN;\nSELECT id FROM trips WHERE id = '1'$/);
    expect(queries[1]).toMatch(/^INSERT INTO trips .*'a'\);\nINSERT INTO trips .*'b'\);\nCOMMIT$/);
    expect(await store.read(many(`SELECT id, note FROM trips ORDER BY id`))).toEqual([
      { id: 1, note: "a" },
      { id: 2, note: "b" },
    ]);
  });

  it("replaces a connection the server ended, so the next unit of work succeeds", async () => {
    const pid = await store.read(one<{ pid: number }>(`SELECT pg_backend_pid() AS pid`));
    // Another session ends ours, as a failover or an idle-session timeout would.
    const killer = postgresStore(database.url, { poolSize: 1 });
    await killer.write(one(`SELECT pg_terminate_backend(?)`, [pid!.pid]));
    await killer.close();
    await new Promise((resolve) => setTimeout(resolve, 50));
    const attempts = [];
    for (let i = 0; i < 2; i++) attempts.push(await store.read(one(`SELECT 1 AS one`)).catch((e: unknown) => e));
    expect(attempts.at(-1)).toEqual({ one: 1 });
    const newPid = await store.read(one<{ pid: number }>(`SELECT pg_backend_pid() AS pid`));
    expect(newPid!.pid).not.toBe(pid!.pid);
  });
});
