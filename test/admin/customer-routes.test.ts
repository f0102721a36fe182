/**
 * Customer-admin routes: its users with their sync state (from user_sync and jobs), search, filters
 * and paging; ids of another organization answer 404; force sign-out outcomes are audited.
 */
import { afterEach, describe, expect, it } from "vitest";
import { notFound } from "../../src/errors.js";
import { adminFixture, auditWhere, execSql, type AdminFixture } from "./helpers.js";

let f: AdminFixture;
afterEach(() => f.close());

const admin = (token: string) => ({
  get: (path: string) => f.http.get(`/admin/v1/organizations/${f.a.id}${path}`).set("Authorization", `Bearer ${token}`),
  post: (path: string, body: object = {}) =>
    f.http.post(`/admin/v1/organizations/${f.a.id}${path}`).set("Authorization", `Bearer ${token}`).send(body),
});
const alpha = () => admin(f.tokens.orgAdminA);

type Listed = {
  id: string;
  userName: string;
  held: boolean;
  sync: {
    auth0UserId: string | null;
    lastError: string | null;
    lastAppliedAt: string | null;
    pendingJob: { state: string; lane: string } | null;
    deadJob: { id: number } | null;
  };
};

describe("customer admin: users", () => {
  it("lists its users with their sync state: linked Auth0 id, last applied, pending job, last error, dead job", async () => {
    f = await adminFixture();
    const [u0, u1, u2] = f.a.userIds as [string, string, string];
    await execSql(
      f.store,
      `INSERT INTO user_sync (user_id, directory_id, organization_id, auth0_user_id, applied, applied_at, last_error,
         last_error_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
      [
        u0,
        f.a.directoryId,
        f.a.id,
        "auth0|u0",
        JSON.stringify({
          exists: true,
          member: true,
          blocked: false,
          roles: [],
          accessRevoked: false,
          deleted: false,
        }),
        f.clock.now - 5_000,
        "Auth0 answered 429",
        f.clock.now,
      ],
    );
    await execSql(f.store, "UPDATE jobs SET state = 'done' WHERE key = ?", [`user:${u0}`]);
    const res = await alpha().get("/users").expect(200);
    const users = res.body.users as Listed[];
    expect(users.map((u) => u.userName).sort()).toEqual([...f.a.userNames].sort());
    const byId = new Map(users.map((u) => [u.id, u]));
    expect(byId.get(u0)!.sync).toMatchObject({
      auth0UserId: "auth0|u0",
      lastError: "Auth0 answered 429",
      lastAppliedAt: new Date(f.clock.now - 5_000).toISOString(),
      pendingJob: null,
      deadJob: null,
    });
    expect(byId.get(u1)).toMatchObject({
      held: true,
      sync: { auth0UserId: null, pendingJob: { state: "pending", lane: "deprovision" } },
    });
    expect(byId.get(u2)!.sync.deadJob).toMatchObject({ id: f.a.deadJobId });
  });

  it("searches by any part of userName, display name or email, filters by state, and pages", async () => {
    f = await adminFixture();
    const search = async (query: string) =>
      ((await alpha().get(`/users?${query}`).expect(200)).body.users as Listed[]).map((u) => u.userName);
    expect(await search("q=USER-2")).toEqual(["alpha-user-2@alpha.example"]);
    expect(await search("q=person%201")).toEqual(["alpha-user-1@alpha.example"]);
    expect(await search("q=bravo")).toEqual([]);
    // LIKE wildcards in the search are literal characters.
    expect(await search("q=%25")).toEqual([]);
    expect(await search("state=held")).toEqual(["alpha-user-1@alpha.example"]);
    expect((await search("state=active")).sort()).toEqual(["alpha-user-0@alpha.example", "alpha-user-2@alpha.example"]);
    const first = await alpha().get("/users?limit=2").expect(200);
    const second = await alpha().get(`/users?limit=2&after=${first.body.next}`).expect(200);
    expect(second.body.next).toBeNull();
    expect([...first.body.users, ...second.body.users].map((u: Listed) => u.id).sort()).toEqual(
      [...f.a.userIds].sort(),
    );
    expect((await alpha().get("/users?limit=1000").expect(400)).body.message).toMatch(/^query parameter limit:/);
    await alpha().get(`/users?directory=${f.b.directoryId}`).expect(404);
  });

  it("another organization's user id does not exist here, for reads and for changes", async () => {
    f = await adminFixture();
    const foreign = f.b.userIds[0]!;
    for (const res of [
      await alpha().get(`/users/${foreign}`),
      await alpha().post(`/users/${foreign}/block`, { reason: "x" }),
      await alpha().post(`/users/${foreign}/unblock`),
      await alpha().post(`/users/${foreign}/sign-out`),
    ]) {
      expect(res.status).toBe(404);
      expect(res.text).not.toContain(f.b.userNames[0]);
    }
    expect(f.signOuts).toEqual([]);
    expect(await auditWhere(f.store, "target_id = ? AND actor_type = 'org_admin'", [foreign])).toEqual([]);
  });
});

describe("customer admin: force sign-out", () => {
  it("audits a failed attempt and answers 503 with Retry-After when Auth0 does not answer", async () => {
    f = await adminFixture({
      signOut: async () => {
        throw new Error("connect ECONNREFUSED");
      },
    });
    const res = await alpha().post(`/users/${f.a.userIds[0]}/sign-out`).expect(503);
    expect(res.headers["retry-after"]).toBe("5");
    expect(res.body.message).not.toContain("ECONNREFUSED");
    const [entry, ...more] = await auditWhere(f.store, "action = 'user.sign_out'");
    expect(more).toEqual([]);
    if (!entry) throw new Error("no user.sign_out audit entry");
    expect(JSON.parse(entry.after!)).toEqual({ revoked: false, error: "connect ECONNREFUSED" });
    expect(entry.requestId).toBe(res.headers["x-request-id"]);
  });

  it("passes a meaningful refusal through (a user not linked to Auth0 yet) and reports a plan without revocation", async () => {
    f = await adminFixture({
      signOut: async (userId) => {
        if (userId === f.a.userIds[0])
          throw notFound("the user is not linked to an Auth0 user yet, so it has no sessions to end");
        return {
          revoked: false,
          reason: "the tenant's plan has no session or refresh-token revocation; the user is blocked only",
        };
      },
    });
    expect((await alpha().post(`/users/${f.a.userIds[0]}/sign-out`).expect(404)).body.message).toContain("not linked");
    const partial = await alpha().post(`/users/${f.a.userIds[2]}/sign-out`).expect(200);
    expect(partial.body).toEqual({ revoked: false, reason: expect.stringContaining("plan") });
    expect(await auditWhere(f.store, "action = 'user.sign_out'")).toHaveLength(2);
  });
});
