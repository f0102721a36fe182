/**
 * Bulk seeding for the shipped-product bench: a directory of up to millions of users written
 * straight into SQLite with prepared statements, in large transactions, without the WAL or fsyncs
 * (a seed is re-run, not recovered); bench/postgres.ts writes the same rows (seedBatches) into
 * PostgreSQL. The rows are the ones the product writes for the same SCIM
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
import type Database from "better-sqlite3";
import { onboardOrganizationOp } from "../src/admin/onboarding.js";
import { openDatabase } from "../src/directory/database.js";
import { columns, emailRows } from "../src/directory/users.js";
import { changeBy } from "../src/directory/write-context.js";
import { normalizeResource } from "../src/scim/normalize.js";
import { userSchema } from "../src/scim/schema.js";
import { validateDocument } from "../src/scim/validate.js";
import { writeSync, type SqlParam } from "../src/directory/store-op.js";

/** A seeded directory, on whichever database: what the scenarios need to address it. */
export interface SeededIds {
  directoryId: string;
  token: string;
  /** The group holding the first half of the users (u-0 … u-(users/2 - 1)). */
  groupId: string;
  users: number;
  organizations: number;
  seedSeconds: number;
}

/** A seeded SQLite database. */
export interface SeededDirectory extends SeededIds {
  dbPath: string;
}

/** Users a transaction: big enough that commits cost nothing, small enough to report progress. */
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

/** A column of a seeded table: its name and its PostgreSQL type (for the array it is bound as there). */
export type SeedColumnType = "text" | "bigint" | "integer" | "boolean";
/** Rows for one table, in its columns' order: what both dialects' seeders insert. */
export interface SeedRows {
  table: string;
  columns: readonly (readonly [name: string, type: SeedColumnType])[];
  rows: SqlParam[][];
}

const organizationColumns = [
  ["id", "text"],
  ["slug", "text"],
  ["display_name", "text"],
  ["user_model", "text"],
  ["connection", "text"],
  ["created_at", "bigint"],
  ["updated_at", "bigint"],
] as const;
const directoryColumns = [
  ["id", "text"],
  ["organization_id", "text"],
  ["name", "text"],
  ["created_at", "bigint"],
] as const;
const tokenColumns = [
  ["id", "text"],
  ["directory_id", "text"],
  ["token_hash", "text"],
  ["hint", "text"],
  ["created_at", "bigint"],
] as const;
const groupColumns = [
  ["id", "text"],
  ["directory_id", "text"],
  ["display_name", "text"],
  ["display_name_lower", "text"],
  ["resource", "text"],
  ["version", "integer"],
  ["member_count", "integer"],
  ["created_at", "bigint"],
  ["modified_at", "bigint"],
] as const;
const userColumns = [
  ["id", "text"],
  ["directory_id", "text"],
  ["user_name", "text"],
  ["user_name_lower", "text"],
  ["external_id", "text"],
  ["display_name", "text"],
  ["active", "boolean"],
  ["resource", "text"],
  ["version", "integer"],
  ["created_at", "bigint"],
  ["modified_at", "bigint"],
] as const;
const emailColumns = [
  ["user_id", "text"],
  ["directory_id", "text"],
  ["position", "integer"],
  ["value_lower", "text"],
  ["type", "text"],
  ["primary", "boolean"],
] as const;
const memberColumns = [
  ["group_id", "text"],
  ["member_id", "text"],
  ["directory_id", "text"],
  ["member_type", "text"],
  ["display", "text"],
  ["added_at", "bigint"],
] as const;

/** What the seed builds on: the benched organization, onboarded through the product's own op. */
export interface SeedBase {
  directoryId: string;
  groupId: string;
  userModel: string;
  connection: string;
  users: number;
  organizations: number;
  now: number;
}

/** The onboarding of the benched organization (an organization, its directory and token), as the admin API does it. */
export const benchOnboarding = () =>
  onboardOrganizationOp({ slug: "bench" }, changeBy({ type: "operator", id: "bench" }));

/** The seed's base from the onboarded organization (what `benchOnboarding` returned). */
export const seedBase = (
  made: { directory: { id: string }; organization: { userModel: string; connection: string } },
  users: number,
  organizations: number,
): SeedBase => ({
  directoryId: made.directory.id,
  groupId: "bench-group",
  userModel: made.organization.userModel,
  connection: made.organization.connection,
  users,
  organizations,
  now: Date.now(),
});

/**
 * The seed's rows, for either dialect, in batches of at most `batch` users: first `organizations` − 1
 * further organizations (each with a directory and a token, so that indexes and the token table have
 * a realistic size) and the group, then the users with their email rows, the first half of them
 * members of the group.
 */
