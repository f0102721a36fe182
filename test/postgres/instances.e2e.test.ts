import { afterAll, describe, it } from "vitest";
import { migratePostgres } from "../../src/directory/postgres.js";
import { postgresStore } from "../../src/directory/sql.js";
import { runInstancesScenario } from "../helpers/instances.js";
import { freshDatabase, postgresUnavailable, type TestDatabase } from "../support/postgres.js";

let database: TestDatabase | undefined;
afterAll(() => database?.drop());

describe.skipIf(postgresUnavailable)("several instances on one PostgreSQL database", () => {
  it("converge on Auth0 with 2,000 users pushed across three instances, one SIGKILLed twice", async () => {
    database = await freshDatabase();
    // The instances migrate at start, all three at once; the test's own store needs the schema first.
    await migratePostgres(database.url);
    const store = postgresStore(database.url, { poolSize: 2 });
    try {
      await runInstancesScenario({
        databaseUrl: database.url,
        store,
        users: 2000,
        admins: 100,
        deactivated: 50,
        drainMs: 240_000,
      });
    } finally {
      await store.close();
    }
  }, 420_000);
});
