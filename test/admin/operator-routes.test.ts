/**
 * Operator routes: onboarding, organization changes, directories and SCIM tokens, mappings, jobs and
 * drift. Each change is one transaction with its audit entries (request id included); bad input is a
 * 400 naming the field and writes nothing.
 */
import { afterEach, describe, expect, it } from "vitest";
import { verifyScimToken } from "../../src/directory/tokens.js";
import { enqueueJob, Lane } from "../../src/directory/outbox.js";
import {
  adminFixture,
  auditWhere,
  countOf,
  deleteFixtureUsers,
  execSql,
  jobsWhere,
  mappingFor,
  type AdminFixture,
} from "./helpers.js";

let f: AdminFixture;
afterEach(() => f.close());

const as = (token: string) => ({
  get: (path: string) => f.http.get(`/admin/v1${path}`).set("Authorization", `Bearer ${token}`),
  post: (path: string, body: object = {}) =>
    f.http.post(`/admin/v1${path}`).set("Authorization", `Bearer ${token}`).send(body),
  patch: (path: string, body: object) =>
    f.http.patch(`/admin/v1${path}`).set("Authorization", `Bearer ${token}`).send(body),
  delete: (path: string) => f.http.delete(`/admin/v1${path}`).set("Authorization", `Bearer ${token}`),
});
const op = () => as(f.tokens.operator);
const auditCount = () => countOf(f.store, "audit_entries");
const auditByRequest = (requestId: string) => auditWhere(f.store, "request_id = ?", [requestId]);

describe("organizations", () => {
  it("onboarding creates the organization, its directory and a SCIM token shown once, and enqueues the Auth0 Organization", async () => {
    f = await adminFixture();
    const res = await op()
      .post("/organizations", {
        slug: "charlie",
        displayName: "Charlie Ltd",
        userModel: "shared",
        directoryName: "okta",
      })
      .expect(201);
    const { organization, directory, scimBaseUrl, token } = res.body;
    expect(organization).toMatchObject({
      slug: "charlie",
      displayName: "Charlie Ltd",
      userModel: "shared",
      auth0OrgId: null,
    });
    expect(scimBaseUrl).toBe(`https://bridge.example/scim/v2/${directory.id}`);
    expect(await verifyScimToken(f.store, token)).toMatchObject({
      directoryId: directory.id,
      organizationId: organization.id,
    });
    const [job] = await jobsWhere(f.store, "key = ?", [`organization:${organization.id}`]);
    expect(job).toMatchObject({ kind: "organization", state: "pending", lane: Lane.provision });
    const entries = await auditByRequest(res.headers["x-request-id"]);
    expect(entries.map((e) => e.action)).toEqual(["organization.create", "directory.create", "token.issue"]);
    expect(JSON.stringify(entries)).not.toContain(token);
    // The token is not retrievable afterwards.
    const tokens = await op().get(`/organizations/charlie/directories/${directory.id}/tokens`).expect(200);
    expect(tokens.text).not.toContain(token);
  });

  it("refuses bad input with 400 naming the field and a taken slug with 409, writing nothing", async () => {
    f = await adminFixture();
    const footprint = async () => ({ audit: await auditCount(), orgs: await countOf(f.store, "organizations") });
    const before = await footprint();
    expect((await op().post("/organizations", { slug: "Not A Slug" }).expect(400)).body.message).toMatch(/^slug:/);
    expect(
      (await op().post("/organizations", { slug: "ok", userModel: "federated" }).expect(400)).body.message,
    ).toMatch(/^userModel:/);
    expect((await op().post("/organizations", { slug: "ok", extra: 1 }).expect(400)).body.message).toContain("extra");
    expect((await op().post("/organizations", { slug: "ok", tokenExpiresInDays: 0 }).expect(400)).body.message).toMatch(
      /^tokenExpiresInDays:/,
    );
    expect((await op().post("/organizations", { slug: "alpha" }).expect(409)).body.error).toBe("uniqueness");
    expect((await op().post("/organizations", [1, 2]).expect(400)).body.message).toMatch(/^request body:/);
    expect(await footprint()).toEqual(before);
  });

  it("an update is audited with before and after, and re-reconciles the organization", async () => {
    f = await adminFixture();
    await execSql(f.store, "UPDATE jobs SET state = 'done' WHERE kind = 'organization'"); // onboarding's job has run
    const res = await op()
      .patch(`/organizations/${f.a.slug}`, { displayName: "Alpha Inc.", connection: "alpha-db" })
      .expect(200);
    expect(res.body.organization).toMatchObject({ displayName: "Alpha Inc.", connection: "alpha-db" });
    const [entry] = await auditByRequest(res.headers["x-request-id"]);
    expect(JSON.parse(entry!.before!)).toEqual({
      displayName: "alpha",
      connection: "Username-Password-Authentication",
    });
    expect(JSON.parse(entry!.after!)).toEqual({ displayName: "Alpha Inc.", connection: "alpha-db" });
    expect(
      (await jobsWhere(f.store, "key = ? AND state = 'pending'", [`organization:${f.a.id}`])).map((j) => j.lane),
    ).toEqual([Lane.background]);
    expect((await op().patch(`/organizations/${f.a.slug}`, {}).expect(400)).body.message).toContain(
      "displayName or connection",
    );
  });

  it("deletion waits until every user is gone and every job has run, then removes the organization and keeps its audit trail", async () => {
    f = await adminFixture();
    const refused = await op().delete(`/organizations/${f.a.id}`).expect(409);
    expect(refused.body.message).toContain("3 user(s)");
    await deleteFixtureUsers(f);
    const waiting = await op().delete(`/organizations/${f.a.id}`).expect(409);
    expect(waiting.body.message).toContain("unfinished job");
    await execSql(f.store, "UPDATE jobs SET state = 'done' WHERE organization_id = ?", [f.a.id]);
    await op().delete(`/organizations/${f.a.id}`).expect(204);
    await op().get(`/organizations/${f.a.id}`).expect(404);
    // Its org-admin tokens went with it; organization B is untouched.
    await as(f.tokens.orgAdminA).get("/me").expect(401);
    await as(f.tokens.orgAdminB).get(`/organizations/${f.b.id}/users`).expect(200);
    const trail = await op().get(`/audit?organization=${f.a.id}&action=organization.delete`).expect(200);
    expect(trail.body.entries).toHaveLength(1);
  });
});

