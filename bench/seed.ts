/**
 * Bulk seeding for the shipped-product bench: a directory of up to millions of users written
 * straight into SQLite with prepared statements, in large transactions, without the WAL or fsyncs
 * (a seed is re-run, not recovered). The rows are the ones the product writes for the same SCIM
 * requests: each user's document goes through the SCIM route's normalizeResource and validateDocument and the store's
 * own column and email extraction (columns(), emailRows()), and the directory's maintained counters
 * (user_count, group_count, generation) and the group's member_count agree with the rows.
 *
 *   npx tsx bench/seed.ts 1000000 [path]    seeds a database and prints its path, token and timing
 */
import { createHash, randomBytes } from "node:crypto";
import { closeSync, fsyncSync, mkdtempSync, openSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { onboardOrganizationOp } from "../src/admin/onboarding.js";
import { openDatabase } from "../src/directory/database.js";
import { columns, emailRows } from "../src/directory/users.js";
import { changeBy } from "../src/directory/write-context.js";
import { normalizeResource } from "../src/scim/normalize.js";
import { userSchema } from "../src/scim/schema.js";
import { validateDocument } from "../src/scim/validate.js";
import { writeSync } from "../src/directory/store-op.js";

export interface SeededDirectory {
  dbPath: string;
  directoryId: string;
  token: string;
  /** The group holding the first half of the users (u-0 … u-(users/2 - 1)). */
  groupId: string;
  users: number;
  organizations: number;
  seedSeconds: number;
}

/** Rows a transaction: big enough that commits cost nothing, small enough to report progress. */
const batch = 100_000;

/** The SCIM user the bench's IdP would have pushed as user `i` (ids are u-<i>, userNames user<i>@bench.example.com). */
export function benchUser(i: number): Record<string, unknown> {
  const userName = `user${i}@bench.example.com`;
  return {
    schemas: ["urn:ietf:params:scim:schemas:core:2.0:User"],
    externalId: `ext-${i}`,
    userName,
    name: { givenName: `Given${i}`, familyName: `Family${i}` },
    displayName: `User ${i}`,
    active: true,
    emails: [{ value: userName, type: "work", primary: true }],
  };
}

/**
 * The document the store keeps for benchUser(i) (what POST /Users would store). Built directly: the
 * route's validation costs about 0.3 ms a user, five minutes for a million; instead a sample of users
 * goes through normalizeResource and validateDocument and must come out identical.
 */
function canonicalUser(i: number): Record<string, unknown> {
  const { schemas: _schemas, ...document } = benchUser(i);
  if (i % 10_000 === 0) {
    const stored = validateDocument(userSchema, normalizeResource(userSchema, benchUser(i)).document);
    if (JSON.stringify(stored) !== JSON.stringify(document))
      throw new Error(
        `bench seed: user ${i} would be stored as ${JSON.stringify(stored)}, not ${JSON.stringify(document)}`,
      );
  }
  return document;
}

/**
 * Seeds `users` users (with their email rows) in one directory, a group holding half of them, and
 * `organizations` − 1 further organizations, each with a directory and a token, so that indexes and
 * the token table have a realistic size. The database is left in WAL mode, checkpointed, as `serve`
 * expects it.
 */
export function seedDirectory(
  users: number,
  organizations = 10_000,
  dbPath = join(mkdtempSync(join(tmpdir(), "bench-shipped-")), "bridge.db"),
  progress: (line: string) => void = () => undefined,
): SeededDirectory {
  const started = performance.now();
  const { db, sqlite, close } = openDatabase(`sqlite:${dbPath}`);
  const made = writeSync(db, onboardOrganizationOp({ slug: "bench" }, changeBy({ type: "operator", id: "bench" })));
  const directoryId = made.directory.id;
  const groupId = "bench-group";
  // No rollback journal and no fsync while seeding; the page cache holds the indexes being built.
  sqlite.pragma("journal_mode = OFF");
  sqlite.pragma("synchronous = OFF");
  sqlite.pragma("cache_size = -1048576");
  const now = Date.now();
  const insertOrg = sqlite.prepare(
    "INSERT INTO organizations (id, slug, display_name, user_model, connection, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
  );
  const insertDir = sqlite.prepare(
    "INSERT INTO directories (id, organization_id, name, created_at) VALUES (?, ?, 'IdP', ?)",
  );
  const insertToken = sqlite.prepare(
    "INSERT INTO scim_tokens (id, directory_id, token_hash, hint, created_at) VALUES (?, ?, ?, ?, ?)",
  );
  const insertUser = sqlite.prepare(
    "INSERT INTO users (id, directory_id, user_name, user_name_lower, external_id, display_name, active, resource, version, created_at, modified_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 1, ?, ?)",
  );
  const insertEmail = sqlite.prepare(
    'INSERT INTO user_emails (user_id, directory_id, position, value_lower, type, "primary") VALUES (?, ?, ?, ?, ?, ?)',
  );
  const insertMember = sqlite.prepare(
    "INSERT INTO group_members (group_id, member_id, directory_id, member_type, display, added_at) VALUES (?, ?, ?, 'User', ?, ?)",
  );
  sqlite.transaction(() => {
    for (let o = 1; o < organizations; o++) {
      insertOrg.run(
        `o-${o}`,
        `bench-o${o}`,
        `Bench ${o}`,
        made.organization.userModel,
        made.organization.connection,
        now,
        now,
      );
      insertDir.run(`d-${o}`, `o-${o}`, now);
      const secret = randomBytes(16).toString("hex");
      insertToken.run(`t-${o}`, `d-${o}`, createHash("sha256").update(secret).digest("hex"), secret.slice(-4), now);
    }
  })();
  const members = Math.floor(users / 2);
  const group = sqlite.transaction(() => {
    sqlite
      .prepare(
        "INSERT INTO groups (id, directory_id, display_name, display_name_lower, resource, version, member_count, created_at, modified_at) VALUES (?, ?, 'Everyone', 'everyone', ?, 1, ?, ?, ?)",
      )
      .run(
        groupId,
        directoryId,
        JSON.stringify({ schemas: ["urn:ietf:params:scim:schemas:core:2.0:Group"], displayName: "Everyone" }),
        members,
        now,
        now,
      );
  });
  const userBatch = sqlite.transaction((from: number, to: number) => {
    for (let i = from; i < to; i++) {
      const id = `u-${i}`;
      const document = canonicalUser(i);
      const c = columns(document);
      // Creation times one millisecond apart: the default order (created_at, id) is the seeding order.
      insertUser.run(
        id,
        directoryId,
        c.userName,
        c.userNameLower,
        c.externalId,
        c.displayName,
        c.active ? 1 : 0,
        JSON.stringify(document),
        now + i,
        now + i,
      );
      for (const e of emailRows(id, directoryId, document))
        insertEmail.run(e.userId, e.directoryId, e.position, e.valueLower, e.type, e.primary ? 1 : 0);
      if (i < members) insertMember.run(groupId, id, directoryId, c.displayName, now);
    }
  });
  group();
  for (let from = 0; from < users; from += batch) {
    userBatch(from, Math.min(users, from + batch));
    progress(`  seeded ${Math.min(users, from + batch).toLocaleString("en")} users`);
  }
  sqlite.transaction(() => {
    // The counters the store keeps with every write; the generation moves as a write would have moved it.
    sqlite
      .prepare("UPDATE directories SET user_count = ?, group_count = 1, generation = generation + 1 WHERE id = ?")
      .run(users, directoryId);
    // The seeded directory counts as synced already (reads are measured with an empty outbox): no
    // organization job fanning out to every seeded user; the first write's job creates the Auth0 organization.
    sqlite.prepare("DELETE FROM jobs").run();
  })();
  sqlite.pragma("journal_mode = WAL");
  close();
  // Written without fsync: flush it now, so the kernel's writeback does not run under the first scenario.
  const fd = openSync(dbPath, "r+");
  fsyncSync(fd);
  closeSync(fd);
  return {
    dbPath,
    directoryId,
    token: made.token.token,
    groupId,
    users,
    organizations,
    seedSeconds: (performance.now() - started) / 1000,
  };
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  const users = Number(process.argv[2] ?? 100_000);
  const s = seedDirectory(users, 10_000, process.argv[3], (line) => console.error(line));
  console.log(JSON.stringify(s));
}
