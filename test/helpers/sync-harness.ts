import { inArray } from "drizzle-orm";
import { jobs } from "../../db/schema.js";
import { createManagementClient } from "../../src/auth0/client.js";
import type { Db } from "../../src/directory/database.js";
import { saveMappingVersion } from "../../src/directory/mappings.js";
import { parseMapping } from "../../src/mapping/index.js";
import { startEmulator, type EmulatorOptions, type RunningEmulator } from "../../src/emulator/index.js";
import { createSyncEngine, type SyncEngine } from "../../src/sync/engine.js";
import type { InvitationDelivery } from "../../src/sync/invitations.js";

export interface SyncHarness {
  emulator: RunningEmulator;
  engine: SyncEngine;
  /** Resolves once no job is pending or running (the directory and Auth0 have converged). */
  drain(timeoutMs?: number): Promise<void>;
  close(): Promise<void>;
}

/**
 * The real sync engine (limiter, gateway, batcher, reconcilers, worker) against a fresh Auth0
 * emulator through the real node-auth0 client, as main.ts wires it.
 */
export async function startSyncHarness(
  db: Db,
  options: EmulatorOptions & { concurrency?: number; start?: boolean; invitations?: InvitationDelivery; bridgeRateScale?: number } = {},
): Promise<SyncHarness> {
  const plan = options.plan ?? "enterprise";
  const emulator = await startEmulator({ rateLimits: false, ...options, plan });
  const client = createManagementClient(
    { domain: "tenant.example.auth0.com", clientId: "scim-bridge-test", clientSecret: "test-secret", managementUrl: emulator.url },
    { maxRetries: 0 },
  );
  const engine = createSyncEngine({
    db,
    client,
    plan,
    ...(options.bridgeRateScale ? { rateScale: options.bridgeRateScale } : {}),
    pollMs: 10,
    concurrency: options.concurrency ?? 16,
    ...(options.invitations ? { invitations: options.invitations } : {}),
  });
  if (options.start !== false) engine.worker.start();
  return {
    emulator,
    engine,
    async drain(timeoutMs = 20_000) {
      const end = Date.now() + timeoutMs;
      for (;;) {
        const open = db.select({ id: jobs.id }).from(jobs).where(inArray(jobs.state, ["pending", "running"])).all();
        if (open.length === 0) return;
        if (Date.now() > end) {
          const rows = db.select().from(jobs).where(inArray(jobs.state, ["pending", "running", "dead"])).all();
          const lastCalls = emulator.calls().slice(-8).map((c) => `${c.method} ${c.path} ${c.status}`);
          throw new Error(`jobs did not drain in ${timeoutMs} ms: ${JSON.stringify(rows.map((r) => ({ key: r.key, state: r.state, err: r.lastError })))}; last Auth0 calls: ${lastCalls.join(", ")}`);
        }
        await new Promise((r) => setTimeout(r, 20));
      }
    },
    async close() {
      await engine.worker.stop(2_000);
      engine.limiter.stop();
      await emulator.close();
    },
  };
}

/** The base mapping most sync tests start from: the default database connection, isolated users, email from userName. */
export function applyDatabaseMapping(db: Db, organizationId: string, extra: Record<string, unknown> = {}): void {
  saveMappingVersion(
    db,
    organizationId,
    parseMapping({ connection: { name: "Username-Password-Authentication", type: "database" }, userModel: "isolated", profile: { email: "userName" }, ...extra }),
    { actor: { type: "operator", id: "test" } },
  );
}
