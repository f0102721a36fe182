/**
 * The CLI on PostgreSQL: `scim-bridge migrate` run by several instances at once, the store every
 * command opens for a postgres:// DATABASE_URL, commands on it, and the one-line refusal of a command
 * whose code below still needs SQLite. The tests through bin/scim-bridge.js need `npm run build`.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Command } from "commander";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { migrateDatabase, openStore } from "../../src/cli/database.js";
import { registerMappingCommands } from "../../src/cli/mapping.js";
import { registerStatusCommands } from "../../src/cli/status.js";
import { postgresMigrationsFolder } from "../../src/directory/postgres.js";
import { runCli } from "../doctor/helpers.js";
import { freshDatabase, postgresUnavailable, withClient, type TestDatabase } from "../support/postgres.js";
import { seedOrganization } from "../support/store-dialects.js";

const migrationCount = (
  JSON.parse(readFileSync(join(postgresMigrationsFolder, "meta", "_journal.json"), "utf8")) as { entries: unknown[] }
).entries.length;

const appliedMigrations = (url: string): Promise<number> =>
  withClient(url, async (c) =>
    Number((await c.query<{ n: string }>("SELECT count(*) AS n FROM drizzle.__drizzle_migrations")).rows[0]!.n),
  );

const publicTables = (url: string): Promise<string[]> =>
  withClient(url, async (c) =>
    (
      await c.query<{ t: string }>(
        "SELECT table_name AS t FROM information_schema.tables WHERE table_schema = 'public' ORDER BY 1",
      )
    ).rows.map((r) => r.t),
  );

const mappingFile = [
  "connection: { name: acme-db }",
  "userModel: isolated",
  "profile: { email: 'emails[primary eq true].value' }",
  "roles:",
  "  rules:",
  "    - { when: { group: Eng-Admins }, grant: [admin] }",
  "  default: [member]",
].join("\n");

describe.skipIf(postgresUnavailable !== "")("the CLI on PostgreSQL", () => {
  let database: TestDatabase;
  let dir: string;
  let out: string[];

  beforeEach(async () => {
    database = await freshDatabase();
    dir = mkdtempSync(join(tmpdir(), "cli-postgres-"));
    out = [];
    vi.spyOn(console, "log").mockImplementation((...a: unknown[]) => void out.push(a.join(" ")));
  });
  afterEach(async () => {
    vi.restoreAllMocks();
    process.exitCode = undefined;
    rmSync(dir, { recursive: true, force: true });
    await database.drop();
  });

  async function cli(...args: string[]): Promise<string> {
    const program = new Command("scim-bridge").exitOverride();
    registerMappingCommands(program, () => openStore(database.url));
    registerStatusCommands(program, () => openStore(database.url));
    out = [];
    await program.parseAsync(["node", "scim-bridge", ...args]);
    return out.join("\n");
  }

  it("scim-bridge migrate run by three instances at once: all succeed and the schema is applied once", async () => {
    const outcomes = await Promise.allSettled([
      migrateDatabase(database.url),
      migrateDatabase(database.url),
      migrateDatabase(database.url),
    ]);

    expect(outcomes.map((o) => (o.status === "rejected" ? String(o.reason) : o.status))).toEqual([
      "fulfilled",
      "fulfilled",
      "fulfilled",
    ]);
    expect(await publicTables(database.url)).toContain("organizations");
    expect(await appliedMigrations(database.url)).toBe(migrationCount);
  });

  it("scim-bridge migrate (the compiled CLI) in three processes at once: every one exits 0, the schema is applied once", async () => {
    const env = { DATABASE_URL: database.url };
    const runs = await Promise.all([runCli(["migrate"], env), runCli(["migrate"], env), runCli(["migrate"], env)]);

    expect(runs.map((r) => [r.code, r.stdout.trim(), r.stderr])).toEqual(
      Array.from({ length: 3 }, () => [0, "migrations applied", ""]),
    );
    expect(await appliedMigrations(database.url)).toBe(migrationCount);
  });

  it("the compiled CLI: status, org create and org list run on PostgreSQL", async () => {
    const env = { DATABASE_URL: database.url, PUBLIC_URL: "https://bridge.example.com" };
    const seed = await openStore(database.url);
    await seed.write(seedOrganization()).finally(() => seed.close());

    const status = await runCli(["status", "acme", "--json"], env);
    expect(status.stderr).toBe("");
    expect(status.code).toBe(0);
    expect(JSON.parse(status.stdout)).toMatchObject({ organization: { slug: "acme" }, users: { total: 0 } });

    const created = await runCli(["org", "create", "globex", "--json"], env);
    expect(created.stderr).toBe("");
    expect(created.code).toBe(0);
    const onboarded = JSON.parse(created.stdout) as { scimBaseUrl: string; token: string };
    expect(onboarded.scimBaseUrl).toMatch(/^https:\/\/bridge\.example\.com\/scim\/v2\//);
    expect(onboarded.token.length).toBeGreaterThan(20);

    const list = await runCli(["org", "list", "--json"], env);
    expect(list.code).toBe(0);
    const slugs = (JSON.parse(list.stdout) as { organizations: { slug: string }[] }).organizations.map((o) => o.slug);
    expect(slugs).toEqual(expect.arrayContaining(["acme", "globex"]));
  });

  it("a command on a postgres:// or postgresql:// URL opens a PostgreSQL store on a migrated database", async () => {
    const store = await openStore(database.url);
    try {
      expect(store.dialect).toBe("postgres");
      expect(await appliedMigrations(database.url)).toBe(migrationCount);
    } finally {
      await store.close();
    }
    const postgresql = await openStore(database.url.replace(/^postgres:/, "postgresql:"));
    try {
      expect(postgresql.dialect).toBe("postgres");
      // Already migrated: opening again applies nothing twice.
      expect(await appliedMigrations(database.url)).toBe(migrationCount);
    } finally {
      await postgresql.close();
    }
  });

  it("mapping apply, history and show, status and jobs run on PostgreSQL", async () => {
    const seed = await openStore(database.url);
    await seed.write(seedOrganization()).finally(() => seed.close());
    const file = join(dir, "acme.yaml");
    writeFileSync(file, mappingFile);

    expect(JSON.parse(await cli("mapping", "apply", "acme", file, "--json"))).toMatchObject({
      version: 1,
      changed: true,
    });
    expect(JSON.parse(await cli("mapping", "history", "acme", "--json"))).toMatchObject([{ version: 1, active: true }]);
    expect(JSON.parse(await cli("mapping", "show", "acme", "--json"))).toMatchObject({
      organization: "acme",
      version: 1,
      default: false,
      mapping: { connection: { name: "acme-db" }, userModel: "isolated" },
    });
    const status = JSON.parse(await cli("status", "acme", "--json")) as Record<string, unknown>;
    expect(status).toMatchObject({
      organization: { slug: "acme", activeMappingVersion: 1 },
      users: { total: 0 },
      guard: { paused: false },
    });
    // The apply queued the organization's re-reconcile.
    expect(JSON.parse(await cli("jobs", "--org", "acme", "--json"))).toMatchObject({
      total: 1,
      jobs: [{ organization: "acme", kind: "organization", state: "pending", lane: "background" }],
    });
    expect(process.exitCode ?? 0).toBe(0);
  });

  it("mapping preview runs on PostgreSQL", async () => {
    const seed = await openStore(database.url);
    await seed.write(seedOrganization()).finally(() => seed.close());
    const file = join(dir, "acme.yaml");
    writeFileSync(file, mappingFile);

    const preview = JSON.parse(await cli("mapping", "preview", "acme", file, "--json")) as Record<string, unknown>;
    // seedOrganization has no users: nothing would change, and nothing was applied before.
    expect(preview).toMatchObject({ total: 0, activeVersion: null });
    expect(process.exitCode ?? 0).toBe(0);
  });
});