export function* seedBatches(base: SeedBase, batch: number): Generator<SeedRows[], void> {
  const { directoryId, groupId, now, users } = base;
  const orgs: SeedRows = { table: "organizations", columns: organizationColumns, rows: [] };
  const dirs: SeedRows = { table: "directories", columns: directoryColumns, rows: [] };
  const tokens: SeedRows = { table: "scim_tokens", columns: tokenColumns, rows: [] };
  for (let o = 1; o < base.organizations; o++) {
    orgs.rows.push([`o-${o}`, `bench-o${o}`, `Bench ${o}`, base.userModel, base.connection, now, now]);
    dirs.rows.push([`d-${o}`, `o-${o}`, "IdP", now]);
    const secret = randomBytes(16).toString("hex");
    tokens.rows.push([`t-${o}`, `d-${o}`, createHash("sha256").update(secret).digest("hex"), secret.slice(-4), now]);
  }
  const members = Math.floor(users / 2);
  const group: SeedRows = {
    table: "groups",
    columns: groupColumns,
    rows: [
      [
        groupId,
        directoryId,
        "Everyone",
        "everyone",
        JSON.stringify({ schemas: ["urn:ietf:params:scim:schemas:core:2.0:Group"], displayName: "Everyone" }),
        1,
        members,
        now,
        now,
      ],
    ],
  };
  yield [orgs, dirs, tokens, group];
  for (let from = 0; from < users; from += batch) {
    const userRows: SeedRows = { table: "users", columns: userColumns, rows: [] };
    const emailRowsOut: SeedRows = { table: "user_emails", columns: emailColumns, rows: [] };
    const memberRows: SeedRows = { table: "group_members", columns: memberColumns, rows: [] };
    for (let i = from; i < Math.min(users, from + batch); i++) {
      const id = `u-${i}`;
      const document = canonicalUser(i);
      const c = columns(document);
      // Creation times one millisecond apart: the default order (created_at, id) is the seeding order.
      userRows.rows.push([
        id,
        directoryId,
        c.userName,
        c.userNameLower,
        c.externalId,
        c.displayName,
        c.active,
        JSON.stringify(document),
        1,
        now + i,
        now + i,
      ]);
      for (const e of emailRows(id, directoryId, document))
        emailRowsOut.rows.push([e.userId, e.directoryId, e.position, e.valueLower, e.type ?? null, e.primary ?? false]);
      if (i < members) memberRows.rows.push([groupId, id, directoryId, "User", c.displayName, now]);
    }
    yield [userRows, emailRowsOut, memberRows];
  }
}

/**
 * The statements that close a seed, on either dialect: the counters the store keeps with every
 * write (the generation moves as a write would have moved it), and no sync jobs. The seeded
 * directory counts as synced already (reads are measured with an empty outbox): no organization job
 * fanning out to every seeded user; the first write's job creates the Auth0 organization.
 */
export const seedEpilogue = (base: SeedBase): [string, SqlParam[]][] => [
  [
    "UPDATE directories SET user_count = ?, group_count = 1, generation = generation + 1 WHERE id = ?",
    [base.users, base.directoryId],
  ],
  ["DELETE FROM jobs", []],
];

/** `INSERT INTO table (columns…) VALUES (?, …)`, the column names quoted (user_emails has "primary"). */
export const insertText = (r: SeedRows): string =>
  `INSERT INTO ${r.table} (${r.columns.map(([name]) => `"${name}"`).join(", ")}) VALUES (${r.columns.map(() => "?").join(", ")})`;

/**
 * Seeds `users` users (with their email rows) in one directory, a group holding half of them, and
 * `organizations` − 1 further organizations (seedBatches) into a SQLite database. The database is
 * left in WAL mode, checkpointed, as `serve` expects it.
 */
export function seedDirectory(
  users: number,
  organizations = 10_000,
  dbPath = join(mkdtempSync(join(tmpdir(), "bench-shipped-")), "bridge.db"),
  progress: (line: string) => void = () => undefined,
): SeededDirectory {
  const started = performance.now();
  const { db, sqlite, close } = openDatabase(`sqlite:${dbPath}`);
  const made = writeSync(db, benchOnboarding());
  // No rollback journal and no fsync while seeding; the page cache holds the indexes being built.
  sqlite.pragma("journal_mode = OFF");
  sqlite.pragma("synchronous = OFF");
  sqlite.pragma("cache_size = -1048576");
  const base = seedBase(made, users, organizations);
  const statements = new Map<string, Database.Statement>();
  const insert = sqlite.transaction((tables: SeedRows[]) => {
    for (const t of tables) {
      let statement = statements.get(t.table);
      if (!statement) statements.set(t.table, (statement = sqlite.prepare(insertText(t))));
      for (const row of t.rows) statement.run(...row.map((v) => (v === true ? 1 : v === false ? 0 : v)));
    }
  });
  let seeded = 0;
  for (const tables of seedBatches(base, batch)) {
    insert(tables);
    const n = tables.find((t) => t.table === "users")?.rows.length ?? 0;
    if (n > 0) progress(`  seeded ${(seeded += n).toLocaleString("en")} users`);
  }
  sqlite.transaction(() => {
    for (const [text, params] of seedEpilogue(base)) sqlite.prepare(text).run(...params);
  })();
  sqlite.pragma("journal_mode = WAL");
  close();
  // Written without fsync: flush it now, so the kernel's writeback does not run under the first scenario.
  const fd = openSync(dbPath, "r+");
  fsyncSync(fd);
  closeSync(fd);
  return {
    dbPath,
    directoryId: base.directoryId,
    token: made.token.token,
    groupId: base.groupId,
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
