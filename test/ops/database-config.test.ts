import { describe, expect, it } from "vitest";
import { ConfigError, loadConfig } from "../../src/config.js";

const problemsOf = (env: NodeJS.ProcessEnv): string[] => {
  try {
    loadConfig(env);
    return [];
  } catch (error) {
    if (error instanceof ConfigError) return error.problems;
    throw error;
  }
};

describe("DATABASE_URL and DATABASE_POOL_SIZE", () => {
  it("takes a SQLite file by default and a PostgreSQL URL in either spelling", () => {
    expect(loadConfig({}).databaseUrl).toBe("sqlite:./data/bridge.db");
    for (const url of ["postgres://bridge:pw@127.0.0.1:5432/bridge", "postgresql://127.0.0.1/bridge"]) {
      const config = loadConfig({ DATABASE_URL: url });
      expect(config.databaseUrl).toBe(url);
      expect(config.databasePoolSize).toBe(10);
    }
  });

  it("refuses another database with what it accepts, without echoing the rest of the URL (it may hold a password)", () => {
    const problems = problemsOf({ DATABASE_URL: "mysql://root:secret@db/bridge" });
    expect(problems).toHaveLength(1);
    expect(problems[0]).toContain('"sqlite:<path>" or "postgres://');
    expect(problems[0]).not.toContain("secret");
  });

  it("refuses a pool size that is not a whole number of connections", () => {
    expect(loadConfig({ DATABASE_POOL_SIZE: "25" }).databasePoolSize).toBe(25);
    for (const bad of ["0", "-1", "2.5", "many", "1001"])
      expect(problemsOf({ DATABASE_POOL_SIZE: bad })).toEqual([
        `DATABASE_POOL_SIZE must be a whole number of connections from 1 to 1000 (got "${bad}")`,
      ]);
  });
});
