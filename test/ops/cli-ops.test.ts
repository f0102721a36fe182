/**
 * Operator commands through the compiled CLI: `mapping show <org>` (the active mapping, or the
 * default one labelled as such) and `jobs retry <job-id | --dead [--org X]>` (the admin API's retry).
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { and, eq } from "drizzle-orm";
import { afterAll, beforeEach, describe, expect, it } from "vitest";
import { auditEntries, jobs, organizations } from "../../db/schema.js";
import { openDatabase } from "../../src/directory/database.js";
import { recordConnection } from "../../src/directory/settings.js";
import { runCli } from "../doctor/helpers.js";
import { runSync } from "../../src/directory/store-op.js";

const root = mkdtempSync(join(tmpdir(), "scim-bridge-cli-ops-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));
let env: Record<string, string>;
let n = 0;

beforeEach(() => {
  env = { DATABASE_URL: `sqlite:${join(root, `bridge-${++n}.db`)}` };
});

function withDb<T>(fn: (db: ReturnType<typeof openDatabase>["db"]) => T): T {
  const opened = openDatabase(env.DATABASE_URL!);
  try {
    return fn(opened.db);
  } finally {
    opened.close();
  }
}

async function org(slug: string, connection = "Username-Password-Authentication"): Promise<string> {
  const r = await runCli(["org", "create", slug, "--connection", connection, "--json"], env);
  expect(r.code, r.stderr).toBe(0);
  return (JSON.parse(r.stdout) as { organization: { id: string } }).organization.id;
}

/** The organization's job, given up after its attempts (as the worker leaves a fatal failure). */
function killJob(organizationId: string): number {
  return withDb((db) => {
    const job = db.select().from(jobs).where(eq(jobs.organizationId, organizationId)).get()!;
    db.update(jobs)
      .set({ state: "dead", attempts: 8, lastError: "Auth0 403 insufficient_scope: Insufficient scope" })
      .where(eq(jobs.id, job.id))
      .run();
    return job.id;
  });
}

describe("scim-bridge mapping show", { timeout: 120_000 }, () => {
  it("prints the default mapping, labelled as such, for an organization without one; it never deletes users", async () => {
    await org("acme");
    const text = await runCli(["mapping", "show", "acme"], env);
    expect(text.code).toBe(0);
    expect(text.stdout).toMatch(/^# acme: no mapping applied\. This is the DEFAULT mapping/);
    expect(text.stdout).toMatch(/connection "Username-Password-Authentication" \(database\)/);
    expect(text.stdout).toMatch(/deleteUser: false/);
    const json = JSON.parse((await runCli(["mapping", "show", "acme", "--json"], env)).stdout) as {
      default: boolean;
      version: null;
      mapping: { connection: { type: string }; policies: { deletion: { deleteUser: boolean } } };
    };
    expect(json).toMatchObject({
      default: true,
      version: null,
      mapping: { connection: { type: "database" }, policies: { deletion: { deleteUser: false } } },
    });
  });

  it("derives the default from the connection's type once known, and says when it is not known yet", async () => {
    await org("okta-co", "okta-co-sso");
    const unknown = await runCli(["mapping", "show", "okta-co"], env);
    expect(unknown.stdout).toMatch(/its type was not read from Auth0 yet: run scim-bridge doctor/);
    withDb((db) =>
      runSync(
        db,
        recordConnection({
          name: "okta-co-sso",
          strategy: "okta",
          type: "enterprise",
          setUserRootAttributes: "on_each_login",
          checkedAt: Date.now(),
        }),
      ),
    );
    const json = JSON.parse((await runCli(["mapping", "show", "okta-co", "--json"], env)).stdout) as {
      connectionTypeKnown: boolean;
      mapping: { connection: { type: string }; profile: Record<string, unknown> };
    };
    expect(json.connectionTypeKnown).toBe(true);
    expect(json.mapping.connection.type).toBe("enterprise");
    expect(Object.keys(json.mapping.profile)).toEqual(["email"]);
  });

  it("prints the applied mapping with its version", async () => {
    await org("acme");
    const file = join(root, `m-${n}.json`);
    writeFileSync(
      file,
      JSON.stringify({
        connection: { name: "Username-Password-Authentication" },
        userModel: "isolated",
        profile: { email: "userName" },
        roles: { default: ["member"] },
      }),
    );
    expect((await runCli(["mapping", "apply", "acme", file], env)).code).toBe(0);
    const text = await runCli(["mapping", "show", "acme"], env);
    expect(text.stdout).toMatch(/^# acme: active mapping, version 1/);
    expect(text.stdout).toMatch(/default:\n\s+- member/);
    expect(text.stdout).not.toMatch(/DEFAULT mapping/);
  });

  it("refuses an unknown organization with exit 1", async () => {
    const r = await runCli(["mapping", "show", "nope"], env);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/organization "nope" not found/);
  });
});

describe("scim-bridge jobs retry", { timeout: 120_000 }, () => {
  it("puts a dead job back to pending with attempts reset, and audits who did it", async () => {
    const orgId = await org("acme");
    const id = killJob(orgId);
    const r = await runCli(["jobs", "retry", String(id), "--actor", "oncall"], env);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(new RegExp(`job ${id}: pending, due now \\(attempts reset\\)`));
    const job = withDb((db) => db.select().from(jobs).where(eq(jobs.id, id)).get());
    expect(job).toMatchObject({ state: "pending", attempts: 0 });
    const audit = withDb((db) =>
      db
        .select()
        .from(auditEntries)
        .where(and(eq(auditEntries.action, "job.retry"), eq(auditEntries.targetId, String(id))))
        .get(),
    );
    expect(audit).toMatchObject({ actorType: "operator", actorId: "cli:oncall" });
  });

  it("--dead --org retries only that organization's dead jobs", async () => {
    const acme = killJob(await org("acme"));
    const other = killJob(await org("other"));
    const r = await runCli(["jobs", "retry", "--dead", "--org", "acme", "--json"], env);
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ retried: 1, results: [{ id: acme, state: "pending" }] });
    const states = withDb((db) =>
      Object.fromEntries(
        db
          .select({ id: jobs.id, state: jobs.state })
          .from(jobs)
          .all()
          .map((j) => [j.id, j.state]),
      ),
    );
    expect(states).toEqual({ [acme]: "pending", [other]: "dead" });
    const all = await runCli(["jobs", "retry", "--dead"], env);
    expect(all.stdout).toMatch(new RegExp(`job ${other}: pending`));
  });

  it("says so, with exit 1, for an unknown job, a job id that is not one, or no job named", async () => {
    await org("acme");
    const unknown = await runCli(["jobs", "retry", "999"], env);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toMatch(/job 999 not found/);
    const bad = await runCli(["jobs", "retry", "abc"], env);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/"abc" is not a job id/);
    const none = await runCli(["jobs", "retry"], env);
    expect(none.code).toBe(1);
    expect(none.stderr).toMatch(/give one job id, or --dead/);
    // Organizations are checked too, and nothing was changed by the refusals.
    expect((await runCli(["jobs", "retry", "--dead", "--org", "nope"], env)).code).toBe(1);
    expect(withDb((db) => db.select({ state: jobs.state }).from(jobs).all())).toEqual([{ state: "pending" }]);
    expect(withDb((db) => db.select().from(organizations).all()).length).toBe(1);
  });
});
