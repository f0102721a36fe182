/**
 * Which dialect a suite's bridge runs on. The "main" vitest project runs every suite on SQLite; the
 * "postgres" project runs the suites vitest.config.ts lists a second time, on PostgreSQL (a fresh
 * database per bridge on the server its global setup started). A suite reads this only through
 * createTestDatabase (or createTestBridge), never to skip itself.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { inject } from "vitest";
import { freshDatabase } from "./postgres.js";

export type TestDialect = "sqlite" | "postgres";

export const testDialect: TestDialect = inject("testDialect") === "postgres" ? "postgres" : "sqlite";

export interface TestDatabaseUrl {
  /** sqlite:<file> or postgres://… */
  url: string;
  dialect: TestDialect;
  /** Removes the file or drops the database (after every store on it closed). */
  remove(): Promise<void>;
}

/** A new, empty database of this run's dialect, for createBridge (which migrates it). */
export async function createTestDatabase(): Promise<TestDatabaseUrl> {
  if (testDialect === "postgres") {
    const database = await freshDatabase();
    return { url: database.url, dialect: "postgres", remove: () => database.drop() };
  }
  const dir = mkdtempSync(join(tmpdir(), "scim-bridge-test-"));
  return {
    url: `sqlite:${join(dir, "bridge.db")}`,
    dialect: "sqlite",
    remove: async () => rmSync(dir, { recursive: true, force: true }),
  };
}