describe("directories and SCIM tokens", () => {
  it("issue refuses a third active token; rotate keeps two active by revoking the oldest; revoke is audited once", async () => {
    f = await adminFixture();
    const base = `/organizations/${f.a.id}/directories/${f.a.directoryId}/tokens`;
    // Later than the seeded token: tokens of one millisecond are ordered by id, not by insertion.
    f.clock.now += 1000;
    const second = await op().post(base, {}).expect(201);
    expect((await op().post(base, {}).expect(409)).body.message).toContain("2 active tokens");
    const rotated = await as(f.tokens.orgAdminA).post(`${base}/rotate`, { expiresInDays: 30 }).expect(201);
    expect(rotated.body.revokedTokenIds).toEqual([f.a.scimTokenId]);
    expect(await verifyScimToken(f.store, f.a.scimToken)).toBeUndefined();
    expect(await verifyScimToken(f.store, second.body.token)).toBeDefined();
    expect(await verifyScimToken(f.store, rotated.body.token)).toBeDefined();
    expect(rotated.body.tokenRecord.expiresAt).toBe(new Date(f.clock.now + 30 * 86_400_000).toISOString());
    // The customer admin cannot mint tokens without rotating.
    await as(f.tokens.orgAdminA).post(base, {}).expect(403);

    const revoke = await as(f.tokens.orgAdminA).delete(`${base}/${second.body.tokenRecord.id}`).expect(200);
    expect(revoke.body.token.active).toBe(false);
    expect(await verifyScimToken(f.store, second.body.token)).toBeUndefined();
    await as(f.tokens.orgAdminA).delete(`${base}/${second.body.tokenRecord.id}`).expect(200);
    expect((await auditByRequest(revoke.headers["x-request-id"])).map((e) => e.action)).toEqual(["token.revoke"]);
    expect(
      await auditWhere(f.store, "action = 'token.revoke' AND target_id = ?", [second.body.tokenRecord.id]),
    ).toHaveLength(1);
    // Another organization's token id does not exist under this directory.
    await op().delete(`${base}/${f.b.scimTokenId}`).expect(404);
    expect(await verifyScimToken(f.store, f.b.scimToken)).toBeDefined();
  });

  it("a directory of another organization is 404 under this one, even for an operator", async () => {
    f = await adminFixture();
    await op().get(`/organizations/${f.a.id}/directories/${f.b.directoryId}`).expect(404);
    await op().get(`/organizations/${f.a.id}/directories/${f.b.directoryId}/scim-requests`).expect(404);
    f.clock.now += 1000; // later than the seeded directory: rows of one millisecond are ordered by id
    const added = await op().post(`/organizations/${f.a.id}/directories`, { name: "entra" }).expect(201);
    expect(
      (await op().get(`/organizations/${f.a.id}/directories`).expect(200)).body.directories.map(
        (d: { name: string }) => d.name,
      ),
    ).toEqual(["default", "entra"]);
    expect((await verifyScimToken(f.store, added.body.token))?.directoryId).toBe(added.body.directory.id);
  });
});

