/**
 * Every admin route against every kind of caller: no token, a bad token, an expired
 * one, a revoked one, an org-admin of another organization, an org-admin of this organization, and an
 * operator. Each gets the expected status, and no response carries the other organization's data.
 * Rows are checked against the served OpenAPI document, so a new route without a row fails here.
 */
import { afterEach, describe, expect, it } from "vitest";
import { adminFixture, countOf, deleteFixtureUsers, execSql, mappingFor, type AdminFixture } from "./helpers.js";

type Access = "public" | "authenticated" | "operator" | "organization";
type Method = "get" | "post" | "patch" | "delete";

interface Row {
  method: Method;
  /** As in the OpenAPI document. */
  path: string;
  access: Access;
  ok: number;
  url(f: AdminFixture): string;
  body?(f: AdminFixture): unknown;
  /** Puts the fixture in a state where the route can succeed. */
  prepare?(f: AdminFixture): Promise<unknown>;
  /** Operator answers list every organization by design; skip the other-organization check for them. */
  global?: boolean;
}

const org = (f: AdminFixture) => `/admin/v1/organizations/${f.a.id}`;
const dir = (f: AdminFixture) => `${org(f)}/directories/${f.a.directoryId}`;
const user = (f: AdminFixture, i = 0) => `${org(f)}/users/${f.a.userIds[i]}`;

