/**
 * Cross-instance exclusion on PostgreSQL: list rewrites under a transaction-scoped advisory lock run
 * one at a time across instances (each its own pool), and periodic work has exactly one leader,
 * which hands over when its session dies or it stops.
 */
import pg from "pg";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { boundedAdvisoryLocks, runAsLeader, withAdvisoryLock, type Leadership } from "../../src/directory/pg/locks.js";
import { migratePostgres } from "../../src/directory/postgres.js";
import { freshDatabase, postgresUnavailable, withClient, type TestDatabase } from "../support/postgres.js";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until(what: string, cond: () => boolean | Promise<boolean>, timeoutMs = 15_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`timed out waiting until ${what}`);
    await sleep(20);
  }
}

describe.skipIf(postgresUnavailable !== "")("advisory locks across instances", () => {
  let database: TestDatabase;
  const pools: pg.Pool[] = [];
  const leaderships: Leadership[] = [];

  beforeAll(async () => {
    database = await freshDatabase();
    await migratePostgres(database.url);
  });
  afterEach(async () => {
    await Promise.all(leaderships.splice(0).map((l) => l.stop()));
    await Promise.all(pools.splice(0).map((p) => p.end()));
  });
  afterAll(async () => {
    await database?.drop();
  });

  const instance = (): pg.Pool => {
    const pool = new pg.Pool({ connectionString: database.url, max: 4 });
    pools.push(pool);
    return pool;
  };

  describe("withAdvisoryLock", () => {
    it("bounded: holders that need another connection of the pool while they hold the lock never take every connection", async () => {
      // Eight list rewrites on eight keys at once, each making a further query on the same pool
      // while it holds its lock (as a rewrite's Auth0 call claims rate tokens). Unbounded, four of
      // them take the pool's four connections and wait for a fifth until the connect timeout.
      const pool = new pg.Pool({ connectionString: database.url, max: 4, connectionTimeoutMillis: 3_000 });
      pools.push(pool);
      const rewrite = (key: string) => async () => {
        await sleep(50);
        const { rows } = await pool.query<{ one: number }>("SELECT 1 AS one");
        return `${key}:${rows[0]!.one}`;
      };
      const keys = Array.from({ length: 8 }, (_, i) => `organization ${i}`);
      const unbounded = await Promise.allSettled(keys.map((k) => withAdvisoryLock(pool, k, rewrite(k))));
      expect(unbounded.some((o) => o.status === "rejected")).toBe(true);
      const locks = boundedAdvisoryLocks(pool, 2);
      const bounded = await Promise.all(keys.map((k) => locks(k, rewrite(k))));
      expect(bounded).toEqual(keys.map((k) => `${k}:1`));
    });

    it("runs the critical sections of three instances on one key one at a time", async () => {
      let inside = 0;
      let most = 0;
      let done = 0;
      const section = async () => {
        inside++;
        most = Math.max(most, inside);
        // Long enough that unserialised sections would overlap.
        await sleep(15);
        inside--;
        done++;
      };
      await Promise.all(
        [instance(), instance(), instance()].flatMap((pool) =>
          Array.from({ length: 4 }, () => withAdvisoryLock(pool, "org:org_1:members", section)),
        ),
      );
      expect(done).toBe(12);
      expect(most).toBe(1);
    });

    it("does not hold back a section on another key", async () => {
      const [one, other] = [instance(), instance()];
      let enteredOther!: () => void;
      const otherEntered = new Promise<void>((r) => (enteredOther = r));
      // The first section waits inside its lock until the second is inside its own: were the keys
      // serialised, neither would finish.
      await Promise.all([
        withAdvisoryLock(one, "org:org_1:members", () => otherEntered),
        withAdvisoryLock(other, "org:org_2:members", async () => enteredOther()),
      ]);
    });

    it("releases the lock when the section throws, and rolls back its writes", async () => {
      const [one, other] = [instance(), instance()];
      await withClient(database.url, (c) => c.query("CREATE TABLE IF NOT EXISTS lock_probe (n int)"));
      await expect(
        withAdvisoryLock(one, "role:admin", async (client) => {
          await client.query("INSERT INTO lock_probe VALUES (1)");
          throw new Error("Auth0 said no");
        }),
      ).rejects.toThrow("Auth0 said no");
      const seen = await withAdvisoryLock(other, "role:admin", async (client) => {
        const r = await client.query<{ n: number }>("SELECT count(*)::int AS n FROM lock_probe");
        return r.rows[0]!.n;
      });
      expect(seen).toBe(0);
    });

    it("commits the section's writes with the lock", async () => {
      const pool = instance();
      await withClient(database.url, (c) => c.query("CREATE TABLE IF NOT EXISTS lock_commit (n int)"));
      await withAdvisoryLock(pool, "org:org_3:members", (client) => client.query("INSERT INTO lock_commit VALUES (7)"));
      const r = await withClient(database.url, (c) => c.query<{ n: number }>("SELECT n FROM lock_commit"));
      expect(r.rows).toEqual([{ n: 7 }]);
    });
  });

  describe("runAsLeader", () => {
    interface Candidate {
      id: string;
      leadership: Leadership;
      terms: { signal: AbortSignal }[];
    }

    function candidates(name: string, n: number): Candidate[] {
      return Array.from({ length: n }, (_, i) => {
        const c: Candidate = { id: `instance-${i}`, leadership: undefined as unknown as Leadership, terms: [] };
        c.leadership = runAsLeader(
          name,
          database.url,
          (signal) => {
            c.terms.push({ signal });
          },
          { retryMs: 50 },
        );
        leaderships.push(c.leadership);
        return c;
      });
    }

    const leaders = (cs: Candidate[]) => cs.filter((c) => c.leadership.leading);
    const liveTerms = (cs: Candidate[]) => cs.flatMap((c) => c.terms.filter((t) => !t.signal.aborted));

    /** Backend pids holding an advisory lock in the test database. */
    const lockHolders = () =>
      withClient(database.url, async (c) => {
        const r = await c.query<{ pid: number }>(
          `SELECT l.pid FROM pg_locks l JOIN pg_database d ON d.oid = l.database
           WHERE l.locktype = 'advisory' AND l.granted AND d.datname = current_database()`,
        );
        return r.rows.map((row) => row.pid);
      });

    it("elects exactly one leader of three", async () => {
      const three = candidates("drift", 3);
      await until("one leads", () => leaders(three).length > 0);
      // Many attempts of the other two later, still one leader, in its first term.
      await sleep(500);
      expect(leaders(three)).toHaveLength(1);
      expect(three.reduce((n, c) => n + c.terms.length, 0)).toBe(1);
      expect(liveTerms(three)).toHaveLength(1);
      expect(await lockHolders()).toHaveLength(1);
    });

    it("keeps two names apart: each has its own leader", async () => {
      const drift = candidates("drift", 2);
      const prune = candidates("prune", 2);
      await until("both lead", () => leaders(drift).length === 1 && leaders(prune).length === 1);
      expect(await lockHolders()).toHaveLength(2);
    });

    it("hands over when the leader's session is terminated", async () => {
      const three = candidates("drift", 3);
      await until("one leads", () => leaders(three).length === 1);
      const first = leaders(three)[0]!;
      const firstTerm = first.terms[0]!;
      const [pid] = await lockHolders();
      await withClient(database.url, (c) => c.query("SELECT pg_terminate_backend($1)", [pid]));
      // The old term ends, and a new one begins on a new session.
      await until("the old term ended", () => firstTerm.signal.aborted);
      await until("a new term began", () => liveTerms(three).length === 1);
      await sleep(300);
      expect(leaders(three)).toHaveLength(1);
      expect(liveTerms(three)).toHaveLength(1);
      const holders = await lockHolders();
      expect(holders).toHaveLength(1);
      expect(holders[0]).not.toBe(pid);
    });

    it("hands over when the leader stops, after its work has ended", async () => {
      const working = new Set<string>();
      const events: string[] = [];
      const make = (id: string) =>
        runAsLeader(
          "prune",
          database.url,
          async (signal) => {
            events.push(`${id} leads`);
            working.add(id);
            await new Promise((r) => signal.addEventListener("abort", r));
            // The work winds down before the lock is released.
            await sleep(50);
            working.delete(id);
            events.push(`${id} done`);
          },
          { retryMs: 50 },
        );
      const a = make("a");
      await until("a leads", () => a.leading);
      const b = make("b");
      leaderships.push(a, b);
      await sleep(200);
      expect(b.leading).toBe(false);
      await a.stop();
      // (b may already lead by now: the lock was free once a's work had ended.)
      expect(working.has("a")).toBe(false);
      expect(a.leading).toBe(false);
      await until("b leads", () => b.leading);
      expect(events).toEqual(["a leads", "a done", "b leads"]);
    });
  });
});