describe("mappings", () => {
  it("validate reports every problem by path; apply refuses an invalid mapping naming the path; apply, history, roll back", async () => {
    f = await adminFixture();
    const broken = { ...mappingFor("broken"), userModel: "federated", connection: { type: "database" } };
    const checked = await op().post("/mappings/validate", { mapping: broken }).expect(200);
    expect(checked.body.ok).toBe(false);
    expect(checked.body.issues.map((i: { path: string }) => i.path)).toEqual(
      expect.arrayContaining(["userModel", "connection.name"]),
    );
    const refused = await op().post(`/organizations/${f.a.id}/mappings`, { mapping: broken }).expect(400);
    expect(refused.body.message).toContain("mapping.connection.name");

    const applied = await op()
      .post(`/organizations/${f.a.id}/mappings`, { mapping: mappingFor("v3"), comment: "third" })
      .expect(200);
    expect(applied.body).toMatchObject({ version: 3, changed: true });
    expect((await auditByRequest(applied.headers["x-request-id"])).map((e) => e.action)).toEqual(["mapping.apply"]);
    const again = await op()
      .post(`/organizations/${f.a.id}/mappings`, { mapping: mappingFor("v3") })
      .expect(200);
    expect(again.body).toMatchObject({ version: 3, changed: false });
    const history = await op().get(`/organizations/${f.a.id}/mappings`).expect(200);
    expect(history.body.versions.map((v: { version: number; active: boolean }) => [v.version, v.active])).toEqual([
      [3, true],
      [2, false],
      [1, false],
    ]);

    const rollback = await op().post(`/organizations/${f.a.id}/mappings/1/activate`).expect(200);
    expect(rollback.body).toMatchObject({ version: 1, changed: true });
    expect((await op().get(`/organizations/${f.a.id}/mappings/active`).expect(200)).body).toMatchObject({
      version: 1,
      mapping: { description: "alpha v1" },
    });
    await op().post(`/organizations/${f.a.id}/mappings/99/activate`).expect(404);
    expect((await op().get(`/organizations/${f.a.id}/mappings/x`).expect(400)).body.message).toContain("version");
  });

  it("preview counts what a candidate would change without writing anything", async () => {
    f = await adminFixture();
    const before = await auditCount();
    const candidate = { ...mappingFor("roles"), roles: { default: ["member"], rules: [] } };
    const res = await op()
      .post(`/organizations/${f.a.id}/mappings/preview`, { mapping: candidate, limit: 1 })
      .expect(200);
    expect(res.body.total).toBe(3);
    expect(res.body.changed.roles).toBe(3); // isolated deactivation keeps membership and roles, so the held user counts too
    expect(res.body.users).toHaveLength(1);
    expect(res.body.usersTruncated).toBe(true);
    expect(await auditCount()).toBe(before);
  });
});

