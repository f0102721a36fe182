import { openStore } from "../../src/cli/database.js";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Command } from "commander";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { registerSetupLinkCommands } from "../../src/cli/setup-link.js";
import { auditEntries, setupLinks } from "../../db/schema.js";
import { openDatabase } from "../../src/directory/database.js";
import { sqliteStore } from "../../src/directory/sql.js";
import { onboardOrganization } from "../../src/admin/onboarding.js";
import { changeBy } from "../../src/directory/write-context.js";
import { hashSetupToken, redeemSetupLink } from "../../src/directory/setup-links.js";
import { writeSync } from "../../src/directory/store-op.js";

/** `scim-bridge setup-link create|revoke`, run in-process against a fresh database file. */
let dir: string;
let url: string;
let printed: string[];

beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), "scim-bridge-setup-link-"));
  url = `sqlite:${join(dir, "bridge.db")}`;
  const opened = openDatabase(url);
  await onboardOrganization(sqliteStore(opened.sqlite), { slug: "acme" }, changeBy({ type: "operator", id: "test" }));
  opened.close();
  vi.spyOn(console, "log").mockImplementation((line: unknown) => void printed.push(String(line)));
});
afterEach(() => {
  vi.restoreAllMocks();
  rmSync(dir, { recursive: true, force: true });
});

async function cli(...args: string[]): Promise<string> {
  const program = new Command("scim-bridge").exitOverride();
  registerSetupLinkCommands(program, () => ({ open: () => openStore(url), publicUrl: "https://bridge.example.com" }));
  printed = [];
  await program.parseAsync(["node", "scim-bridge", ...args]);
  return printed.join("\n");
}

const withDb = <T>(read: (d: ReturnType<typeof openDatabase>) => T): T => {
  const opened = openDatabase(url);
  try {
    return read(opened);
  } finally {
    opened.close();
  }
};

describe("scim-bridge setup-link", () => {
  it("create --json prints exactly url and expiresAt; only the token's hash is stored, and the link opens", async () => {
    const before = Date.now();
    const out = JSON.parse(await cli("setup-link", "create", "acme", "--expires", "24h", "--json"));
    expect(Object.keys(out)).toEqual(["url", "expiresAt"]);
    expect(out.url).toMatch(/^https:\/\/bridge\.example\.com\/console\/setup\/sbs_[A-Za-z0-9_-]{43}$/);
    const expires = Date.parse(out.expiresAt);
    expect(expires - before).toBeGreaterThanOrEqual(24 * 3_600_000 - 1000);
    expect(expires - before).toBeLessThanOrEqual(24 * 3_600_000 + 5000);
    const token = out.url.split("/").pop() as string;
    withDb(({ db }) => {
      const rows = db.select().from(setupLinks).all();
      expect(rows).toHaveLength(1);
      expect(JSON.stringify(rows)).not.toContain(token);
      expect(rows[0]!.tokenHash).toBe(hashSetupToken(token));
      expect(writeSync(db, redeemSetupLink(token, {})).ok).toBe(true);
    });
  });

  it("revoke --all and revoke <id> end the links, with an audit entry each; a revoked link no longer opens", async () => {
    const a = JSON.parse(await cli("setup-link", "create", "acme", "--json"));
    const b = JSON.parse(await cli("setup-link", "create", "acme", "--json"));
    const idOf = (u: string) =>
      withDb(
        ({ db }) =>
          db
            .select()
            .from(setupLinks)
            .all()
            .find((r) => r.tokenHash === hashSetupToken(u.split("/").pop()!))!.id,
      );
    const revokedOne = JSON.parse(await cli("setup-link", "revoke", "acme", idOf(a.url), "--json"));
    expect(revokedOne).toEqual({ revoked: [idOf(a.url)] });
    withDb(({ db }) => {
      expect(writeSync(db, redeemSetupLink(a.url.split("/").pop(), {}))).toEqual({ ok: false, reason: "revoked" });
      expect(writeSync(db, redeemSetupLink(b.url.split("/").pop(), {})).ok).toBe(true);
    });
    const revokedAll = JSON.parse(await cli("setup-link", "revoke", "acme", "--all", "--json"));
    expect(revokedAll).toEqual({ revoked: [idOf(b.url)] });
    withDb(({ db }) => {
      expect(writeSync(db, redeemSetupLink(b.url.split("/").pop(), {}))).toEqual({ ok: false, reason: "revoked" });
      const actions = db
        .select()
        .from(auditEntries)
        .all()
        .map((e) => e.action);
      expect(actions.filter((x) => x === "setup_link.revoke")).toHaveLength(2);
      expect(actions.filter((x) => x === "setup_link.open")).toHaveLength(1);
    });
  });

  it("refuses a bad expiry, an unknown organization and an ambiguous revoke, writing nothing", async () => {
    await expect(cli("setup-link", "create", "acme", "--expires", "30d", "--json")).rejects.toThrow(
      /at most|from 1 minute/,
    );
    await expect(cli("setup-link", "create", "acme", "--expires", "soon", "--json")).rejects.toThrow(/30m, 24h or 3d/);
    await expect(cli("setup-link", "create", "nope", "--json")).rejects.toThrow(/not found/);
    await expect(cli("setup-link", "revoke", "acme")).rejects.toThrow(/--all/);
    withDb(({ db }) => expect(db.select().from(setupLinks).all()).toEqual([]));
  });
});
