/**
 * An admin API over an in-memory database with two organizations (A and B), each with a directory,
 * users, a SCIM token, a held user, two mapping versions, a dead job and a paused guard; and admin
 * tokens of every kind: operator, org-admin of A, org-admin of B, expired, revoked, bootstrap.
 */
import { eq } from "drizzle-orm";
import express, { type Express } from "express";
import { pino } from "pino";
import supertest from "supertest";
import { guardPauses, jobs } from "../../db/schema.js";
import type { AdminDeps } from "../../src/admin/router.js";
import { adminRouter } from "../../src/http/admin-router.js";
import { issueAdminToken, revokeAdminToken } from "../../src/directory/admin-tokens.js";
import { openDatabase, type Db } from "../../src/directory/database.js";
import { placeHold } from "../../src/directory/holds.js";
import { saveMappingVersion } from "../../src/directory/mappings.js";
import { onboardOrganizationOp } from "../../src/admin/onboarding.js";
import { sqliteStore, type SqlStore } from "../../src/directory/sql.js";
import { changeBy } from "../../src/directory/write-context.js";
import { createUser } from "../../src/directory/users.js";
import { parseQueryString } from "../../src/http/query.js";
import { requestId } from "../../src/http/request-id.js";
import { defaultMapping, type MappingDocument } from "../../src/mapping/index.js";
import { enqueueJob, Lane } from "../../src/directory/outbox.js";
import { runSync, writeSync } from "../../src/directory/store-op.js";

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
  db: Db;
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
  close(): void;
}

export const mappingFor = (description: string): MappingDocument => ({
  ...defaultMapping({ connection: "Username-Password-Authentication", userModel: "isolated" }),
  description,
});

function seedOrganization(db: Db, slug: string, now: number): FixtureOrg {
  const onboarded = writeSync(db, onboardOrganizationOp({ slug }, changeBy(operatorActor, { at: now })));
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
  const userIds = db.transaction((tx) =>
    userNames.map(
      (userName, i) =>
        runSync(
          tx,
          createUser(ctx, {
            userName,
            displayName: `${slug} person ${i}`,
            emails: [{ value: userName, primary: true }],
            active: true,
          }),
        ).id,
    ),
  );
  writeSync(
    db,
    placeHold({ organizationId, userId: userIds[1]!, reason: "seeded hold" }, changeBy(operatorActor, { at: now })),
  );
  writeSync(db, saveMappingVersion(organizationId, mappingFor(`${slug} v1`), { actor: operatorActor, now }));
  writeSync(db, saveMappingVersion(organizationId, mappingFor(`${slug} v2`), { actor: operatorActor, now }));
  runSync(
    db,
    enqueueJob({ organizationId, directoryId, kind: "user", subjectId: userIds[2]!, lane: Lane.provision, now }),
  );
  const dead = db
    .update(jobs)
    .set({ state: "dead", attempts: 12, lastError: "gave up" })
    .where(eq(jobs.key, `user:${userIds[2]!}`))
    .returning()
    .get();
  db.insert(guardPauses)
    .values({ id: `gp_${slug}`, organizationId, trippedAt: now, reason: "seeded", state: "paused" })
    .run();
  return {
    id: organizationId,
    slug,
    directoryId,
    scimTokenId: onboarded.token.record.id,
    scimToken: onboarded.token.token,
    userIds,
    userNames,
    deadJobId: dead.id,
  };
}

export function adminFixture(extra: Partial<AdminDeps> = {}): AdminFixture {
  const opened = openDatabase("sqlite::memory:");
  const { db } = opened;
  const clock = { now: Date.UTC(2030, 0, 15, 12) };
  const a = seedOrganization(db, "alpha", clock.now);
  const b = seedOrganization(db, "bravo", clock.now);
  const issue = (
    scope: "operator" | "org_admin",
    organizationId: string | null,
    name: string,
    at = clock.now,
    days?: number,
  ) =>
    writeSync(
      db,
      issueAdminToken({ scope, organizationId, name, expiresInDays: days }, changeBy(operatorActor, { at })),
    );
  const operator = issue("operator", null, "ops");
  const orgAdminA = issue("org_admin", a.id, "alpha admin");
  const orgAdminB = issue("org_admin", b.id, "bravo admin");
  const expired = issue("operator", null, "old ops", clock.now - 3 * dayMs, 1);
  const revoked = issue("operator", null, "leaked ops");
  const spare = issue("operator", null, "spare");
  writeSync(db, revokeAdminToken(revoked.record.id, changeBy(operatorActor, { at: clock.now - 1000 })));
  const signOuts: string[] = [];
  const router = adminRouter({
    store: sqliteStore(opened.sqlite),
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
    db,
    store: sqliteStore(opened.sqlite),
    app,
    http: supertest(app),
    a,
    b,
    tokens: {
      operator: operator.token,
      orgAdminA: orgAdminA.token,
      orgAdminB: orgAdminB.token,
      expired: expired.token,
      revoked: revoked.token,
      bootstrap: bootstrapToken,
    },
    spareTokenId: spare.record.id,
    signOuts,
    clock,
    close: () => opened.close(),
  };
}
