import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Command } from "commander";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { registerMappingCommands } from "../../src/cli/mapping.js";
import { openStore } from "../../src/cli/database.js";
import { openDatabase } from "../../src/directory/database.js";
import { scimUser, seedOrganization, seedUsers } from "./seed.js";

let dir: string;
let url: string;
let out: string[];
let err: string[];

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "mapping-cli-"));
  url = `sqlite:${join(dir, "bridge.db")}`;
  const handle = openDatabase(url);
  const { dirId } = seedOrganization(handle.db, "acme");
  seedUsers(handle.db, dirId, [
    { id: "u1", resource: scimUser("ann"), groups: ["Eng-Admins"] },
    { id: "u2", resource: scimUser("bob") },
  ]);
  handle.close();
  out = [];
  err = [];
  vi.spyOn(console, "log").mockImplementation((...a: unknown[]) => void out.push(a.join(" ")));
  vi.spyOn(console, "error").mockImplementation((...a: unknown[]) => void err.push(a.join(" ")));
});
afterEach(() => {
  vi.restoreAllMocks();
  process.exitCode = undefined;
  rmSync(dir, { recursive: true, force: true });
});

async function cli(...args: string[]): Promise<number> {
  const program = new Command("scim-bridge").exitOverride();
  registerMappingCommands(program, () => openStore(url));
  process.exitCode = undefined;
  await program.parseAsync(["node", "scim-bridge", ...args]);
  return Number(process.exitCode ?? 0);
}

function file(name: string, text: string): string {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
}

const good = [
  "connection: { name: acme-db }",
  "userModel: isolated",
  "profile: { email: 'emails[primary eq true].value' }",
  "roles:",
  "  rules:",
  "    - { when: { group: Eng-Admins }, grant: [admin] }",
  "  default: [member]",
].join("\n");

describe("scim-bridge mapping", () => {
  it("validate: exit 0 and a summary for a valid file", async () => {
    expect(await cli("mapping", "validate", file("m.yaml", good))).toBe(0);
    expect(out.join("\n")).toContain("valid mapping: connection acme-db (database), user model isolated");
  });

  it("validate: exit 1 and file:line:column: path: reason for each problem", async () => {
    const bad = file(
      "bad.yaml",
      good
        .replace("userModel: isolated", "userModel: isolatd")
        .replace("grant: [admin]", "grant: [admin], stopp: true"),
    );
    expect(await cli("mapping", "validate", bad)).toBe(1);
    expect(err.join("\n").split("\n").slice(1)).toEqual([
      `${bad}:2:1: userModel: expected one of "isolated", "shared" (got "isolatd")`,
      `${bad}:6:54: roles.rules[0].stopp: unknown key "stopp" (allowed: name, when, grant, stop)`,
    ]);
  });

  it("validate --json: the issues as data", async () => {
    expect(
      await cli(
        "mapping",
        "validate",
        "--json",
        file("bad.json", '{"connection": {"name": "x"}, "userModel": "shared"}'),
      ),
    ).toBe(1);
    expect(JSON.parse(out.join("\n"))).toMatchObject({
      ok: false,
      issues: [{ path: "profile", message: "required: expected object", line: 1, column: 1 }],
    });
  });

  it("validate: exit 66 when the file cannot be read", async () => {
    expect(await cli("mapping", "validate", join(dir, "missing.yaml"))).toBe(66);
    expect(err.join("\n")).toContain("cannot read");
  });

  it("preview, apply, history, rollback", async () => {
    const m = file("m.yaml", good);
    expect(await cli("mapping", "preview", "acme", m, "--json")).toBe(0);
    expect(JSON.parse(out.pop()!)).toMatchObject({ total: 2, activeVersion: null, changed: { roles: 2, users: 2 } });

    expect(await cli("mapping", "preview", "acme", m)).toBe(0);
    expect(out.pop()).toContain("2 of 2 user(s) would change");

    expect(await cli("mapping", "apply", "acme", m, "--comment", "onboarding", "--actor", "alice", "--json")).toBe(0);
    expect(JSON.parse(out.pop()!)).toMatchObject({ version: 1, changed: true });
    expect(await cli("mapping", "apply", "acme", file("v2.yaml", good.replace("[member]", "[viewer]")), "--json")).toBe(
      0,
    );
    expect(JSON.parse(out.pop()!)).toMatchObject({ version: 2, changed: true });

    expect(await cli("mapping", "history", "acme", "--json")).toBe(0);
    expect(JSON.parse(out.pop()!)).toMatchObject([
      { version: 2, active: true },
      { version: 1, active: false, createdBy: "operator:cli:alice", comment: "onboarding" },
    ]);

    expect(await cli("mapping", "rollback", "acme", "1")).toBe(0);
    expect(out.pop()).toBe("acme: version 1 is active again; the organization will be re-reconciled");
    expect(await cli("mapping", "preview", "acme", m, "--json")).toBe(0);
    expect(JSON.parse(out.pop()!)).toMatchObject({ activeVersion: 1, changed: { users: 0 } });
  });

  it("exit 1 for an unknown organization or version", async () => {
    expect(await cli("mapping", "rollback", "acme", "9")).toBe(1);
    expect(err.pop()).toBe('notFound: organization "acme" has no mapping version 9');
    expect(await cli("mapping", "history", "nope")).toBe(1);
    expect(await cli("mapping", "preview", "nope", file("m.yaml", good))).toBe(1);
  });
});