const rows: Row[] = [
  {
    method: "get",
    path: "/openapi.json",
    access: "public",
    ok: 200,
    url: () => "/admin/v1/openapi.json",
    global: true,
  },
  { method: "get", path: "/me", access: "authenticated", ok: 200, url: () => "/admin/v1/me" },
  {
    method: "get",
    path: "/admin-tokens",
    access: "operator",
    ok: 200,
    url: () => "/admin/v1/admin-tokens",
    global: true,
  },
  {
    method: "post",
    path: "/admin-tokens",
    access: "operator",
    ok: 201,
    url: () => "/admin/v1/admin-tokens",
    body: (f) => ({ name: "new", scope: "org_admin", organization: f.a.slug }),
  },
  {
    method: "delete",
    path: "/admin-tokens/{tokenId}",
    access: "operator",
    ok: 200,
    url: (f) => `/admin/v1/admin-tokens/${f.spareTokenId}`,
  },
  {
    method: "post",
    path: "/organizations",
    access: "operator",
    ok: 201,
    url: () => "/admin/v1/organizations",
    body: () => ({ slug: "charlie" }),
  },
  {
    method: "get",
    path: "/organizations",
    access: "operator",
    ok: 200,
    url: () => "/admin/v1/organizations",
    global: true,
  },
  { method: "get", path: "/organizations/{org}", access: "organization", ok: 200, url: org },
  {
    method: "patch",
    path: "/organizations/{org}",
    access: "operator",
    ok: 200,
    url: org,
    body: () => ({ displayName: "Alpha Inc." }),
  },
  {
    method: "delete",
    path: "/organizations/{org}",
    access: "operator",
    ok: 204,
    url: org,
    prepare: async (f) => {
      // Deletable only without users and unfinished jobs: the IdP deleted everyone, the jobs ran.
      await deleteFixtureUsers(f);
      await execSql(
        f.store,
        "UPDATE jobs SET state = 'done' WHERE organization_id = ? AND state IN ('pending', 'running')",
        [f.a.id],
      );
    },
  },
  {
    method: "get",
    path: "/organizations/{org}/directories",
    access: "organization",
    ok: 200,
    url: (f) => `${org(f)}/directories`,
  },
  {
    method: "post",
    path: "/organizations/{org}/directories",
    access: "operator",
    ok: 201,
    url: (f) => `${org(f)}/directories`,
    body: () => ({ name: "entra" }),
  },
  { method: "get", path: "/organizations/{org}/directories/{dir}", access: "organization", ok: 200, url: dir },
  {
    method: "get",
    path: "/organizations/{org}/directories/{dir}/tokens",
    access: "organization",
    ok: 200,
    url: (f) => `${dir(f)}/tokens`,
  },
  {
    method: "post",
    path: "/organizations/{org}/directories/{dir}/tokens",
    access: "operator",
    ok: 201,
    url: (f) => `${dir(f)}/tokens`,
    body: () => ({}),
  },
  {
    method: "post",
    path: "/organizations/{org}/directories/{dir}/tokens/rotate",
    access: "organization",
    ok: 201,
    url: (f) => `${dir(f)}/tokens/rotate`,
    body: () => ({}),
  },
  {
    method: "delete",
    path: "/organizations/{org}/directories/{dir}/tokens/{tokenId}",
    access: "organization",
    ok: 200,
    url: (f) => `${dir(f)}/tokens/${f.a.scimTokenId}`,
  },
  {
    method: "get",
    path: "/organizations/{org}/directories/{dir}/scim-requests",
    access: "organization",
    ok: 200,
    url: (f) => `${dir(f)}/scim-requests`,
  },
  { method: "get", path: "/organizations/{org}/users", access: "organization", ok: 200, url: (f) => `${org(f)}/users` },
  { method: "get", path: "/organizations/{org}/users/{userId}", access: "organization", ok: 200, url: (f) => user(f) },
  {
    method: "post",
    path: "/organizations/{org}/users/{userId}/block",
    access: "organization",
    ok: 201,
    url: (f) => `${user(f)}/block`,
    body: () => ({ reason: "laptop stolen" }),
  },
  {
    method: "post",
    path: "/organizations/{org}/users/{userId}/unblock",
    access: "organization",
    ok: 200,
    url: (f) => `${user(f, 1)}/unblock`,
    body: () => ({}),
  },
  {
    method: "post",
    path: "/organizations/{org}/users/{userId}/sign-out",
    access: "organization",
    ok: 200,
    url: (f) => `${user(f)}/sign-out`,
  },
  {
    method: "post",
    path: "/mappings/validate",
    access: "operator",
    ok: 200,
    url: () => "/admin/v1/mappings/validate",
    body: () => ({ mapping: mappingFor("check") }),
  },
  {
    method: "get",
    path: "/organizations/{org}/mappings",
    access: "operator",
    ok: 200,
    url: (f) => `${org(f)}/mappings`,
  },
  {
    method: "get",
    path: "/organizations/{org}/mappings/active",
    access: "operator",
    ok: 200,
    url: (f) => `${org(f)}/mappings/active`,
  },
  {
    method: "get",
    path: "/organizations/{org}/mappings/{version}",
    access: "operator",
    ok: 200,
    url: (f) => `${org(f)}/mappings/1`,
  },
  {
    method: "post",
    path: "/organizations/{org}/mappings/preview",
    access: "operator",
    ok: 200,
    url: (f) => `${org(f)}/mappings/preview`,
    body: () => ({ mapping: mappingFor("candidate") }),
  },
  {
    method: "post",
    path: "/organizations/{org}/mappings",
    access: "operator",
    ok: 200,
    url: (f) => `${org(f)}/mappings`,
    body: () => ({ mapping: mappingFor("v3") }),
  },
  {
    method: "post",
    path: "/organizations/{org}/mappings/{version}/activate",
    access: "operator",
    ok: 200,
    url: (f) => `${org(f)}/mappings/1/activate`,
  },
  { method: "get", path: "/jobs", access: "operator", ok: 200, url: () => "/admin/v1/jobs", global: true },
  { method: "get", path: "/jobs/dead", access: "operator", ok: 200, url: () => "/admin/v1/jobs/dead", global: true },
  {
    method: "get",
    path: "/jobs/summary",
    access: "operator",
    ok: 200,
    url: () => "/admin/v1/jobs/summary",
    global: true,
  },
  {
    method: "post",
    path: "/jobs/{jobId}/retry",
    access: "operator",
    ok: 200,
    url: (f) => `/admin/v1/jobs/${f.a.deadJobId}/retry`,
  },
  { method: "post", path: "/organizations/{org}/drift", access: "operator", ok: 202, url: (f) => `${org(f)}/drift` },
  { method: "get", path: "/guard", access: "operator", ok: 200, url: () => "/admin/v1/guard", global: true },
  { method: "get", path: "/organizations/{org}/guard", access: "operator", ok: 200, url: (f) => `${org(f)}/guard` },
  {
    method: "post",
    path: "/organizations/{org}/guard/approve",
    access: "operator",
    ok: 200,
    url: (f) => `${org(f)}/guard/approve`,
  },
  {
    method: "post",
    path: "/organizations/{org}/guard/reject",
    access: "operator",
    ok: 200,
    url: (f) => `${org(f)}/guard/reject`,
  },
  { method: "get", path: "/audit", access: "operator", ok: 200, url: () => "/admin/v1/audit", global: true },
  { method: "get", path: "/organizations/{org}/audit", access: "organization", ok: 200, url: (f) => `${org(f)}/audit` },
  {
    method: "get",
    path: "/organizations/{org}/groups",
    access: "organization",
    ok: 200,
    url: (f) => `${org(f)}/groups`,
  },
  {
    method: "post",
    path: "/organizations/{org}/setup-links",
    access: "operator",
    ok: 201,
    url: (f) => `${org(f)}/setup-links`,
    body: () => ({ expires: "24h" }),
  },
  {
    method: "get",
    path: "/organizations/{org}/setup-links",
    access: "operator",
    ok: 200,
    url: (f) => `${org(f)}/setup-links`,
  },
  {
    method: "post",
    path: "/organizations/{org}/setup-links/revoke",
    access: "operator",
    ok: 200,
    url: (f) => `${org(f)}/setup-links/revoke`,
    body: () => ({ all: true }),
  },
  {
    method: "post",
    path: "/organizations/{org}/user-imports",
    access: "operator",
    ok: 200,
    url: (f) => `${org(f)}/user-imports?format=json&dryRun=true`,
    body: () => [{ email: "new@example.com" }],
  },
  {
    method: "get",
    path: "/organizations/{org}/user-imports",
    access: "organization",
    ok: 200,
    url: (f) => `${org(f)}/user-imports`,
  },
  {
    method: "get",
    path: "/organizations/{org}/user-imports/{importId}",
    access: "organization",
    ok: 200,
    url: (f) => `${org(f)}/user-imports/imp_a`,
    prepare: (f) =>
      execSql(
        f.store,
        `INSERT INTO user_imports (id, organization_id, directory_id, file_sha256, file_name, format, upsert,
           connection, state, records, chunks, created_by, created_at, updated_at)
         VALUES ('imp_a', ?, ?, '0', 'users.jsonl', 'jsonl', ?, 'Username-Password-Authentication', 'done', 0, 0,
           'operator:test', 0, 0)
         ON CONFLICT DO NOTHING`,
        [f.a.id, f.a.directoryId, false],
      ),
  },
];

