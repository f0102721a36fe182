/**
 * List rewrites serialised across instances: the gateway of each instance takes a PostgreSQL advisory
 * lock per resource (`crossInstanceLock`), so three instances that need the same role at once create
 * it once, where without the lock each finds none and all but one are refused by Auth0's conflict.
 */
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createManagementClient } from "../../src/auth0/client.js";
import { Auth0Gateway, type GatewayOptions } from "../../src/auth0/gateway.js";
import { RateLimiter, rateProfile } from "../../src/auth0/rate-limiter.js";
import { withAdvisoryLock } from "../../src/directory/pg/locks.js";
import { startEmulator, type RunningEmulator } from "../../src/emulator/index.js";
import { freshDatabase, postgresUnavailable, type TestDatabase } from "../support/postgres.js";

describe.skipIf(postgresUnavailable)("the gateway's list rewrites across instances", () => {
  let database: TestDatabase;
  let emulator: RunningEmulator;
  const pools: pg.Pool[] = [];

  beforeAll(async () => {
    database = await freshDatabase();
    emulator = await startEmulator({ plan: "enterprise", rateLimits: false });
    // Each Management API call takes a while, as over the internet: the instances' list-then-create overlap.
    emulator.setFaults({ latency: { ms: 60 } });
  });
  afterAll(async () => {
    await Promise.all(pools.map((p) => p.end()));
    await emulator?.close();
    await database?.drop();
  });

  const instance = (options: GatewayOptions) =>
    new Auth0Gateway(
      createManagementClient(
        { domain: "tenant.example.auth0.com", clientId: "bridge", clientSecret: "s3cret", managementUrl: emulator.url },
        { maxRetries: 0 },
      ),
      new RateLimiter(rateProfile("enterprise")),
      {},
      options,
    );
  const rolesNamed = (name: string) => [...emulator.state.roles.values()].filter((r) => r.name === name);

  it("without a cross-instance lock, instances that need a new role at once collide", async () => {
    const outcomes = await Promise.allSettled([1, 2, 3].map(() => instance({}).roleIdsByName(["racing"], 1)));
    expect(outcomes.filter((o) => o.status === "rejected").length).toBeGreaterThan(0);
    expect(rolesNamed("racing")).toHaveLength(1);
  });

  it("with an advisory lock per role, each instance gets the one role, created once", async () => {
    const gateways = [1, 2, 3].map(() => {
      const pool = new pg.Pool({ connectionString: database.url, max: 2 });
      pools.push(pool);
      return instance({ crossInstanceLock: (key, fn) => withAdvisoryLock(pool, key, () => fn()) });
    });
    const ids = await Promise.all(gateways.map((g) => g.roleIdsByName(["locked"], 1)));
    expect(rolesNamed("locked")).toHaveLength(1);
    expect(new Set(ids.flat())).toEqual(new Set([rolesNamed("locked")[0]!.id]));
  });
});
