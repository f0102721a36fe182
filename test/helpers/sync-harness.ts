import { pino } from "pino";
import { createBridge, type Bridge } from "../../src/bridge.js";
import { loadConfig } from "../../src/config.js";
import { postgresPoolOf, sqliteConnectionOf, type SqlStore } from "../../src/directory/sql.js";
import { many } from "../../src/directory/store-op.js";
import { saveMappingVersion } from "../../src/directory/mappings.js";
import { parseMapping } from "../../src/mapping/index.js";
import { startEmulator, type EmulatorOptions, type RunningEmulator } from "../../src/emulator/index.js";
import type { OutagePolicy } from "../../src/auth0/gateway.js";
import type { SyncEngine } from "../../src/sync/engine.js";
import type { BackoffPolicy } from "../../src/sync/worker.js";
import type { InvitationDelivery } from "../../src/sync/invitations.js";

export interface SyncHarness {
  emulator: RunningEmulator;
  engine: SyncEngine;
  /** The bridge the engine belongs to, built by createBridge over the same database (a second instance). */
  bridge: Bridge;
  /** Resolves once no job is pending or running (the directory and Auth0 have converged). */
  drain(timeoutMs?: number): Promise<void>;
  close(): Promise<void>;
}

/**
 * The real sync engine (limiter, gateway, batcher, reconcilers, worker) against a fresh Auth0
 * emulator through the real node-auth0 client, built by createBridge as `serve` builds it, on the
 * same database as a second instance would open it: on SQLite its own connections to the file
 * (synchronous=NORMAL), on PostgreSQL its own pool (the job queue, the shared rate budget and the
 * job channel's listener), with the configured lease and metrics. `database` is a URL or a store
 * on the database (a test bridge's `store`).
 */
export async function startSyncHarness(
  database: string | SqlStore,
  options: EmulatorOptions & {
    concurrency?: number;
    start?: boolean;
    invitations?: InvitationDelivery;
    bridgeRateScale?: number;
    /** The bridge's retry backoff and outage detection, scaled down for tests of long outages. */
    backoff?: BackoffPolicy;
    outage?: OutagePolicy;
  } = {},
): Promise<SyncHarness> {
  const plan = options.plan ?? "enterprise";
  const emulator = await startEmulator({ rateLimits: false, ...options, plan });
  const bridge = await createBridge(loadConfig({ LOG_LEVEL: "silent" }), {
    databaseUrl: urlOf(database),
    backgroundCheckpoints: false,
    tenantLink: false,
    log: pino({ level: "silent" }),
    auth0: {
      domain: "tenant.example.auth0.com",
      clientId: "scim-bridge-test",
      clientSecret: "test-secret",
      managementUrl: emulator.url,
    },
    managementClient: { maxRetries: 0 },
    plan,
    rateScale: options.bridgeRateScale ?? 1,
    defaultMetrics: false,
    engine: {
      pollMs: 10,
      concurrency: options.concurrency ?? 16,
      ...(options.invitations ? { invitations: options.invitations } : {}),
      ...(options.backoff ? { backoff: options.backoff } : {}),
      ...(options.outage ? { outage: options.outage } : {}),
    },
  });
  const engine = bridge.engine;
  if (options.start !== false) engine.worker.start();
  return {
    emulator,
    engine,
    bridge,
    async drain(timeoutMs = 20_000) {
      const end = Date.now() + timeoutMs;
      for (;;) {
        const open = await bridge.store.read(openJobs(["pending", "running"]));
        if (open.length === 0) return;
        if (Date.now() > end) {
          const rows = await bridge.store.read(openJobs(["pending", "running", "dead"]));
          const lastCalls = emulator
            .calls()
            .slice(-8)
            .map((c) => `${c.method} ${c.path} ${c.status}`);
          throw new Error(
            `jobs did not drain in ${timeoutMs} ms: ${JSON.stringify(rows.map((r) => ({ key: r.key, state: r.state, err: r.lastError })))}; last Auth0 calls: ${lastCalls.join(", ")}`,
          );
        }
        await new Promise((r) => setTimeout(r, 20));
      }
    },
    async close() {
      await engine.worker.stop(2_000);
      await bridge.close();
      await emulator.close();
    },
  };
}

/** The base mapping most sync tests start from: the default database connection, isolated users, email from userName. */
export async function applyDatabaseMapping(
  store: SqlStore,
  organizationId: string,
  extra: Record<string, unknown> = {},
): Promise<void> {
  await store.write(
    saveMappingVersion(
      organizationId,
      parseMapping({
        connection: { name: "Username-Password-Authentication", type: "database" },
        userModel: "isolated",
        profile: { email: "userName" },
        ...extra,
      }),
      { actor: { type: "operator", id: "test" } },
    ),
  );
}

function* openJobs(states: readonly string[]) {
  return yield* many<{ key: string; state: string; lastError: string | null }>(
    `SELECT key, state, last_error AS "lastError" FROM jobs WHERE state IN (${states.map(() => "?").join(", ")}) ORDER BY id`,
    states,
  );
}

/** The URL a second instance opens: the SQLite file behind a store, or the PostgreSQL pool's connection string. */
function urlOf(database: string | SqlStore): string {
  if (typeof database === "string") return database;
  const file = sqliteConnectionOf(database)?.name;
  if (file !== undefined) {
    if (file === "" || file === ":memory:")
      throw new Error("startSyncHarness needs a database file: the engine opens its own connection, as in production");
    return `sqlite:${file}`;
  }
  const url = (postgresPoolOf(database)?.options as { connectionString?: string } | undefined)?.connectionString;
  if (!url) throw new Error("startSyncHarness: the store is neither a SQLite file nor a PostgreSQL pool");
  return url;
}