type Caller = "none" | "bad" | "expired" | "revoked" | "otherOrgAdmin" | "orgAdmin" | "operator";
const callers: Caller[] = ["none", "bad", "expired", "revoked", "otherOrgAdmin", "orgAdmin", "operator"];

function tokenOf(f: AdminFixture, caller: Caller): string | undefined {
  switch (caller) {
    case "none":
      return undefined;
    case "bad":
      return "sba_not-a-real-token-but-shaped-like-one-000000000";
    case "expired":
      return f.tokens.expired;
    case "revoked":
      return f.tokens.revoked;
    case "otherOrgAdmin":
      return f.tokens.orgAdminB;
    case "orgAdmin":
      return f.tokens.orgAdminA;
    case "operator":
      return f.tokens.operator;
  }
}

function expected(row: Row, caller: Caller): number {
  if (row.access === "public") return row.ok;
  if (caller === "none" || caller === "bad" || caller === "expired" || caller === "revoked") return 401;
  if (caller === "operator" || row.access === "authenticated") return row.ok;
  if (row.access === "operator") return 403;
  return caller === "orgAdmin" ? row.ok : 404; // another organization's: as if it did not exist
}

/** Identifiers of an organization that must never appear in an answer to someone who is not entitled to it. */
const secretsOf = (o: AdminFixture["a"]): string[] => [
  o.slug,
  o.directoryId,
  ...o.userIds,
  ...o.userNames,
  o.scimTokenId,
];

