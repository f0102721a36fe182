import { and, eq, sql } from "drizzle-orm";
import { drizzle, type NodePgDatabase } from "drizzle-orm/node-postgres";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import * as schema from "../../db/schema.pg.js";
import { foldCase } from "../../src/directory/fold.js";
import { migratePostgres } from "../../src/directory/postgres.js";
import { freshDatabase, postgresUnavailable, type TestDatabase } from "../support/postgres.js";

/** The PostgreSQL error a failed statement carried (drizzle wraps it in `cause`). */
function pgError(err: unknown): { code?: string; constraint?: string } {
  const e = err as { cause?: { code?: string; constraint?: string }; code?: string; constraint?: string };
  return e.cause ?? e;
}

async function rejection(p: Promise<unknown>): Promise<{ code?: string; constraint?: string }> {
  try {
    await p;
  } catch (err) {
    return pgError(err);
  }
  throw new Error("the statement was accepted");
}

describe.skipIf(postgresUnavailable !== "")("PostgreSQL schema constraints", () => {
  let database: TestDatabase;
  let pool: pg.Pool;
  let db: NodePgDatabase<typeof schema>;
  const now = Date.now();

  beforeAll(async () => {
    database = await freshDatabase();
    await migratePostgres(database.url);
    pool = new pg.Pool({ connectionString: database.url, max: 2 });
    db = drizzle(pool, { schema });
    await db.insert(schema.organizations).values({
      id: "org_1",
      slug: "acme",
      displayName: "Acme",
      userModel: "isolated",
      connection: "acme-users",
      createdAt: now,
      updatedAt: now,
    });
    await db.insert(schema.directories).values([
      { id: "dir_a", organizationId: "org_1", name: "Okta", createdAt: now },
      { id: "dir_b", organizationId: "org_1", name: "Entra", createdAt: now },
    ]);
  });
  afterAll(async () => {
    await pool?.end();
    await database?.drop();
  });

  const user = (id: string, directoryId: string, userName: string) => ({
    id,
    directoryId,
    userName,
    userNameLower: foldCase(userName),
    active: true,
    resource: JSON.stringify({ userName }),
    version: 1,
    createdAt: now,
    modifiedAt: now,
  });

  describe("userName is unique per directory, case-insensitively, among live users", () => {
    it("rejects alice@X beside Alice@x in one directory, and allows it in another", async () => {
      await db.insert(schema.users).values(user("u1", "dir_a", "Alice@x"));

      const clash = await rejection(db.insert(schema.users).values(user("u2", "dir_a", "alice@X")));
      expect(clash).toMatchObject({ code: "23505", constraint: "users_dir_username_uq" });

      await db.insert(schema.users).values(user("u3", "dir_b", "alice@X"));
      const rows = await db
        .select({ id: schema.users.id, directoryId: schema.users.directoryId })
        .from(schema.users)
        .where(eq(schema.users.userNameLower, "alice@x"))
        .orderBy(schema.users.id);
      expect(rows).toEqual([
        { id: "u1", directoryId: "dir_a" },
        { id: "u3", directoryId: "dir_b" },
      ]);
    });

    it("frees the userName once its user is deleted (tombstoned)", async () => {
      await db.insert(schema.users).values(user("u4", "dir_a", "Bob@x"));
      await db.update(schema.users).set({ deletedAt: now }).where(eq(schema.users.id, "u4"));
      await db.insert(schema.users).values(user("u5", "dir_a", "BOB@X"));
      const live = await db
        .select({ id: schema.users.id })
        .from(schema.users)
        .where(and(eq(schema.users.userNameLower, "bob@x"), sql`${schema.users.deletedAt} IS NULL`));
      expect(live).toEqual([{ id: "u5" }]);
    });
  });

  describe("jobs: one pending job per key", () => {
    const job = (key: string, state: string) => ({
      organizationId: "org_1",
      directoryId: "dir_a",
      kind: "user",
      key,
      subjectId: key.slice("user:".length),
      lane: 1,
      state,
      runAfter: now,
      firstEnqueuedAt: now,
      createdAt: now,
      updatedAt: now,
    });

    it("refuses a second pending job of a key, while a running job of that key coexists with a pending one", async () => {
      const [first] = await db.insert(schema.jobs).values(job("user:u1", "pending")).returning();

      const second = await rejection(db.insert(schema.jobs).values(job("user:u1", "pending")));
      expect(second).toMatchObject({ code: "23505", constraint: "jobs_pending_key_uq" });

      await db.update(schema.jobs).set({ state: "running" }).where(eq(schema.jobs.id, first!.id));
      await db.insert(schema.jobs).values(job("user:u1", "pending"));
      // Another key is independent.
      await db.insert(schema.jobs).values(job("user:u2", "pending"));

      const states = await db
        .select({ key: schema.jobs.key, state: schema.jobs.state })
        .from(schema.jobs)
        .orderBy(schema.jobs.id);
      expect(states).toEqual([
        { key: "user:u1", state: "running" },
        { key: "user:u1", state: "pending" },
        { key: "user:u2", state: "pending" },
      ]);
    });

    it("merges an enqueue into the pending job of its key (upsert on the partial index), not into the running one", async () => {
      const merged = await db
        .insert(schema.jobs)
        .values({ ...job("user:u1", "pending"), lane: 0 })
        .onConflictDoUpdate({
          target: schema.jobs.key,
          targetWhere: sql`state = 'pending'`,
          set: { lane: sql`LEAST(${schema.jobs.lane}, excluded.lane)` },
        })
        .returning({ id: schema.jobs.id, state: schema.jobs.state, lane: schema.jobs.lane });
      expect(merged).toHaveLength(1);
      expect(merged[0]).toMatchObject({ state: "pending", lane: 0 });

      const rows = await db
        .select({ state: schema.jobs.state, lane: schema.jobs.lane })
        .from(schema.jobs)
        .where(eq(schema.jobs.key, "user:u1"))
        .orderBy(schema.jobs.id);
      expect(rows).toEqual([
        { state: "running", lane: 1 },
        { state: "pending", lane: 0 },
      ]);
    });
  });

  it("returns epoch-millisecond timestamps and identity ids as numbers, as the SQLite driver does", async () => {
    const later = 4_102_444_800_000; // 2100-01-01: well beyond a 32-bit integer
    const [entry] = await db
      .insert(schema.auditEntries)
      .values({ at: later, actorType: "system", actorId: "test", action: "noop", targetType: "none" })
      .returning({ id: schema.auditEntries.id, at: schema.auditEntries.at });
    expect(entry).toEqual({ id: 1, at: later });
  });
});
