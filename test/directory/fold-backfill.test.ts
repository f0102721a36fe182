import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { openDatabase } from "../../src/directory/database.js";
import { foldCase } from "../../src/directory/fold.js";
import { onboardOrganizationOp } from "../../src/admin/onboarding.js";
import { changeBy } from "../../src/directory/write-context.js";
import { writeSync } from "../../src/directory/store-op.js";

/**
 * Rows written before folding was Unicode-aware carry String.prototype.toLowerCase() in their folded
 * columns; opening the database refolds them once, so indexed eq filters and uniqueness see them.
 */
let dir: string | undefined;
afterEach(() => dir && rmSync(dir, { recursive: true, force: true }));

const decomposed = "E\u0301LODIE@EXAMPLE.COM"; // É as E + combining acute
const sigma = "ΟΔΟΣ";

describe("folded columns written before Unicode folding", () => {
  it("are refolded on open, once, and a refold that would collide with a live user keeps the old value", () => {
    dir = mkdtempSync(join(tmpdir(), "fold-backfill-"));
    const url = `sqlite:${join(dir, "bridge.db")}`;
    let first = openDatabase(url);
    const { directory } = writeSync(
      first.db,
      onboardOrganizationOp({ slug: "fold" }, changeBy({ type: "operator", id: "t" })),
    );
    const now = Date.now();
    const user = (id: string, userName: string, emails: string[]) => {
      first.sqlite
        .prepare(
          "INSERT INTO users (id, directory_id, user_name, user_name_lower, active, resource, version, created_at, modified_at) VALUES (?, ?, ?, ?, 1, ?, 1, ?, ?)",
        )
        .run(
          id,
          directory.id,
          userName,
          userName.toLowerCase(),
          JSON.stringify({ userName, emails: emails.map((value) => ({ value })) }),
          now,
          now,
        );
      emails.forEach((value, position) =>
        first.sqlite
          .prepare("INSERT INTO user_emails (user_id, directory_id, position, value_lower) VALUES (?, ?, ?, ?)")
          .run(id, directory.id, position, value.toLowerCase()),
      );
    };
    user("u1", decomposed, ["plain@example.com", decomposed]);
    user("u2", sigma, []);
    user("u3", "οδοσ", []); // already holds what u2 refolds to
    first.sqlite
      .prepare(
        "INSERT INTO groups (id, directory_id, display_name, display_name_lower, resource, version, created_at, modified_at) VALUES ('g1', ?, ?, ?, '{}', 1, ?, ?)",
      )
      .run(directory.id, "ΠΑΡΑΓΩΓΟΣ", "ΠΑΡΑΓΩΓΟΣ".toLowerCase(), now, now);
    expect(foldCase(decomposed)).not.toBe(decomposed.toLowerCase()); // the case this test is about
    first.sqlite.pragma("user_version = 0"); // as a database from before the backfill
    first.close();

    const second = openDatabase(url);
    const col = (sql: string, ...args: unknown[]) =>
      second.sqlite
        .prepare(sql)
        .pluck()
        .get(...args);
    expect(col("SELECT user_name_lower FROM users WHERE id = 'u1'")).toBe("élodie@example.com");
    expect(col("SELECT value_lower FROM user_emails WHERE user_id = 'u1' AND position = 1")).toBe("élodie@example.com");
    expect(col("SELECT value_lower FROM user_emails WHERE user_id = 'u1' AND position = 0")).toBe("plain@example.com");
    expect(col("SELECT display_name_lower FROM groups WHERE id = 'g1'")).toBe("παραγωγοσ");
    expect(col("SELECT user_name_lower FROM users WHERE id = 'u2'")).toBe("οδος");
    expect(col("SELECT user_name_lower FROM users WHERE id = 'u3'")).toBe("οδοσ");
    expect(second.sqlite.pragma("user_version", { simple: true })).toBe(1);
    // Once: a later open leaves what it finds.
    second.sqlite.prepare("UPDATE groups SET display_name_lower = 'marker' WHERE id = 'g1'").run();
    second.close();
    first = openDatabase(url);
    expect(first.sqlite.prepare("SELECT display_name_lower FROM groups WHERE id = 'g1'").pluck().get()).toBe("marker");
    first.close();
  });
});
