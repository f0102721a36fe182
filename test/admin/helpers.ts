/**
 * An admin API over a new database of this run's dialect (test/support/test-dialect.ts) with two
 * organizations (A and B), each with a directory, users, a SCIM token, a held user, two mapping
 * versions, a dead job and a paused guard; and admin tokens of every kind: operator, org-admin of A,
 * org-admin of B, expired, revoked, bootstrap. Seeded and read through the store, so the same suites
 * run on SQLite and PostgreSQL.
 */
import express, { type Express } from "express";
import { pino } from "pino";
import supertest from "supertest";
import type { AdminDeps } from "../../src/admin/router.js";
import { adminRouter } from "../../src/http/admin-router.js";
import { issueAdminToken, revokeAdminToken } from "../../src/directory/admin-tokens.js";
import { placeHold } from "../../src/directory/holds.js";
import { saveMappingVersion } from "../../src/directory/mappings.js";
import { onboardOrganizationOp } from "../../src/admin/onboarding.js";
import type { SqlStore } from "../../src/directory/sql.js";
import { changeBy } from "../../src/directory/write-context.js";
import { createUser, deleteUser, getUser } from "../../src/directory/users.js";
import { parseQueryString } from "../../src/http/query.js";
import { requestId } from "../../src/http/request-id.js";
import { defaultMapping, type MappingDocument } from "../../src/mapping/index.js";
import { enqueueJob, Lane } from "../../src/directory/outbox.js";
import { exec, many, value, type SqlParam } from "../../src/directory/store-op.js";
import { openDatabase } from "../../src/directory/database.js";
import { postgresStore, sqliteStore } from "../../src/directory/sql.js";
import { freshDatabase } from "../support/postgres.js";
import type { AuditRow } from "../helpers/store.js";
import { createTestDatabase, testDialect } from "../support/test-dialect.js";

export const bootstrapToken = "bootstrap-operator-token-0123456789abcdef";
export const dayMs = 86_400_000;
const operatorActor = { type: "operator" as const, id: "fixture" };

export interface FixtureOrg {
  id: string;
  slug: string;
  directoryId: string;
  scimTokenId: string;
  scimToken: string;
  userIds: string[];
  userNames: string[];
  deadJobId: number;
}

export interface AdminFixture {
  store: SqlStore;
  app: Express;
  http: ReturnType<typeof supertest>;
  a: FixtureOrg;
  b: FixtureOrg;
  tokens: {
    operator: string;
    orgAdminA: string;
    orgAdminB: string;
    expired: string;
    revoked: string;
    bootstrap: string;
  };
  /** An operator-issued token nobody uses, for revoke routes. */
  spareTokenId: string;
  signOuts: string[];
  clock: { now: number };
  close(): Promise<void>;
}

export const mappingFor = (description: string): MappingDocument => ({
  ...defaultMapping({ connection: "Username-Password-Authentication", userModel: "isolated" }),
  description,
});

export type { AuditRow } from "../helpers/store.js";

const auditColumns = `id, at, actor_type AS "actorType", actor_id AS "actorId", organization_id AS "organizationId",
  directory_id AS "directoryId", action, target_type AS "targetType", target_id AS "targetId", before, after,
  request_id AS "requestId"`;

/** Audit entries matching `where` (columns named as in SQL, `?` placeholders), oldest first. */
export const auditWhere = (store: SqlStore, where: string, params: readonly SqlParam[] = []): Promise<AuditRow[]> =>
  store.read(many<AuditRow>(`SELECT ${auditColumns} FROM audit_entries WHERE ${where} ORDER BY id`, params));

/** Rows in a table (a count), through one read. */
export const countOf = async (store: SqlStore, table: string, where = "1 = 1", params: readonly SqlParam[] = []) =>
  Number((await store.read(value<number>(`SELECT count(*) FROM ${table} WHERE ${where}`, params))) ?? 0);

/** A job as the tests compare it. */
export interface JobRow {
  id: number;
  kind: string;
  key: string;
  state: string;
  lane: number;
  attempts: number;
  organizationId: string;
}

/** Jobs matching `where`, by id. */
export const jobsWhere = (store: SqlStore, where: string, params: readonly SqlParam[] = []): Promise<JobRow[]> =>
  store.read(
    many<JobRow>(
      `SELECT id, kind, key, state, lane, attempts, organization_id AS "organizationId" FROM jobs WHERE ${where} ORDER BY id`,
      params,
    ),
  );

/** One statement in a write of its own (a test's setup: a job that has run, a row the sync engine would write). */
export const execSql = (store: SqlStore, text: string, params: readonly SqlParam[] = []): Promise<number> =>
  store.write(exec(text, params));

