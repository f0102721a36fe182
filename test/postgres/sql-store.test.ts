import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Database from "better-sqlite3";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  isUniqueViolation,
  NestedUnitOfWork,
  postgresStore,
  sqliteStore,
  toPositional,
  type SqlStore,
} from "../../src/directory/sql.js";
import { freshDatabase, postgresUnavailable, type TestDatabase } from "../support/postgres.js";

const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

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
    await store.write(async (q) => {
      // Type names both dialects accept; on PostgreSQL they are real int8 and boolean columns.
      await q.run(
        `CREATE TABLE people (id integer PRIMARY KEY, name text NOT NULL UNIQUE, seen_at bigint, admin boolean)`,
      );
      await q.run(`CREATE TABLE counter (id integer PRIMARY KEY, n integer NOT NULL)`);
      await q.run(`INSERT INTO counter (id, n) VALUES (1, 0)`);
      return undefined;
    });
  });
  afterAll(() => dialect.cleanup());

  it("returns rows of the same shape: int8 as a number, booleans as 1/0, quoted aliases kept", async () => {
    const at = 1_765_000_000_123;
    await store.write((q) =>
      q.run(`INSERT INTO people (id, name, seen_at, admin) VALUES (?, ?, ?, ?)`, [1, "Ada", at, true]),
    );
    const row = await store.read((q) =>
      q.get(
        `SELECT id, name AS "displayName", seen_at AS "seenAt", admin, 'why?' AS note FROM people WHERE id = ?`,
        [1],
      ),
    );
    expect(row).toEqual({ id: 1, displayName: "Ada", seenAt: at, admin: 1, note: "why?" });
    expect(await store.read((q) => q.get(`SELECT id FROM people WHERE id = ?`, [99]))).toBeUndefined();
  });

  it("rolls back everything a failed write did, and rejects with its error", async () => {
    const failure = store.write(async (q) => {
      await q.run(`INSERT INTO people (id, name) VALUES (?, ?)`, [2, "Grace"]);
      await q.run(`UPDATE counter SET n = n + 100 WHERE id = 1`);
      throw new Error("refused halfway");
    });
    await expect(failure).rejects.toThrow("refused halfway");
    expect(await store.read((q) => q.all(`SELECT id FROM people WHERE id = 2`))).toEqual([]);
    expect(await store.read((q) => q.get<{ n: number }>(`SELECT n FROM counter WHERE id = 1`))).toEqual({ n: 0 });
  });

  it("tells a duplicate in a unique index from other errors", async () => {
    const duplicate = await store
      .write((q) => q.run(`INSERT INTO people (id, name) VALUES (?, ?)`, [3, "Ada"]))
      .then(
        () => undefined,
        (err: unknown) => err,
      );
    expect(isUniqueViolation(duplicate)).toBe(true);
    const other = await store
      .write((q) => q.run(`INSERT INTO people (id, name) VALUES (?, ?)`, [4, null]))
      .then(
        () => undefined,
        (err: unknown) => err,
      );
    expect(other).toBeInstanceOf(Error);
    expect(isUniqueViolation(other)).toBe(false);
  });

  it("never shows a write's uncommitted rows to a read that starts while it waits", async () => {
    let inserted!: () => void;
    const insertedSignal = new Promise<void>((resolve) => (inserted = resolve));
    const write = store.write(async (q) => {
      await q.run(`INSERT INTO people (id, name) VALUES (?, ?)`, [5, "Linus"]);
      inserted();
      await pause(50);
      return undefined;
    });
    await insertedSignal;
    // On SQLite this read waits for the write's unit; on PostgreSQL it runs beside it. Either way it
    // must not see row 5 before the commit.
    const during = store.read((q) => q.all<{ id: number }>(`SELECT id FROM people WHERE id = 5`));
    const duringRows = await Promise.race([during, write.then(() => "committed first" as const)]);
    if (duringRows !== "committed first") expect(duringRows).toEqual([]);
    await write;
    expect(await store.read((q) => q.all(`SELECT id FROM people WHERE id = 5`))).toEqual([{ id: 5 }]);
  });

  it("keeps one snapshot for a whole read, whatever commits meanwhile", async () => {
    let firstDone!: () => void;
    const firstRead = new Promise<void>((resolve) => (firstDone = resolve));
    let proceed!: () => void;
    const proceedSignal = new Promise<void>((resolve) => (proceed = resolve));
    const read = store.read(async (q) => {
      const first = await q.get<{ c: number }>(`SELECT count(*) AS c FROM people`);
      firstDone();
      await proceedSignal;
      const second = await q.get<{ c: number }>(`SELECT count(*) AS c FROM people`);
      return [Number(first!.c), Number(second!.c)];
    });
    await firstRead;
    // Another caller writes while the read is open: on PostgreSQL it commits meanwhile, on SQLite it
    // waits for the read's unit to end.
    const write = store.write((w) => w.run(`INSERT INTO people (id, name) VALUES (?, ?)`, [6, "Barbara"]));
    if (store.dialect === "postgres") await write;
    else await pause(20);
    proceed();
    const counts = await read;
    await write;
    expect(counts[1]).toBe(counts[0]);
    const after = await store.read((q) => q.get<{ c: number }>(`SELECT count(*) AS c FROM people`));
    expect(Number(after!.c)).toBe(counts[0]! + 1);
  });

  it("applies concurrent writes one after another: no increment is lost", async () => {
    await Promise.all(
      Array.from({ length: 20 }, () =>
        store.write(async (q) => {
          await q.run(`UPDATE counter SET n = n + 1 WHERE id = 1`);
          await pause(1);
          return undefined;
        }),
      ),
    );
    expect(await store.read((q) => q.get<{ n: number }>(`SELECT n FROM counter WHERE id = 1`))).toEqual({ n: 20 });
  });

  it("refuses a unit of work opened inside another instead of deadlocking", async () => {
    await expect(store.write(() => store.read((q) => q.all(`SELECT 1 AS one`)))).rejects.toBeInstanceOf(
      NestedUnitOfWork,
    );
    // The store is still usable afterwards.
    expect(await store.read((q) => q.get(`SELECT 1 AS one`))).toEqual({ one: 1 });
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

  it("replaces a connection the server ended, so the next unit of work succeeds", async () => {
    const pid = await store.read((q) => q.get<{ pid: number }>(`SELECT pg_backend_pid() AS pid`));
    // Another session ends ours, as a failover or an idle-session timeout would.
    const killer = postgresStore(database.url, { poolSize: 1 });
    await killer.write((q) => q.get(`SELECT pg_terminate_backend(?)`, [pid!.pid]));
    await killer.close();
    await pause(50);
    const attempts = [];
    for (let i = 0; i < 2; i++)
      attempts.push(await store.read((q) => q.get(`SELECT 1 AS one`)).catch((e: unknown) => e));
    expect(attempts.at(-1)).toEqual({ one: 1 });
    const newPid = await store.read((q) => q.get<{ pid: number }>(`SELECT pg_backend_pid() AS pid`));
    expect(newPid!.pid).not.toBe(pid!.pid);
  });
});
