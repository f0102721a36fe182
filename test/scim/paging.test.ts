import { sqliteStore } from "../../src/directory/sql.js";
import { randomUUID } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, expect, it } from "vitest";
import { openDatabase } from "../../src/directory/database.js";
import { createApp } from "../../src/http/app.js";
import { testDialect } from "../support/test-dialect.js";
import { createTestBridge, scimClient, type ScimClient, type TestBridge, type TestDirectory } from "../helpers/scim.js";

/**
 * Sequential paging resumes from the previous page's end (keyset) rather than OFFSET; the answers
 * must be exactly what OFFSET gives, also when the directory changes between pages.
 */
let bridge: TestBridge;
let dir: TestDirectory & { scim: ScimClient };
beforeAll(async () => {
  bridge = await createTestBridge();
  dir = await bridge.newDirectory();
  for (let i = 0; i < 9; i++)
    await dir.scim
      .post("/Users", { userName: `walk-${i}-${randomUUID()}@x.test`, title: i % 2 ? "odd" : "even" })
      .expect(201);
});
afterAll(async () => bridge.close());

const ids = (res: { body: { Resources: { id: string }[] } }) => res.body.Resources.map((r) => r.id);
const everything = async (query = "") => ids(await dir.scim.get(`/Users?count=1000${query}`).expect(200));

async function walk(query = ""): Promise<string[]> {
  const seen: string[] = [];
  for (let start = 1; ; start += 2) {
    const page = await dir.scim.get(`/Users?startIndex=${start}&count=2${query}`).expect(200);
    seen.push(...ids(page));
    if (start + 2 > page.body.totalResults) return seen;
  }
}

it("walks every page in order, twice, with and without a filter", async () => {
  expect(await walk()).toEqual(await everything());
  expect(await walk()).toEqual(await everything());
  const filter = `&filter=${encodeURIComponent('title eq "odd"')}`;
  expect(await walk(filter)).toEqual(await everything(filter));
});

it("answers as OFFSET does when users are deleted or created between pages", async () => {
  const before = await everything();
  await dir.scim.get("/Users?startIndex=1&count=2").expect(200);
  await dir.scim.get("/Users?startIndex=3&count=2").expect(200);
  await dir.scim.delete(`/Users/${before[0]}`).expect(204);
  const after = await everything();
  expect(ids(await dir.scim.get("/Users?startIndex=5&count=2").expect(200))).toEqual(after.slice(4, 6));
  await dir.scim.post("/Users", { userName: `late-${randomUUID()}@x.test` }).expect(201);
  const latest = await everything();
  expect(ids(await dir.scim.get("/Users?startIndex=7&count=2").expect(200))).toEqual(latest.slice(6, 8));
});

// Registered in the SQLite run only (the "main" project runs it): the copy is made with VACUUM INTO,
// a SQLite statement; the anchors are keyed by the store, whichever its dialect.
if (testDialect === "sqlite")
  it("keeps each database's page anchors to itself: a copy served by a second app in the same process", async () => {
    const folder = mkdtempSync(join(tmpdir(), "scim-bridge-copy-"));
    const copyPath = join(folder, "copy.db");
    bridge.sqlite.exec(`VACUUM INTO '${copyPath}'`);
    const copy = openDatabase(`sqlite:${copyPath}`);
    try {
      // Same directory id and token as the original: only the database differs.
      const other = scimClient(createApp({ store: sqliteStore(copy.sqlite), publicUrl: bridge.origin }), dir);
      const original = await everything();
      await dir.scim.delete(`/Users/${original[0]}`).expect(204);
      // The copy (still holding that user) walks its first page and records where its second begins.
      await other.get("/Users?startIndex=1&count=2").expect(200);
      const after = await everything();
      expect(ids(await dir.scim.get("/Users?startIndex=3&count=2").expect(200))).toEqual(after.slice(2, 4));
      const copied = ids(await other.get("/Users?count=1000").expect(200));
      expect(ids(await other.get("/Users?startIndex=3&count=2").expect(200))).toEqual(copied.slice(2, 4));
    } finally {
      copy.close();
      rmSync(folder, { recursive: true, force: true });
    }
  });