async function call(f: AdminFixture, row: Row, caller: Caller) {
  const token = tokenOf(f, caller);
  let req = f.http[row.method](row.url(f));
  if (token) req = req.set("Authorization", `Bearer ${token}`);
  return row.body ? req.send(row.body(f) as object) : req;
}

const auditCount = (f: AdminFixture): Promise<number> => countOf(f.store, "audit_entries");

// Closed after each test: on PostgreSQL each fixture holds a database and a pool of connections.
const fixtures: AdminFixture[] = [];
afterEach(async () => {
  await Promise.all(fixtures.splice(0).map((f) => f.close()));
});
const fresh = async (): Promise<AdminFixture> => {
  const f = await adminFixture();
  fixtures.push(f);
  return f;
};

describe("admin API authorization matrix", () => {
  it("has a row for every route of the OpenAPI document, and no other", async () => {
    const f = await fresh();
    const doc = (await f.http.get("/admin/v1/openapi.json")).body as {
      paths: Record<string, Record<string, { "x-access": string }>>;
    };
    const documented = Object.entries(doc.paths).flatMap(([p, ops]) =>
      Object.entries(ops).map(([m, op]) => `${m.toUpperCase()} ${p} ${op["x-access"]}`),
    );
    expect(rows.map((r) => `${r.method.toUpperCase()} ${r.path} ${r.access}`).sort()).toEqual(documented.sort());
  });

  it.each(rows.map((r) => [`${r.method.toUpperCase()} ${r.path}`, r] as const))("%s", async (_name, row) => {
    // Refused callers first, on one fixture: a refusal must not change anything either.
    const shared = await fresh();
    await row.prepare?.(shared);
    const auditBefore = await auditCount(shared);
    const outcomes: string[] = [];
    const wanted: string[] = [];
    for (const caller of callers) {
      // Callers that succeed get a fixture of their own, so that one success does not turn the next into a 409.
      const f =
        expected(row, caller) === row.ok && row.access !== "public" && row.method !== "get" ? await fresh() : shared;
      if (f !== shared) await row.prepare?.(f);
      const res = await call(f, row, caller);
      outcomes.push(`${caller}:${res.status}`);
      wanted.push(`${caller}:${expected(row, caller)}`);
      const text = res.text ?? "";
      if (res.status === 401) expect(res.headers["www-authenticate"]).toMatch(/^Bearer realm=/);
      if (res.status >= 400)
        expect(res.body).toMatchObject({
          error: expect.any(String),
          message: expect.any(String),
          requestId: res.headers["x-request-id"],
        });
      if (f === shared && res.status !== row.ok)
        expect(await auditCount(shared), "a refused call wrote an audit entry").toBe(auditBefore);
      // Nobody but an operator on an all-organizations route (or B's admin asking who it is) sees B's data...
      const ownView = caller === "otherOrgAdmin" && row.access === "authenticated";
      if (!(caller === "operator" && row.global) && !ownView)
        for (const s of secretsOf(f.b)) expect(text, `${caller} saw B's ${s}`).not.toContain(s);
      // ...and B's org-admin (like anyone refused) learns nothing about A.
      if (caller !== "orgAdmin" && caller !== "operator" && row.access !== "public")
        for (const s of secretsOf(f.a)) expect(text, `${caller} saw A's ${s}`).not.toContain(s);
    }
    expect(outcomes).toEqual(wanted);
  });
});
