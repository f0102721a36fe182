import { availableParallelism } from "node:os";
import { configDefaults, defineConfig } from "vitest/config";

/** Suites that run on SQLite (project "main") and again on PostgreSQL (project "postgres"). */
const onBothDialects = [
  // The SCIM server (test/scim/read-pool.test.ts is SQLite's read pool; client-address.test.ts tests
  // proxy addresses on a bare app, not the store).
  "test/scim/isolation.test.ts",
  "test/scim/bad-input.test.ts",
  "test/scim/concurrency.test.ts",
  "test/scim/entra-replay.test.ts",
  "test/scim/filter.test.ts",
  "test/scim/okta-replay.test.ts",
  "test/scim/paging.test.ts",
  "test/scim/patch.test.ts",
  "test/scim/reads-by-id.test.ts",
  "test/scim/resources.test.ts",
  "test/scim/unicode.test.ts",
  "test/scim/validate-sampling.test.ts",
  // The directory store (the rest of test/directory/ is SQLite's own machinery: the write queue's
  // group commit, checkpoints, the page cache, the statement cache, the fold backfill).
  "test/directory/token-cache.test.ts",
  "test/directory/tokens.test.ts",
  "test/directory/writes.test.ts",
  // The admin API over the store.
  "test/admin/scim-request-log.test.ts",
  "test/admin/guard.test.ts",
  "test/admin/holds.test.ts",
  // Admin tokens honoured across two instances (two connections to one file, or two pools).
  "test/admin/instances.test.ts",
  // The admin router's limits over a store (the limits themselves are per process on both).
  "test/admin/rate-limit.test.ts",
  // The admin API over adminFixture (test/admin/helpers.ts), seeded and read through the store.
  "test/admin/admin-tokens.test.ts",
  "test/admin/authorization-matrix.test.ts",
  "test/admin/customer-routes.test.ts",
  "test/admin/openapi.test.ts",
  "test/admin/operator-routes.test.ts",
  // The sync engine (startSyncHarness opens a second bridge on the same database).
  "test/sync/provisioning.e2e.test.ts",
  "test/sync/worker.test.ts",
  "test/sync/claim-reads.test.ts",
  "test/sync/job-attempts.test.ts",
  "test/sync/enterprise.e2e.test.ts",
  "test/sync/invitations.e2e.test.ts",
  "test/sync/tenant-rules.e2e.test.ts",
  "test/sync/drift.test.ts",
  "test/sync/post-login-hook.test.ts",
  "test/sync/sync-state.test.ts",
  "test/sync/faults.e2e.test.ts",
  "test/sync/okta-adoption.e2e.test.ts",
  // The post-login decision and the tenant checks read mappings another instance applied.
  "test/sync/post-login-mapping.test.ts",
  "test/sync/tenant-checks.test.ts",
  // The shipped post-login Action against the bridge's hook.
  "test/sync/action.test.ts",
  // Property tests over the HTTP surface: text PostgreSQL itself refuses must be a 4xx there too.
  "test/fuzz/http.test.ts",
  // Health and metrics over a store.
  "test/ops/health.test.ts",
  "test/ops/metrics.test.ts",
  // The drift-scan schedule kept in the database, several instances on one.
  "test/sync/drift-schedule.test.ts",
];

export default defineConfig({
  test: {
    environment: "node",
    // Suites start real HTTP servers and SQLite files; the 2-core CI machine needs room.
    testTimeout: 30_000,
    hookTimeout: 60_000,
    pool: "forks",
    // Vitest's default (cores - 1) runs the files one at a time on a 2-core machine, yet most of a
    // file's time is spent waiting (the emulator's pacing, drains, child processes, fsync): four
    // files at once keep both cores busy. `--maxWorkers` on the command line still overrides this.
    maxWorkers: Math.max(4, availableParallelism()),
    // A worker keeps its loaded modules from one test file to the next instead of importing the
    // whole tree again per file (that import was a third of the suite's CPU time). Safe because no
    // module holds state shared between bridges: every test builds its own through createBridge.
    isolate: false,
    // test/postgres/ needs a PostgreSQL server: its own project, so that the server starts (once per
    // run, in the global setup) only when one of its files runs. The same project runs the suites in
    // `onBothDialects` a second time with createTestBridge on PostgreSQL (test/support/test-dialect.ts).
    projects: [
      {
        extends: true,
        test: {
          name: "main",
          include: ["test/**/*.test.ts"],
          exclude: [...configDefaults.exclude, "test/postgres/**"],
        },
      },
      {
        extends: true,
        test: {
          name: "postgres",
          include: ["test/postgres/**/*.test.ts", ...onBothDialects],
          globalSetup: ["test/support/postgres-global-setup.ts"],
          provide: { testDialect: "postgres" },
        },
      },
    ],
  },
});
