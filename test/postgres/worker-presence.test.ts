/**
 * A killed instance's jobs on PostgreSQL: three instances (a pool and a pgJobQueue each, as three
 * `serve` processes would have) claim from one queue. When an instance's session ends, as it does
 * when the process is SIGKILLed, the deactivation it was running is taken over by the next claim of
 * another instance, not after its 30 s lease; its late outcome is refused. An owner without a
 * presence lock keeps the plain lease rules.
 */
import pg from "pg";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { enqueueJob, Lane } from "../../src/directory/outbox.js";
import { PgOutbox, WORKER_PRESENCE_LOCK_NAMESPACE } from "../../src/directory/pg/outbox.js";
import { migratePostgres } from "../../src/directory/postgres.js";
import { postgresStore, type SqlStore } from "../../src/directory/sql.js";
import { pgJobQueue } from "../../src/sync/pg-job-queue.js";
import type { ClaimRequest, JobQueue } from "../../src/sync/worker.js";
import { freshDatabase, postgresUnavailable, type TestDatabase } from "../support/postgres.js";

const LEASE_MS = 30_000;

describe.skipIf(postgresUnavailable !== "")("a dead instance's jobs on PostgreSQL", () => {
  let database: TestDatabase;
  let store: SqlStore;
  let admin: pg.Pool;
  const instances: { pool: pg.Pool; queue: JobQueue; owner: string }[] = [];

  const request = (owner: string): ClaimRequest => ({
    owner,
    now: Date.now(),
    leaseMs: LEASE_MS,
    limit: 8,
    nonUrgent: 8,
    scans: false,
  });
  const deactivate = (subjectId: string) =>
    store.write(enqueueJob({ organizationId: "org_1", kind: "user", subjectId, lane: Lane.deprovision }));
  const job = async (key: string) =>
    (
      await admin.query<{ state: string; attempts: number; lease_owner: string | null; lease_left: string }>(
        `SELECT state, attempts, lease_owner,
           lease_expires_at - (extract(epoch from clock_timestamp()) * 1000)::bigint AS lease_left
         FROM jobs WHERE key = $1 ORDER BY id DESC LIMIT 1`,
        [key],
      )
    ).rows[0]!;
  /** Ends every session holding `owner`'s presence lock: what PostgreSQL sees of a SIGKILLed process. */
  const killSessionOf = async (owner: string) => {
    const { rows } = await admin.query<{ ended: boolean }>(
      `SELECT pg_terminate_backend(pid) AS ended FROM pg_locks
       WHERE locktype = 'advisory' AND granted AND classid = $1
         AND objid = (hashtext($2)::bigint & 4294967295)::oid AND objsubid = 2`,
      [WORKER_PRESENCE_LOCK_NAMESPACE, owner],
    );
    expect(rows.map((r) => r.ended)).toEqual([true]);
    // pg_terminate_backend signals; wait until the lock is gone.
    for (;;) {
      const { rows: left } = await admin.query(
        `SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND classid = $1
           AND objid = (hashtext($2)::bigint & 4294967295)::oid AND objsubid = 2`,
        [WORKER_PRESENCE_LOCK_NAMESPACE, owner],
      );
      if (left.length === 0) return;
      await new Promise((r) => setTimeout(r, 10));
    }
  };

  beforeAll(async () => {
    database = await freshDatabase();
    await migratePostgres(database.url);
    store = postgresStore(database.url, { poolSize: 2 });
    admin = new pg.Pool({ connectionString: database.url, max: 2 });
  });
  afterEach(async () => {
    for (const i of instances.splice(0)) {
      await i.queue.close?.();
      await i.pool.end();
    }
    await admin.query("DELETE FROM jobs");
  });
  afterAll(async () => {
    await admin?.end();
    await store?.close();
    await database?.drop();
  });

  const startInstances = () => {
    for (const name of ["a", "b", "c"]) {
      const pool = new pg.Pool({ connectionString: database.url, max: 3 });
      pool.on("error", () => undefined);
      instances.push({ pool, queue: pgJobQueue(pool, store, { backoffMs: () => 1000 }), owner: `worker-${name}` });
    }
    return instances as [(typeof instances)[0], (typeof instances)[0], (typeof instances)[0]];
  };

  it("takes over the deactivation a killed instance was running at the next claim, and refuses its late outcome", async () => {
    const [a, b, c] = startInstances();
    await deactivate("u1");
    const [claimed] = await a.queue.claim(request(a.owner));
    expect(claimed).toMatchObject({ key: "user:u1", state: "running", attempts: 0, leaseToken: 1 });
    expect(claimed!.leaseOwner).toBe(`present:${a.owner}`);

    // While the instance lives, the others leave its job alone.
    expect(await c.queue.claim(request(c.owner))).toEqual([]);
    expect(await job("user:u1")).toMatchObject({ state: "running", lease_owner: `present:${a.owner}` });

    await killSessionOf(`present:${a.owner}`);
    const [taken] = await b.queue.claim(request(b.owner));
    // The killed run is not counted as a failed attempt; the new run has a lease token of its own.
    expect(taken).toMatchObject({
      key: "user:u1",
      state: "running",
      attempts: 0,
      leaseToken: 2,
      leaseOwner: `present:${b.owner}`,
    });
    // Taken over long before the dead instance's lease would have run out.
    expect(Number((await job("user:u1")).lease_left)).toBeGreaterThan(LEASE_MS / 2);

    // The killed instance's run, had it gone on, would record nothing.
    const late = await a.queue.finish(
      claimed!,
      { status: "done" },
      {
        owner: a.owner,
        now: Date.now(),
        maxAttempts: 12,
        retryAt: () => 0,
      },
    );
    expect(late).toBeUndefined();
    const done = await b.queue.finish(
      taken!,
      { status: "done" },
      {
        owner: b.owner,
        now: Date.now(),
        maxAttempts: 12,
        retryAt: () => 0,
      },
    );
    expect(done).toEqual({ outcome: { status: "done" } });
    expect(await job("user:u1")).toMatchObject({ state: "done", attempts: 0 });
  });

  it("keeps the jobs of a live instance whose claims keep running, and renews them under the owner they were claimed by", async () => {
    const [a, b] = startInstances();
    await deactivate("u1");
    const [claimed] = await a.queue.claim(request(a.owner));
    await a.queue.renew(a.owner, [claimed!], LEASE_MS, Date.now());
    expect(await b.queue.claim(request(b.owner))).toEqual([]);
    await a.queue.requeue(a.owner, [claimed!], Date.now());
    // Handed back (a graceful stop): the next claim of another instance takes it, the attempt not counted.
    const [again] = await b.queue.claim(request(b.owner));
    expect(again).toMatchObject({ key: "user:u1", attempts: 0, leaseToken: 2, leaseOwner: `present:${b.owner}` });
  });

  it("leaves an owner without a presence lock (an earlier release) its lease", async () => {
    const [, b] = startInstances();
    await deactivate("u1");
    const old = new PgOutbox({ pool: admin, backoffMs: () => 1000 });
    const [claimed] = await old.claim("worker-old-release", 1, LEASE_MS);
    expect(claimed).toMatchObject({ key: "user:u1", state: "running" });
    expect(await b.queue.claim(request(b.owner))).toEqual([]);
    expect(await job("user:u1")).toMatchObject({ state: "running", lease_owner: "worker-old-release", attempts: 0 });
  });
});