describe("jobs and drift", () => {
  it("lists by state and lane, shows dead letters, and a retry merges into a pending job of the same user", async () => {
    f = await adminFixture();
    const dead = await op().get(`/jobs/dead?organization=${f.a.slug}`).expect(200);
    expect(dead.body.jobs.map((j: { id: number; lastError: string }) => [j.id, j.lastError])).toEqual([
      [f.a.deadJobId, "gave up"],
    ]);
    const pendingDeprov = await op().get(`/jobs?organization=${f.a.id}&state=pending&lane=deprovision`).expect(200);
    expect(
      pendingDeprov.body.jobs.every(
        (j: { state: string; lane: string; organizationId: string }) =>
          j.state === "pending" && j.lane === "deprovision" && j.organizationId === f.a.id,
      ),
    ).toBe(true);
    expect(pendingDeprov.body.jobs.length).toBeGreaterThan(0);

    // The IdP changed the user again meanwhile: a pending job for the same key exists.
    await f.store.write(
      enqueueJob({
        organizationId: f.a.id,
        directoryId: f.a.directoryId,
        kind: "user",
        subjectId: f.a.userIds[2]!,
        lane: Lane.provision,
        now: f.clock.now,
      }),
    );
    const [pending] = await jobsWhere(f.store, "key = ? AND state = 'pending'", [`user:${f.a.userIds[2]}`]);
    if (!pending) throw new Error("no pending job for the user");
    const retried = await op().post(`/jobs/${f.a.deadJobId}/retry`).expect(200);
    expect(retried.body).toMatchObject({
      mergedInto: pending.id,
      job: { id: pending.id, state: "pending", attempts: 0 },
    });
    expect(await jobsWhere(f.store, "id = ?", [f.a.deadJobId])).toEqual([]);
    const [entry] = await auditByRequest(retried.headers["x-request-id"]);
    expect(entry).toMatchObject({ action: "job.retry", actorType: "operator", organizationId: f.a.id });
    expect(JSON.parse(entry!.before!)).toMatchObject({ state: "dead", lastError: "gave up" });

    // Without a pending twin, the dead job itself goes back to pending, runnable now.
    const retriedB = await op().post(`/jobs/${f.b.deadJobId}/retry`).expect(200);
    expect(retriedB.body).toMatchObject({
      mergedInto: null,
      job: { id: f.b.deadJobId, state: "pending", attempts: 0, runAfter: new Date(f.clock.now).toISOString() },
    });
    await op().post(`/jobs/${f.b.deadJobId}/retry`).expect(200);
    await execSql(f.store, "UPDATE jobs SET state = 'done' WHERE id = ?", [f.b.deadJobId]);
    expect((await op().post(`/jobs/${f.b.deadJobId}/retry`).expect(409)).body.message).toContain("done");
    await op().post("/jobs/999999/retry").expect(404);
    expect((await op().get("/jobs?lane=fast").expect(400)).body.message).toMatch(/^query parameter lane:/);
  });

  it("sums unfinished and dead jobs per organization and lane", async () => {
    f = await adminFixture();
    const res = await op().get(`/jobs/summary?organization=${f.a.slug}`).expect(200);
    const groups = res.body.groups as { organizationId: string; state: string; lane: string; count: number }[];
    expect(groups.every((g) => g.organizationId === f.a.id)).toBe(true);
    expect(groups.find((g) => g.state === "dead")).toMatchObject({ lane: "provision", count: 1 });
  });

  it("a drift reconcile is one background job, merged when asked twice", async () => {
    f = await adminFixture();
    const first = await op().post(`/organizations/${f.a.id}/drift`).expect(202);
    expect(first.body.job).toMatchObject({ kind: "drift", lane: "background", state: "pending", subjectId: f.a.id });
    await op().post(`/organizations/${f.a.id}/drift`).expect(202);
    expect(await jobsWhere(f.store, "kind = 'drift'")).toHaveLength(1);
    expect((await auditByRequest(first.headers["x-request-id"])).map((e) => e.action)).toEqual(["drift.request"]);
  });
});

describe("audit query", () => {
  it("filters by organization, actor, action prefix and time, pages with a cursor, and never shows a secret", async () => {
    f = await adminFixture();
    await as(f.tokens.orgAdminA)
      .post(`/organizations/${f.a.id}/users/${f.a.userIds[0]}/block`, { reason: "r" })
      .expect(201);
    const holds = await op().get(`/audit?organization=${f.a.slug}&action=hold.`).expect(200);
    expect(
      holds.body.entries.map((e: { action: string; actor: { type: string } }) => `${e.actor.type} ${e.action}`),
    ).toEqual(["org_admin hold.place", "operator hold.place"]);
    const page1 = await op().get("/audit?limit=3").expect(200);
    const page2 = await op().get(`/audit?limit=3&before=${page1.body.next}`).expect(200);
    expect(page2.body.entries[0].id).toBeLessThan(page1.body.entries[2].id);
    const later = await op()
      .get(`/audit?since=${new Date(f.clock.now + 1).toISOString()}`)
      .expect(200);
    expect(later.body.entries).toEqual([]);
    expect((await op().get("/audit?since=yesterday").expect(400)).body.message).toMatch(/^query parameter since:/);
    // Customer admins see their organization's trail only.
    const mine = await as(f.tokens.orgAdminA).get(`/organizations/${f.a.id}/audit?limit=500`).expect(200);
    expect(mine.body.entries.every((e: { organizationId: string }) => e.organizationId === f.a.id)).toBe(true);
    const everything = await op().get("/audit?limit=500").expect(200);
    expect(everything.text).not.toMatch(/scimb_|sba_/);
  });
});
