import { mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { openDatabase, startBackgroundCheckpoints } from "../../src/directory/database.js";

/**
 * `serve` turns SQLite's checkpoint-on-commit off (no SCIM write pays for copying the WAL into the
 * database) and checkpoints from a thread instead: the WAL must still stay bounded, and every write
 * must still be readable by a fresh connection.
 */
let dir: string;
let url: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "scim-bridge-ckpt-"));
  url = `sqlite:${join(dir, "bridge.db")}`;
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

/** Writes about 4 MiB in 100 commits, then waits long enough for a few background checkpoints. */
async function writeRound(sqlite: ReturnType<typeof openDatabase>["sqlite"], round: number): Promise<void> {
  const insert = sqlite.prepare("INSERT INTO credential_epochs (name, epoch) VALUES (?, ?)");
  const blob = "x".repeat(40_000);
  for (let i = 0; i < 100; i++) insert.run(`r${round}-${i}-${blob}`, i);
  await new Promise((r) => setTimeout(r, 600));
}

const walBytes = () => statSync(join(dir, "bridge.db-wal")).size;

describe("background checkpoints", () => {
  it("keep the WAL bounded when commits no longer checkpoint", async () => {
    const opened = openDatabase(url, { autoCheckpoint: false });
    const errors: string[] = [];
    const checkpoints = startBackgroundCheckpoints(url, (m) => errors.push(m), 50);
    try {
      for (let round = 0; round < 4; round++) await writeRound(opened.sqlite, round);
      // Four rounds of ~4 MiB: the WAL restarted from its beginning instead of holding all of them.
      expect(walBytes()).toBeLessThan(10 * 2 ** 20);
    } finally {
      await checkpoints.stop();
    }
    expect(errors).toEqual([]);
    opened.close();
    const reread = openDatabase(url);
    expect(reread.sqlite.prepare("SELECT count(*) FROM credential_epochs WHERE name LIKE 'r%'").pluck().get()).toBe(
      400,
    );
    reread.close();
  }, 30_000);

  it("are what bounds it: without them the WAL holds every round", async () => {
    const opened = openDatabase(url, { autoCheckpoint: false });
    for (let round = 0; round < 4; round++) await writeRound(opened.sqlite, round);
    expect(walBytes()).toBeGreaterThan(14 * 2 ** 20);
    opened.close();
  }, 30_000);
});