async function seedOrganization(store: SqlStore, slug: string, now: number): Promise<FixtureOrg> {
  const onboarded = await store.write(onboardOrganizationOp({ slug }, changeBy(operatorActor, { at: now })));
  const organizationId = onboarded.organization.id;
  const directoryId = onboarded.directory.id;
  const ctx = {
    organizationId,
    directoryId,
    actor: { type: "directory" as const, id: directoryId },
    requestId: null,
    at: now,
  };
  const userNames = [0, 1, 2].map((i) => `${slug}-user-${i}@${slug}.example`);
  const userIds = await store.write(function* () {
    const ids: string[] = [];
    for (const [i, userName] of userNames.entries())
      ids.push(
        (yield* createUser(ctx, {
          userName,
          displayName: `${slug} person ${i}`,
          emails: [{ value: userName, primary: true }],
          active: true,
        })).id,
      );
    return ids;
  });
  await store.write(
    placeHold({ organizationId, userId: userIds[1]!, reason: "seeded hold" }, changeBy(operatorActor, { at: now })),
  );
  await store.write(saveMappingVersion(organizationId, mappingFor(`${slug} v1`), { actor: operatorActor, now }));
  await store.write(saveMappingVersion(organizationId, mappingFor(`${slug} v2`), { actor: operatorActor, now }));
  const deadJobId = await store.write(function* () {
    yield* enqueueJob({ organizationId, directoryId, kind: "user", subjectId: userIds[2]!, lane: Lane.provision, now });
    yield* exec("UPDATE jobs SET state = 'dead', attempts = 12, last_error = 'gave up' WHERE key = ?", [
      `user:${userIds[2]!}`,
    ]);
    yield* exec(
      "INSERT INTO guard_pauses (id, organization_id, tripped_at, reason, state) VALUES (?, ?, ?, 'seeded', 'paused')",
      [`gp_${slug}`, organizationId, now],
    );
    return (yield* value<number>("SELECT id FROM jobs WHERE key = ?", [`user:${userIds[2]!}`]))!;
  });
  return {
    id: organizationId,
    slug,
    directoryId,
    scimTokenId: onboarded.token.record.id,
    scimToken: onboarded.token.token,
    userIds,
    userNames,
    deadJobId,
  };
}

const seededAt = Date.UTC(2030, 0, 15, 12);

/** What seeding made: the organizations and the admin tokens. */
interface Seeded {
  a: FixtureOrg;
  b: FixtureOrg;
  tokens: Omit<AdminFixture["tokens"], "bootstrap">;
  spareTokenId: string;
}

async function seed(store: SqlStore, now: number): Promise<Seeded> {
  const a = await seedOrganization(store, "alpha", now);
  const b = await seedOrganization(store, "bravo", now);
  const issue = (
    scope: "operator" | "org_admin",
    organizationId: string | null,
    name: string,
    at = now,
    days?: number,
  ) =>
    store.write(issueAdminToken({ scope, organizationId, name, expiresInDays: days }, changeBy(operatorActor, { at })));
  const operator = await issue("operator", null, "ops");
  const orgAdminA = await issue("org_admin", a.id, "alpha admin");
  const orgAdminB = await issue("org_admin", b.id, "bravo admin");
  const expired = await issue("operator", null, "old ops", now - 3 * dayMs, 1);
  const revoked = await issue("operator", null, "leaked ops");
  const spare = await issue("operator", null, "spare");
  await store.write(revokeAdminToken(revoked.record.id, changeBy(operatorActor, { at: now - 1000 })));
  return {
    a,
    b,
    tokens: {
      operator: operator.token,
      orgAdminA: orgAdminA.token,
      orgAdminB: orgAdminB.token,
      expired: expired.token,
      revoked: revoked.token,
    },
    spareTokenId: spare.record.id,
  };
}

let seededTemplate: Promise<{ name: string; seeded: Seeded }> | undefined;

/**
 * The fixture's store, seeded. SQLite: a new in-memory database, seeded (the authorization matrix
 * builds a hundred fixtures; a file and its fsyncs would only slow them down). PostgreSQL: a copy
 * (CREATE DATABASE … TEMPLATE) of one database seeded once per test process, since seeding through
 * the store costs a round trip per statement: every fixture of a process then has the same ids and
 * tokens, each in a database of its own.
 */
async function openSeeded(): Promise<{ store: SqlStore; seeded: Seeded; close(): Promise<void> }> {
  if (testDialect === "sqlite") {
    const opened = openDatabase("sqlite::memory:");
    const store = sqliteStore(opened.sqlite);
    return { store, seeded: await seed(store, seededAt), close: async () => opened.close() };
  }
  seededTemplate ??= (async () => {
    const database = await createTestDatabase(); // migrated already
    const template = postgresStore(database.url, { poolSize: 4 });
    try {
      return { name: new URL(database.url).pathname.slice(1), seeded: await seed(template, seededAt) };
    } finally {
      await template.close(); // a template takes no connections while it is copied
    }
  })();
  const { name, seeded } = await seededTemplate;
  const database = await freshDatabase({ template: name });
  const store = postgresStore(database.url, { poolSize: 4 });
  return {
    store,
    seeded,
    async close() {
      await store.close();
      await database.drop();
    },
  };
}

export async function adminFixture(extra: Partial<AdminDeps> = {}): Promise<AdminFixture> {
  const opened = await openSeeded();
  const { store } = opened;
  const { a, b, tokens, spareTokenId } = opened.seeded;
  const clock = { now: seededAt };
  const signOuts: string[] = [];
  const router = adminRouter({
    store,
    publicUrl: "https://bridge.example",
    bootstrapOperatorToken: bootstrapToken,
    log: pino({ level: "silent" }),
    signOut: async (userId) => {
      signOuts.push(userId);
      return { revoked: true };
    },
    now: () => clock.now,
    rateLimit: false,
    ...extra,
  });
  const app = express();
  app.set("query parser", parseQueryString);
  app.use(requestId());
  app.use("/admin/v1", router);
  return {
    store,
    app,
    http: supertest(app),
    a,
    b,
    tokens: { ...tokens, bootstrap: bootstrapToken },
    spareTokenId,
    signOuts,
    clock,
    close: () => opened.close(),
  };
}

/** The IdP deletes every user of the fixture's organization `a` (SCIM DELETE, as its directory). */
export const deleteFixtureUsers = (f: AdminFixture): Promise<void> =>
  f.store.write(function* () {
    for (const id of f.a.userIds)
      yield* deleteUser(
        {
          organizationId: f.a.id,
          directoryId: f.a.directoryId,
          actor: { type: "directory", id: f.a.directoryId },
          requestId: null,
          at: Date.now(),
        },
        (yield* getUser(f.a.directoryId, id))!,
      );
  });
