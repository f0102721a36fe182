import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, expect, it } from "vitest";
import { ConfigError, loadConfig } from "../../src/config.js";
import { defaultCacheMiB, openDatabase } from "../../src/directory/database.js";

/**
 * The store's memory is a page cache of a configured size per connection (and no file mapping
 * unless asked for), so that a server's memory does not grow with the directories it holds.
 */
const folder = mkdtempSync(join(tmpdir(), "scim-bridge-cache-"));
afterAll(() => rmSync(folder, { recursive: true, force: true }));

it("opens each connection with the configured page cache and file mapping, and bounded defaults", () => {
  const url = `sqlite:${join(folder, "bridge.db")}`;
  const plain = openDatabase(url);
  expect(plain.sqlite.pragma("cache_size", { simple: true })).toBe(-defaultCacheMiB * 1024);
  expect(plain.sqlite.pragma("mmap_size", { simple: true })).toBe(0);
  plain.close();
  const sized = openDatabase(url, { cacheMiB: 8, mmapMiB: 16 });
  expect(sized.sqlite.pragma("cache_size", { simple: true })).toBe(-8 * 1024);
  expect(sized.sqlite.pragma("mmap_size", { simple: true })).toBe(16 * 1024 * 1024);
  sized.close();
});

it("reads SQLITE_CACHE_MIB and SQLITE_MMAP_MIB, leaving the store's defaults when unset", () => {
  expect(loadConfig({}).sqlite).toEqual({});
  expect(loadConfig({ SQLITE_CACHE_MIB: "64", SQLITE_MMAP_MIB: "0" }).sqlite).toEqual({ cacheMiB: 64, mmapMiB: 0 });
  for (const [name, value] of [
    ["SQLITE_CACHE_MIB", "0"],
    ["SQLITE_CACHE_MIB", "lots"],
    ["SQLITE_MMAP_MIB", "-1"],
    ["SQLITE_MMAP_MIB", "1.5"],
  ]) {
    let problem: unknown;
    try {
      loadConfig({ [name!]: value });
    } catch (err) {
      problem = err;
    }
    expect(problem).toBeInstanceOf(ConfigError);
    expect((problem as ConfigError).problems.join("\n")).toContain(name);
  }
});
