import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { eq } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { directories, organizations } from "../../db/schema.js";
import { openDatabase, type OpenDatabase } from "../../src/directory/database.js";
import { onboardOrganizationOp } from "../../src/admin/onboarding.js";
import { changeBy } from "../../src/directory/write-context.js";
import { writeSync } from "../../src/directory/store-op.js";

/**
 * Every connection reuses the statements it has prepared. A reused statement must behave as a fresh
 * one: rows as objects, whatever mode (arrays, single values) its previous user left it in.
 */
let dir: string;
let opened: OpenDatabase;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "scim-bridge-stmt-"));
  opened = openDatabase(`sqlite:${join(dir, "bridge.db")}`);
  writeSync(opened.db, onboardOrganizationOp({ slug: "acme" }, changeBy({ type: "operator", id: "test" })));
});
afterAll(() => {
  opened.close();
  rmSync(dir, { recursive: true, force: true });
});

describe("statement cache", () => {
  it("hands out the same statement for the same SQL", () => {
    const text = "SELECT slug FROM organizations WHERE slug = ?";
    expect(opened.sqlite.prepare(text)).toBe(opened.sqlite.prepare(text));
  });

  it("returns rows as objects after an earlier user switched the statement to arrays or single values", () => {
    const text = "SELECT slug, display_name AS displayName FROM organizations WHERE slug = ?";
    expect(opened.sqlite.prepare(text).raw().get("acme")).toEqual(["acme", expect.any(String)]);
    expect(opened.sqlite.prepare(text).get("acme")).toEqual({ slug: "acme", displayName: expect.any(String) });
    expect(opened.sqlite.prepare(text).pluck().get("acme")).toBe("acme");
    expect(opened.sqlite.prepare(text).get("acme")).toEqual({ slug: "acme", displayName: expect.any(String) });
  });

  it("gives drizzle's array mode and a plain read of the same SQL the right shapes, in either order", () => {
    const query = opened.db
      .select({ slug: organizations.slug, directoryId: directories.id })
      .from(organizations)
      .innerJoin(directories, eq(directories.organizationId, organizations.id))
      .where(eq(organizations.slug, "acme"));
    const { sql: text, params } = query.toSQL();
    const first = query.get(); // drizzle runs a join in array mode and maps the columns itself
    expect(first).toEqual({ slug: "acme", directoryId: expect.any(String) });
    expect(opened.sqlite.prepare(text).get(...params)).toEqual({ slug: "acme", id: first!.directoryId });
    expect(query.get()).toEqual(first);
  });
});
