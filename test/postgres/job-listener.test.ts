import pg from "pg";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { enqueueJob, Lane } from "../../src/directory/outbox.js";
import { runOnClient } from "../../src/directory/store-op.js";
import { JobListener, type WakeReason } from "../../src/directory/pg/job-listener.js";
import { migratePostgres } from "../../src/directory/postgres.js";
import { freshDatabase, postgresUnavailable, type TestDatabase } from "../support/postgres.js";

/** Resolves when `predicate` holds; the deadline only keeps a broken listener from hanging the run. */
async function until(predicate: () => boolean, what: string, deadlineMs = 20_000): Promise<void> {
  const end = Date.now() + deadlineMs;
  while (!predicate()) {
    if (Date.now() > end) throw new Error(`gave up waiting: ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

describe.skipIf(postgresUnavailable !== "")("PostgreSQL job listener", () => {
  let database: TestDatabase;
  let pool: pg.Pool;
  const listeners: JobListener[] = [];

  /** A listener whose poll never fires during a test unless asked, recording every wake. */
  function listen(name: string, options: { pollMs?: number; port?: number } = {}) {
    const wakes: WakeReason[] = [];
    const errors: unknown[] = [];
    const url = new URL(database.url);
    if (options.port !== undefined) url.port = String(options.port);
    const listener = new JobListener({
      connection: { connectionString: url.toString(), application_name: name, connectionTimeoutMillis: 2000 },
      onWake: (reason) => wakes.push(reason),
      onError: (err) => errors.push(err),
      pollMs: options.pollMs ?? 3_600_000,
      reconnectBaseMs: 20,
      reconnectCapMs: 200,
    });
    listeners.push(listener);
    listener.start();
    return { listener, wakes, errors, notifies: () => wakes.filter((w) => w.source === "notify") };
  }

  const enqueue = (subjectId: string, lane: Lane) =>
    runOnClient(pool, enqueueJob({ organizationId: "org_1", kind: "user", subjectId, lane }));

  beforeAll(async () => {
    database = await freshDatabase();
    await migratePostgres(database.url);
    pool = new pg.Pool({ connectionString: database.url, max: 3 });
  });
  afterEach(async () => {
    await Promise.all(listeners.splice(0).map((l) => l.stop()));
  });
  afterAll(async () => {
    await pool?.end();
    await database?.drop();
  });

  it("stops while its connection is still being made (a process stopped right after it started)", async () => {
    const { listener } = listen("listener-stopped-early");
    // Stopped in the same turn it started: the connection is mid-handshake.
    await listener.stop();
    expect(listener.connected).toBe(false);
  });

  it("wakes on a commit that enqueued a job on another connection, and never for a rollback", async () => {
    const { listener, notifies } = listen("listener-commit");
    await until(() => listener.connected, "the listener connects");

    const client = await pool.connect();
    try {
      await client.query("BEGIN");
      await runOnClient(
        client,
        enqueueJob({ organizationId: "org_1", kind: "user", subjectId: "gone", lane: Lane.deprovision }),
      );
      await client.query("ROLLBACK");
    } finally {
      client.release();
    }
    // Notifications arrive in commit order: had the rolled-back one been sent, it would come first.
    await enqueue("u1", Lane.background);
    await until(() => notifies().length > 0, "a notification");
    expect(notifies()).toEqual([{ source: "notify", payload: String(Lane.background) }]);
  });

  it("reconnects after its connection is terminated, wakes its owner, and hears later enqueues", async () => {
    const { listener, wakes, errors, notifies } = listen("listener-terminated");
    await until(() => listener.connected, "the listener connects");
    expect(wakes).toEqual([{ source: "connected" }]);

    const killed = await pool.query<{ ok: boolean }>(
      "SELECT pg_terminate_backend(pid) AS ok FROM pg_stat_activity WHERE application_name = 'listener-terminated'",
    );
    expect(killed.rows).toEqual([{ ok: true }]);
    await until(() => listener.connections === 2 && listener.connected, "the listener reconnects");
    expect(errors.length).toBeGreaterThan(0);
    // Woken on reconnection, to claim whatever was enqueued while it was away.
    expect(wakes.filter((w) => w.source === "connected")).toHaveLength(2);

    await enqueue("u2", Lane.deprovision);
    await until(() => notifies().length > 0, "a notification after reconnecting");
    expect(notifies()).toEqual([{ source: "notify", payload: String(Lane.deprovision) }]);
  });

  it("polls without any notification, and keeps retrying a server that refuses connections", async () => {
    const polling = listen("listener-polling", { pollMs: 20 });
    await until(() => polling.wakes.some((w) => w.source === "poll"), "a poll");

    // Port 1 on 127.0.0.1: nothing listens there, so every connection attempt is refused.
    const refused = listen("listener-refused", { port: 1 });
    await until(() => refused.errors.length >= 3, "three failed connection attempts");
    expect(refused.listener.connected).toBe(false);
    expect(refused.wakes.filter((w) => w.source !== "poll")).toEqual([]);
  });
});
