import pg from "pg";
import { afterAll, beforeAll, beforeEach, describe, expect, it, vi } from "vitest";
import { enqueueJob, enqueueJobs, Lane, type EnqueueJob } from "../../src/directory/outbox.js";
import { runOnClient } from "../../src/directory/store-op.js";
import { JOB_KEY_LOCK_NAMESPACE, PgOutbox, type PgJobRow } from "../../src/directory/pg/outbox.js";
import { migratePostgres } from "../../src/directory/postgres.js";
import { postgresStore } from "../../src/directory/sql.js";
import { freshDatabase, postgresUnavailable, type TestDatabase } from "../support/postgres.js";

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

interface Row {
  id: number;
  key: string;
  lane: number;
  state: string;
  attempts: number;
  leaseOwner: string | null;
  lastError: string | null;
  firstEnqueuedAt: number;
  runAfter: number;
}

describe.skipIf(postgresUnavailable !== "")("PostgreSQL job queue", () => {
  let database: TestDatabase;
  let pool: pg.Pool;
  let outbox: PgOutbox;

  const user = (subjectId: string, lane: Lane, now?: number): EnqueueJob => ({
    organizationId: "org_1",
    kind: "user",
    subjectId,
    lane,
    ...(now !== undefined ? { now } : {}),
  });

  async function rows(where = "true"): Promise<Row[]> {
    const r = await pool.query<Record<string, string | number | null>>(
      `SELECT id, key, lane, state, attempts, lease_owner, last_error, first_enqueued_at, run_after
       FROM jobs WHERE ${where} ORDER BY id`,
    );
    return r.rows.map((x) => ({
      id: Number(x.id),
      key: String(x.key),
      lane: Number(x.lane),
      state: String(x.state),
      attempts: Number(x.attempts),
      leaseOwner: x.lease_owner === null ? null : String(x.lease_owner),
      lastError: x.last_error === null ? null : String(x.last_error),
      firstEnqueuedAt: Number(x.first_enqueued_at),
      runAfter: Number(x.run_after),
    }));
  }

  /** Waits until the database's own clock has passed every lease (leases run on that clock, not ours). */
  async function untilLeasesExpire(): Promise<void> {
    for (;;) {
      const r = await pool.query<{ live: number }>(
        "SELECT count(*)::int AS live FROM jobs WHERE state = 'running' AND lease_expires_at >= (extract(epoch from clock_timestamp()) * 1000)::bigint",
      );
      if (r.rows[0]!.live === 0) return;
      await sleep(20);
    }
  }

  const enqueue = (job: EnqueueJob) => runOnClient(pool, enqueueJob(job));
  const lease = (job: PgJobRow) => ({ id: job.id, leaseToken: job.leaseToken });

  beforeAll(async () => {
    database = await freshDatabase();
    await migratePostgres(database.url);
    pool = new pg.Pool({ connectionString: database.url, max: 4 });
    // Every claim looks for expired leases, so that takeovers happen at the first claim after expiry.
    outbox = new PgOutbox({ pool, maxAttempts: 2, backoffMs: () => 60_000, recoverEveryMs: 0 });
  });
  afterAll(async () => {
    await pool?.end();
    await database?.drop();
  });
  beforeEach(async () => {
    await pool.query("DELETE FROM jobs");
  });

  describe("enqueue", () => {
    it("merges into the key's waiting job, keeping the most urgent lane and the first acknowledgement", async () => {
      await enqueue(user("u1", Lane.provision, 1000));
      await enqueue(user("u1", Lane.deprovision, 2000));
      await enqueue(user("u1", Lane.background, 3000));
      await enqueue(user("u2", Lane.background, 4000));

      expect(await rows()).toMatchObject([
        { key: "user:u1", lane: Lane.deprovision, state: "pending", firstEnqueuedAt: 1000 },
        { key: "user:u2", lane: Lane.background, state: "pending", firstEnqueuedAt: 4000 },
      ]);
    });

    it("adds a second job of a key whose job already runs, and batches merge the same way", async () => {
      await enqueue(user("u1", Lane.provision));
      const [running] = await outbox.claim("a", 1, 60_000);
      await enqueue(user("u1", Lane.provision));
      await runOnClient(
        pool,
        enqueueJobs({ organizationId: "org_1", kind: "user", lane: Lane.deprovision }, ["u1", "u2", "u2"]),
      );
      await runOnClient(
        pool,
        enqueueJobs({ organizationId: "org_1", kind: "user", lane: Lane.background }, ["u2", "u3"]),
      );

      expect(await rows()).toMatchObject([
        { id: running!.id, key: "user:u1", state: "running" },
        { key: "user:u1", state: "pending", lane: Lane.deprovision },
        { key: "user:u2", state: "pending", lane: Lane.deprovision },
        { key: "user:u3", state: "pending", lane: Lane.background },
      ]);
    });

    it("takes part in the caller's transaction: a rollback leaves no job", async () => {
      const client = await pool.connect();
      try {
        await client.query("BEGIN");
        await runOnClient(client, enqueueJob(user("u9", Lane.provision)));
        expect((await client.query("SELECT count(*)::int AS n FROM jobs")).rows[0].n).toBe(1);
        await client.query("ROLLBACK");
      } finally {
        client.release();
      }
      expect(await rows()).toEqual([]);
    });

    it("runs in a store write: committed with it, rolled back with it", async () => {
      const store = postgresStore(database.url, { poolSize: 2 });
      try {
        await store.write(enqueueJob(user("u1", Lane.deprovision)));
        await store.write(enqueueJobs({ organizationId: "org_1", kind: "user", lane: Lane.provision }, ["u1", "u2"]));
        const failed = store.write(
          (function* () {
            yield* enqueueJob(user("u3", Lane.provision));
            throw new Error("the SCIM write failed after enqueuing");
          })(),
        );
        await expect(failed).rejects.toThrow("the SCIM write failed after enqueuing");

        expect(await rows()).toMatchObject([
          { key: "user:u1", lane: Lane.deprovision, state: "pending" },
          { key: "user:u2", lane: Lane.provision, state: "pending" },
        ]);
      } finally {
        await store.close();
      }
    });
  });

  describe("claim", () => {
    it("sends its BEGIN with the pick: two round trips when nothing is due, three when it takes jobs", async () => {
      // Expired leases are looked for at most once a second: the first claim looks, the next ones do not.
      const claimer = new PgOutbox({ pool, backoffMs: () => 0, recoverEveryMs: 60_000 });
      await claimer.claim("rt", 1, 60_000);
      const texts = async (claim: () => Promise<PgJobRow[]>): Promise<{ got: PgJobRow[]; sent: string[] }> => {
        const spy = vi.spyOn(pg.Client.prototype, "query");
        try {
          const got = await claim();
          return { got, sent: spy.mock.calls.map(([q]) => (typeof q === "string" ? q : (q as { text: string }).text)) };
        } finally {
          spy.mockRestore();
        }
      };
      const idle = await texts(() => claimer.claim("rt", 5, 60_000));
      expect(idle.got).toEqual([]);
      expect(idle.sent).toHaveLength(2);
      expect(idle.sent[0]).toMatch(/^BEGIN;[\s\S]*FOR UPDATE OF j SKIP LOCKED/);
      expect(idle.sent[1]).toBe("COMMIT");

      await enqueue(user("rt1", Lane.provision));
      const busy = await texts(() => claimer.claim("rt", 5, 60_000));
      expect(busy.got).toMatchObject([{ key: "user:rt1", state: "running", leaseOwner: "rt" }]);
      expect(busy.sent).toHaveLength(3);
      expect(busy.sent[1]).toMatch(/^UPDATE jobs SET state = 'running'/);
    });

    it("takes the deprovision lane first, then the oldest; nonUrgent caps the other lanes", async () => {
      await enqueue(user("p1", Lane.provision));
      await enqueue(user("b1", Lane.background));
      await enqueue(user("p2", Lane.provision));
      await enqueue(user("d1", Lane.deprovision));
      await enqueue(user("d2", Lane.deprovision));

      expect((await outbox.claim("a", 1, 60_000)).map((j) => j.subjectId)).toEqual(["d1"]);
      expect((await outbox.claim("a", 3, 60_000, { nonUrgent: 0 })).map((j) => j.subjectId)).toEqual(["d2"]);
      expect((await outbox.claim("a", 3, 60_000, { nonUrgent: 1 })).map((j) => j.subjectId)).toEqual(["p1"]);
      expect((await outbox.claim("a", 5, 60_000)).map((j) => j.subjectId)).toEqual(["p2", "b1"]);
    });

    it("keeps drift scans apart when asked", async () => {
      await enqueue(user("u1", Lane.provision));
      await runOnClient(
        pool,
        enqueueJob({ organizationId: "org_1", kind: "drift", subjectId: "org_1", lane: Lane.background }),
      );

      expect((await outbox.claim("a", 5, 60_000, { scans: false })).map((j) => j.kind)).toEqual(["user"]);
      expect((await outbox.claim("a", 5, 60_000, { scans: false })).map((j) => j.kind)).toEqual([]);
      expect((await outbox.claim("a", 5, 60_000, { scans: true })).map((j) => j.kind)).toEqual(["drift"]);
    });

    it("leases the job to its claimer, with a new lease token and no failed attempt, and runs one job per key", async () => {
      await enqueue(user("u1", Lane.provision));
      const [job] = await outbox.claim("a", 5, 60_000);
      expect(job).toMatchObject({ key: "user:u1", state: "running", leaseOwner: "a", attempts: 0, leaseToken: 1 });
      expect(typeof job!.leaseExpiresAt).toBe("number");

      await enqueue(user("u1", Lane.deprovision));
      // The waiting deprovision job must not start beside the running job of its key, on any instance.
      expect(await outbox.claim("b", 5, 60_000)).toEqual([]);
      await outbox.finish("a", lease(job!), { status: "done" });
      expect(await outbox.claim("b", 5, 60_000)).toMatchObject([{ key: "user:u1", lane: Lane.deprovision }]);
    });

    it("skips, without waiting, a key another instance's claim is making run, and takes it once that claim commits", async () => {
      await enqueue(user("u1", Lane.deprovision));
      await enqueue(user("u2", Lane.provision));
      const other = await pool.connect();
      try {
        // What another instance's claim of user:u1 holds until it commits.
        await other.query("BEGIN");
        await other.query("SELECT pg_advisory_xact_lock($1, hashtext($2))", [JOB_KEY_LOCK_NAMESPACE, "user:u1"]);
        expect((await outbox.claim("b", 5, 60_000)).map((j) => j.key)).toEqual(["user:u2"]);
        await other.query("COMMIT");
      } finally {
        // Closed rather than pooled: a failed expectation would otherwise pool it mid-transaction.
        other.release(true);
      }
      expect((await outbox.claim("b", 5, 60_000)).map((j) => j.key)).toEqual(["user:u1"]);
    });

    it(
      "three pools claiming at once never claim a job twice nor run two jobs of one key together (500 enqueues, 50 keys)",
      { timeout: 120_000 },
      async () => {
        const pools = [0, 1, 2].map(() => new pg.Pool({ connectionString: database.url, max: 3 }));
        const producerPool = new pg.Pool({ connectionString: database.url, max: 2 });
        try {
          const outboxes = pools.map((p) => new PgOutbox({ pool: p, backoffMs: () => 0 }));
          const runningKeys = new Map<string, string>();
          const overlaps: string[] = [];
          const claimedIds = new Map<number, number>();
          const refused: number[] = [];
          let producing = true;
          /** Runs that finished with a job of their key due and waiting: the race this test is about. */
          let waitedBehind = 0;

          const producer = (async () => {
            // Keys in a fixed pseudo-random order (a linear congruential generator), so that a key
            // comes back while its previous job may still run.
            let seed = 12345;
            for (let i = 0; i < 500; i++) {
              seed = (seed * 1103515245 + 12345) % 2 ** 31;
              const key = `k${i < 50 ? i : seed % 50}`;
              // Lanes vary so that merges change lanes while other jobs of the key run.
              await runOnClient(producerPool, enqueueJob(user(key, i % 7 === 0 ? Lane.deprovision : Lane.provision)));
              if (i % 3 === 0) await sleep(1);
            }
            producing = false;
          })();

          const claimer = async (outboxOf: PgOutbox, owner: string): Promise<void> => {
            for (;;) {
              const jobs = await outboxOf.claim(owner, 4, 60_000);
              if (jobs.length === 0) {
                if (!producing) {
                  const left = await producerPool.query<{ n: number }>(
                    "SELECT count(*)::int AS n FROM jobs WHERE state <> 'done'",
                  );
                  if (left.rows[0]!.n === 0) return;
                }
                await sleep(2);
                continue;
              }
              for (const job of jobs) {
                const holder = runningKeys.get(job.key);
                if (holder !== undefined) overlaps.push(`${job.key}: ${holder} and ${owner}`);
                runningKeys.set(job.key, owner);
                claimedIds.set(job.id, (claimedIds.get(job.id) ?? 0) + 1);
              }
              await Promise.all(
                jobs.map(async (job) => {
                  // A run takes a little while, so that enqueues land while jobs of their key run.
                  await sleep(5 + Math.random() * 15);
                  const behind = await producerPool.query(
                    "SELECT 1 FROM jobs WHERE key = $1 AND state = 'pending' AND run_after <= (extract(epoch from now()) * 1000)::bigint",
                    [job.key],
                  );
                  if (behind.rowCount) waitedBehind++;
                  // Forgotten before the finish commits, so a claim after that commit is never an overlap.
                  runningKeys.delete(job.key);
                  const recorded = await outboxOf.finish(owner, lease(job), { status: "done" });
                  if (!recorded) refused.push(job.id);
                }),
              );
            }
          };

          await Promise.all([
            producer,
            ...outboxes.flatMap((o, i) => [claimer(o, `instance-${i}`), claimer(o, `instance-${i}`)]),
          ]);

          expect(overlaps).toEqual([]);
          expect(refused).toEqual([]);
          expect([...claimedIds.values()].filter((n) => n !== 1)).toEqual([]);
          const all = await rows();
          expect(all.filter((r) => r.state !== "done")).toEqual([]);
          expect(all.length).toBe(claimedIds.size);
          expect(new Set(all.map((r) => r.key)).size).toBe(50);
          // The race did happen: enqueues landed while their key's job ran, and waited for it.
          expect(all.length).toBeGreaterThan(50);
          expect(waitedBehind).toBeGreaterThan(0);
        } finally {
          await Promise.all([...pools, producerPool].map((p) => p.end()));
        }
      },
    );
  });

  describe("leases", () => {
    it("an expired lease is taken over by another instance, and the first instance's late outcome is refused", async () => {
      await enqueue(user("u1", Lane.provision));
      const [a] = await outbox.claim("a", 1, 30);
      await untilLeasesExpire();

      const [b] = await outbox.claim("b", 1, 60_000);
      // The run cut short is not a failed attempt; the new run has a lease token of its own.
      expect(b).toMatchObject({ id: a!.id, leaseOwner: "b", attempts: 0, leaseToken: 2 });

      expect(await outbox.finish("a", lease(a!), { status: "done" })).toBeUndefined();
      expect(await outbox.finish("a", lease(a!), { status: "dead", reason: "late" })).toBeUndefined();
      expect(await outbox.finish("a", lease(a!), { status: "retry", reason: "late" })).toBeUndefined();
      expect(await outbox.release("a", [lease(a!)])).toEqual([]);
      expect(await outbox.heartbeat("a", 60_000)).toEqual([]);
      expect(await rows()).toMatchObject([{ id: a!.id, state: "running", leaseOwner: "b", attempts: 0 }]);

      expect(await outbox.finish("b", lease(b!), { status: "done" })).toEqual({ outcome: { status: "done" } });
      expect(await rows()).toMatchObject([{ id: a!.id, state: "done", leaseOwner: null }]);
    });

    it("an instance claiming its own expired job again gets a new lease token, and its old run's outcome is refused", async () => {
      await enqueue(user("u1", Lane.provision));
      const [first] = await outbox.claim("a", 1, 30);
      await untilLeasesExpire();
      const [second] = await outbox.claim("a", 1, 60_000);
      expect(second).toMatchObject({ id: first!.id, attempts: 0, leaseToken: first!.leaseToken + 1 });

      expect(await outbox.finish("a", lease(first!), { status: "dead", reason: "stale run" })).toBeUndefined();
      expect(await outbox.finish("a", lease(second!), { status: "done" })).toBeDefined();
      expect(await rows()).toMatchObject([{ state: "done", lastError: null }]);
    });

    it("an expired job with a job of its key waiting merges into it, which then runs alone", async () => {
      await enqueue(user("u1", Lane.provision, 1000));
      const [a] = await outbox.claim("a", 1, 30);
      await enqueue(user("u1", Lane.provision, 5000));
      await untilLeasesExpire();

      const claimed = await outbox.claim("b", 5, 60_000);
      expect(claimed).toHaveLength(1);
      expect(claimed[0]!.id).not.toBe(a!.id);
      expect(await rows()).toMatchObject([{ id: claimed[0]!.id, state: "running", firstEnqueuedAt: 1000 }]);
      expect(await outbox.finish("a", lease(a!), { status: "done" })).toBeUndefined();
    });

    it("a heartbeat extends the owner's leases, so no one else takes the job", async () => {
      await enqueue(user("u1", Lane.provision));
      await enqueue(user("u2", Lane.provision));
      const jobs = await outbox.claim("a", 2, 30);
      await untilLeasesExpire();

      const held = await outbox.heartbeat("a", 60_000);
      expect(held.map((l) => l.id).sort()).toEqual(jobs.map((j) => j.id).sort());
      expect(await outbox.claim("b", 5, 60_000)).toEqual([]);
      expect(await outbox.heartbeat("a", 60_000, [jobs[0]!.id])).toEqual([lease(jobs[0]!)]);
    });
  });

  describe("outcomes", () => {
    it("a retry waits for its backoff; a provisioning job out of attempts goes to dead", async () => {
      await enqueue(user("u1", Lane.provision));
      const [first] = await outbox.claim("a", 1, 60_000);
      const recorded = await outbox.finish("a", lease(first!), { status: "retry", reason: "Auth0 said 503" });
      const [row] = await rows();
      expect(row).toMatchObject({ state: "pending", attempts: 1, lastError: "Auth0 said 503", leaseOwner: null });
      expect(recorded).toEqual({ outcome: { status: "retry", reason: "Auth0 said 503" }, runAfter: row!.runAfter });
      const { rows: clock } = await pool.query<{ now: string }>(
        "SELECT (extract(epoch from now()) * 1000)::bigint AS now",
      );
      expect(row!.runAfter).toBeGreaterThan(Number(clock[0]!.now) + 50_000);
      expect(await outbox.claim("a", 1, 60_000)).toEqual([]);

      await pool.query("UPDATE jobs SET run_after = 0");
      const [second] = await outbox.claim("a", 1, 60_000);
      expect(second!.attempts).toBe(1);
      expect(await outbox.finish("a", lease(second!), { status: "retry", reason: "Auth0 said 503" })).toEqual({
        outcome: { status: "dead", reason: "gave up after 2 attempts: Auth0 said 503" },
      });
      expect(await rows()).toMatchObject([{ state: "dead", attempts: 2, leaseOwner: null }]);
    });

    it("a deprovision job retries for ever, no earlier than a reset the handler reported", async () => {
      await enqueue(user("u1", Lane.deprovision));
      const resetAt = Date.now() + 3_600_000;
      for (let i = 0; i < 4; i++) {
        await pool.query("UPDATE jobs SET run_after = 0");
        const [job] = await outbox.claim("a", 1, 60_000);
        const recorded = await outbox.finish("a", lease(job!), { status: "retry", reason: "429", retryAt: resetAt });
        expect(recorded).toMatchObject({ outcome: { status: "retry" }, runAfter: resetAt });
      }
      expect(await rows()).toMatchObject([{ state: "pending", attempts: 4, runAfter: resetAt }]);
    });

    it("a failing job merges into the waiting job of its key; a success supersedes the key's dead jobs", async () => {
      await enqueue(user("u1", Lane.provision, 1000));
      const [first] = await outbox.claim("a", 1, 60_000);
      await outbox.finish("a", lease(first!), { status: "dead", reason: "invalid email" });
      await enqueue(user("u1", Lane.provision, 2000));
      const [second] = await outbox.claim("a", 1, 60_000);
      await enqueue(user("u1", Lane.background, 3000));
      await outbox.finish("a", lease(second!), { status: "retry", reason: "timeout" });

      const after = await rows();
      expect(after).toMatchObject([
        { id: first!.id, state: "dead" },
        { state: "pending", lane: Lane.provision, firstEnqueuedAt: 2000, attempts: 1, lastError: "timeout" },
      ]);
      expect(after[1]!.id).not.toBe(second!.id);

      await pool.query("UPDATE jobs SET run_after = 0");
      const [third] = await outbox.claim("a", 1, 60_000);
      await outbox.finish("a", lease(third!), { status: "done" });
      expect(await rows()).toMatchObject([
        {
          id: first!.id,
          state: "done",
          lastError: `superseded by job ${third!.id}, which succeeded; it had failed: invalid email`,
        },
        { id: third!.id, state: "done" },
      ]);
    });

    it("a released job goes back to pending without counting the attempt, and another instance takes it", async () => {
      await enqueue(user("u1", Lane.provision));
      const [job] = await outbox.claim("a", 1, 60_000);
      expect(await outbox.release("a", [lease(job!)])).toEqual([job!.id]);
      expect(await rows()).toMatchObject([{ state: "pending", attempts: 0, leaseOwner: null }]);
      const [taken] = await outbox.claim("b", 1, 60_000);
      expect(taken).toMatchObject({ id: job!.id, leaseOwner: "b", attempts: 0, leaseToken: 2 });

      // A run released while stuck in a call (a stop that timed out) may still end: no longer its
      // owner's, nor its lease token, so its outcome is ignored.
      expect(await outbox.finish("a", lease(job!), { status: "dead", reason: "late" })).toBeUndefined();
      expect(await outbox.finish("a", lease(job!), { status: "done" })).toBeUndefined();
      expect(await rows()).toMatchObject([{ state: "running", leaseOwner: "b" }]);
    });
  });
});
