/**
 * The sync engine's worker on PostgreSQL: a user created through the store ops is provisioned in
 * the (emulated) Auth0 tenant end to end. Given a PostgreSQL store, createSyncEngine claims, leases
 * and finishes jobs with the PostgreSQL queue (pgJobQueue over PgOutbox) and shares the rate budget
 * through PostgresBudget.
 */
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createManagementClient } from "../../src/auth0/client.js";
import { createDirectory } from "../../src/directory/directories.js";
import { saveMappingVersion } from "../../src/directory/mappings.js";
import { createOrganization } from "../../src/directory/organizations.js";
import { migratePostgres } from "../../src/directory/postgres.js";
import { postgresStore, type SqlStore } from "../../src/directory/sql.js";
import { createUser } from "../../src/directory/users.js";
import { changeBy } from "../../src/directory/write-context.js";
import { startEmulator, type RunningEmulator } from "../../src/emulator/index.js";
import { parseMapping } from "../../src/mapping/index.js";
import { createSyncEngine, type SyncEngine } from "../../src/sync/engine.js";
import { freshDatabase, postgresUnavailable, type TestDatabase } from "../support/postgres.js";

const operator = { type: "operator", id: "test" } as const;

describe.skipIf(postgresUnavailable !== "")("the sync worker on PostgreSQL", () => {
  let database: TestDatabase;
  let store: SqlStore;
  let pool: pg.Pool;
  let emulator: RunningEmulator;
  let engine: SyncEngine | undefined;

  beforeAll(async () => {
    database = await freshDatabase();
    await migratePostgres(database.url);
    store = postgresStore(database.url);
    pool = new pg.Pool({ connectionString: database.url, max: 4 });
    emulator = await startEmulator({ rateLimits: false, plan: "enterprise" });
  });
  afterAll(async () => {
    await engine?.worker.stop(2_000);
    engine?.limiter.stop();
    await emulator?.close();
    await pool?.end();
    await store?.close();
    await database?.drop();
  });

  async function drained(): Promise<void> {
    const open = async () =>
      (await pool.query<{ n: number }>("SELECT count(*)::int AS n FROM jobs WHERE state IN ('pending', 'running')"))
        .rows[0]!.n;
    const end = Date.now() + 20_000;
    while ((await open()) > 0) {
      if (Date.now() > end) throw new Error("the jobs did not finish in 20 s");
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  it("provisions a directory user in Auth0 and records the job done and the user linked", async () => {
    const { organizationId, directoryId } = await store.write(
      (function* () {
        const change = changeBy(operator);
        const org = yield* createOrganization({ slug: "acme", connection: "Username-Password-Authentication" }, change);
        const dir = yield* createDirectory({ organizationId: org.id }, change);
        yield* saveMappingVersion(
          org.id,
          parseMapping({
            connection: { name: "Username-Password-Authentication", type: "database" },
            userModel: "isolated",
            profile: { email: "userName" },
          }),
          { actor: operator },
        );
        return { organizationId: org.id, directoryId: dir.id };
      })(),
    );
    const user = await store.write(
      createUser({ ...changeBy(operator), organizationId, directoryId }, {
        schemas: ["urn:ietf:params:scim:schemas:core:2.0:User"],
        userName: "ada@acme.example",
        active: true,
      } as Parameters<typeof createUser>[1]),
    );

    engine = createSyncEngine({
      store,
      client: createManagementClient(
        {
          domain: "tenant.example.auth0.com",
          clientId: "scim-bridge-test",
          clientSecret: "test-secret",
          managementUrl: emulator.url,
        },
        { maxRetries: 0 },
      ),
      plan: "enterprise",
      tenant: "tenant.example.auth0.com",
      // Longer than the test waits: jobs enqueued after the start are claimed on wake-ups, never
      // because the worker polled.
      pollMs: 60_000,
    });
    engine.worker.start();

    await drained();

    const jobs = await pool.query<{ kind: string; state: string; last_error: string | null }>(
      "SELECT kind, state, last_error FROM jobs ORDER BY id",
    );
    expect(jobs.rows.filter((j) => j.state !== "done")).toEqual([]);
    const [auth0User] = emulator.state.usersByEmail("ada@acme.example");
    expect(auth0User).toBeDefined();
    const link = await pool.query<{ auth0_user_id: string; last_error: string | null }>(
      "SELECT auth0_user_id, last_error FROM user_sync WHERE user_id = $1",
      [user.id],
    );
    expect(link.rows[0]).toEqual({ auth0_user_id: auth0User!.user_id, last_error: null });
  });

  it("provisions a user created later through another store, without waiting for the worker's poll", async () => {
    const other = postgresStore(database.url);
    try {
      const { organizationId, directoryId } = (
        await pool.query<{ organizationId: string; directoryId: string }>(
          `SELECT organization_id AS "organizationId", id AS "directoryId" FROM directories LIMIT 1`,
        )
      ).rows[0]!;
      await other.write(
        createUser({ ...changeBy(operator), organizationId, directoryId }, {
          schemas: ["urn:ietf:params:scim:schemas:core:2.0:User"],
          userName: "grace@acme.example",
          active: true,
        } as Parameters<typeof createUser>[1]),
      );
    } finally {
      await other.close();
    }
    await drained();
    expect(emulator.state.usersByEmail("grace@acme.example")).toHaveLength(1);
  });
});
