import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    environment: "node",
    // Suites start real HTTP servers and SQLite files; the 2-core CI machine needs room.
    testTimeout: 30_000,
    hookTimeout: 60_000,
    pool: "forks",
  },
});
