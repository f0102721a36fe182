import { availableParallelism } from "node:os";
import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
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
  },
});
