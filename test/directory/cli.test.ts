import { openStore } from "../../src/cli/database.js";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir, userInfo } from "node:os";
import { join } from "node:path";
import { Command } from "commander";
import { eq } from "drizzle-orm";
import { auditEntries, scimTokens } from "../../db/schema.js";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { registerOrgCommands } from "../../src/cli/org.js";
import { openDatabase } from "../../src/directory/database.js";
import { verifyScimToken } from "../../src/directory/tokens.js";
import { connectionOf } from "../../src/directory/statements.js";
import { sqliteStore } from "../../src/directory/sql.js";
import { pendingJob } from "../helpers/store.js";

/** The operator CLI of docs/design.md, "Contract", run in-process against a fresh database file. */
let dir: string;
let url: string;
let printed: string[];

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "scim-bridge-cli-"));
  url = `sqlite:${join(dir, "bridge.db")}`;
  printed = [];
  vi.spyOn(console, "log").mockImplementation((line: unknown) => void printed.push(String(line)));
});
afterEach(() => {
  vi.restoreAllMocks();
  rmSync(dir, { recursive: true, force: true });
});

async function cli(...args: string[]): Promise<string> {
  const program = new Command("scim-bridge").exitOverride();
  registerOrgCommands(program, () => ({ open: () => openStore(url), publicUrl: "https://bridge.example.com" }));
  printed = [];
  await program.parseAsync(["node", "scim-bridge", ...args]);
  return printed.join("\n");
}

const inspectAsync = async <T>(read: (d: ReturnType<typeof openDatabase>) => Promise<T>): Promise<T> => {
  const opened = openDatabase(url);
  try {
    return await read(opened);
  } finally {
    opened.close();
  }
};

const inspect = <T>(read: (d: ReturnType<typeof openDatabase>) => T): T => {
  const opened = openDatabase(url);
  try {
    return read(opened);
  } finally {
    opened.close();
  }
};

describe("scim-bridge org create --json", () => {
  it("prints exactly organization, directory, scimBaseUrl and a working token, and enqueues the organization job", async () => {
    const out = JSON.parse(
      await cli(
        "org",
        "create",
        "acme-corp",
        "--name",
        "Acme Corp",
        "--model",
        "shared",
        "--connection",
        "acme-db",
        "--json",
      ),
    );
    expect(Object.keys(out)).toEqual(["organization", "directory", "scimBaseUrl", "token"]);
    expect(out.organization).toMatchObject({
      slug: "acme-corp",
      name: "Acme Corp",
      model: "shared",
      connection: "acme-db",
    });
    expect(out.directory.organizationId).toBe(out.organization.id);
    expect(out.scimBaseUrl).toBe(`https://bridge.example.com/scim/v2/${out.directory.id}`);
    await inspectAsync(async ({ db }) => {
      expect(await verifyScimToken(sqliteStore(connectionOf(db)), out.token)).toEqual(
        expect.objectContaining({ directoryId: out.directory.id, organizationId: out.organization.id }),
      );
      expect(await pendingJob(sqliteStore(connectionOf(db)), "organization", out.organization.id)).toBeDefined();
    });
  });

  it.each(["Acme", "acme corp", "a".repeat(51), "acmé", ""])(
    "refuses slug %j by Auth0's organization name rules",
    async (slug) => {
      await expect(cli("org", "create", slug, "--json")).rejects.toThrow(/slug/);
    },
  );

  it("refuses a second organization with the same slug", async () => {
    await cli("org", "create", "dup", "--json");
    await expect(cli("org", "create", "dup", "--json")).rejects.toThrow(/already exists/);
  });
});

describe("directory create, token rotate, org list", () => {
  it("adds a directory, rotates its token keeping two active, and lists both directories", async () => {
    const org = JSON.parse(await cli("org", "create", "globex", "--json"));
    const second = JSON.parse(await cli("directory", "create", "globex", "--name", "okta", "--json"));
    expect(second.organization.id).toBe(org.organization.id);
    expect(second.directory.name).toBe("okta");

    const rotated = JSON.parse(await cli("token", "rotate", org.directory.id, "--json"));
    expect(rotated.token).not.toBe(org.token);
    await inspectAsync(async ({ db }) => {
      expect(await verifyScimToken(sqliteStore(connectionOf(db)), org.token)).toBeDefined();
      expect(await verifyScimToken(sqliteStore(connectionOf(db)), rotated.token)).toBeDefined();
    });
    const third = JSON.parse(await cli("token", "rotate", org.directory.id, "--json"));
    await inspectAsync(async ({ db }) => {
      expect(await verifyScimToken(sqliteStore(connectionOf(db)), org.token)).toBeUndefined();
      expect(await verifyScimToken(sqliteStore(connectionOf(db)), rotated.token)).toBeDefined();
      expect(await verifyScimToken(sqliteStore(connectionOf(db)), third.token)).toBeDefined();
    });

    const listed = JSON.parse(await cli("org", "list", "--json"));
    expect(listed.organizations).toHaveLength(1);
    expect(listed.organizations[0].directories.map((d: { id: string }) => d.id)).toEqual([
      org.directory.id,
      second.directory.id,
    ]);
    expect(JSON.stringify(listed)).not.toContain(third.token);
  });

  it("records the operator at the terminal in the audit log, as every other command does", async () => {
    const org = JSON.parse(await cli("org", "create", "initech", "--json"));
    await cli("token", "rotate", org.directory.id, "--json");
    const actors = inspect(({ db }) =>
      db
        .select({ action: auditEntries.action, type: auditEntries.actorType, id: auditEntries.actorId })
        .from(auditEntries)
        .where(eq(auditEntries.organizationId, org.organization.id))
        .all(),
    );
    expect(actors.map((a) => a.action)).toEqual(
      expect.arrayContaining(["organization.create", "directory.create", "token.issue"]),
    );
    for (const a of actors) expect(a).toMatchObject({ type: "operator", id: `cli:${userInfo().username}` });
  });

  it("holds a token lifetime to the admin API's rule: whole days from 1 to 3650", async () => {
    await expect(cli("org", "create", "zero", "--expires-in-days", "0")).rejects.toThrow(
      /whole number of days from 1 to 3650/,
    );
    await expect(cli("org", "create", "long", "--expires-in-days", "3651")).rejects.toThrow(
      /whole number of days from 1 to 3650/,
    );
    const made = JSON.parse(await cli("org", "create", "year", "--expires-in-days", "365", "--json"));
    const expiresAt = inspect(
      ({ db }) => db.select().from(scimTokens).where(eq(scimTokens.directoryId, made.directory.id)).get()!.expiresAt!,
    );
    expect(expiresAt - Date.now()).toBeGreaterThan(364 * 86_400_000);
    expect(expiresAt - Date.now()).toBeLessThanOrEqual(365 * 86_400_000);
  });

  it("reports an unknown directory or organization", async () => {
    await expect(cli("token", "rotate", "dir-nope")).rejects.toThrow(/not found/);
    await expect(cli("directory", "create", "nope")).rejects.toThrow(/not found/);
  });
});
