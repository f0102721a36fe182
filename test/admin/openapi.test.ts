/**
 * The OpenAPI 3.1 document at /admin/v1/openapi.json matches the routes the router serves: the same
 * method+path pairs, every path parameter declared, and the documented request bodies and query
 * parameters are the ones the handlers enforce.
 */
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { adminRouter } from "../../src/http/admin-router.js";
import { adminFixture, type AdminFixture } from "./helpers.js";

interface Operation {
  operationId: string;
  parameters?: { name: string; in: string; required: boolean }[];
  requestBody?: {
    content: { "application/json": { schema: { properties?: Record<string, unknown>; required?: string[] } } };
  };
  responses: Record<string, unknown>;
  security: unknown[];
  "x-access": string;
}
type Doc = { openapi: string; paths: Record<string, Record<string, Operation>> };

interface Layer {
  route?: { path: string; methods: Record<string, boolean> };
}

let f: AdminFixture;
beforeAll(async () => {
  f = await adminFixture();
});
afterAll(() => f.close());

async function served(): Promise<Doc> {
  const res = await f.http.get("/admin/v1/openapi.json");
  expect(res.status).toBe(200);
  expect(res.headers["content-type"]).toMatch(/application\/json/);
  return res.body as Doc;
}

const operations = (doc: Doc) =>
  Object.entries(doc.paths).flatMap(([path, ops]) => Object.entries(ops).map(([method, op]) => ({ path, method, op })));

/** Values for the path parameters, taken from the fixture's organization A. */
const concrete = (path: string): string =>
  "/admin/v1" +
  path
    .replace("{org}", f.a.id)
    .replace("{dir}", f.a.directoryId)
    .replace("{userId}", f.a.userIds[0]!)
    .replace("{tokenId}", f.a.scimTokenId)
    .replace("{version}", "1")
    .replace("{jobId}", String(f.a.deadJobId));

describe("OpenAPI document", () => {
  it("lists exactly the routes the router serves", async () => {
    const router = adminRouter({
      store: f.store,
      publicUrl: "https://bridge.example",
      log: pino({ level: "silent" }),
      signOut: async () => ({ revoked: true }),
    });
    const stack = (router as unknown as { stack: Layer[] }).stack;
    const routed = stack
      .filter((l) => l.route)
      .flatMap((l) =>
        Object.keys(l.route!.methods).map((m) => `${m.toUpperCase()} ${l.route!.path.replace(/:(\w+)/g, "{$1}")}`),
      );
    const documented = operations(await served()).map(({ method, path }) => `${method.toUpperCase()} ${path}`);
    expect(routed.length).toBeGreaterThan(30);
    expect(new Set(routed).size).toBe(routed.length);
    expect([...routed].sort()).toEqual([...documented].sort());
  });

  it("is OpenAPI 3.1 with unique operation ids, declared path parameters, and auth and rate-limit answers", async () => {
    const doc = await served();
    expect(doc.openapi).toBe("3.1.0");
    const ids = operations(doc).map(({ op }) => op.operationId);
    expect(new Set(ids).size).toBe(ids.length);
    for (const { path, op } of operations(doc)) {
      const inPath = [...path.matchAll(/\{(\w+)\}/g)].map((m) => m[1]);
      const declared = (op.parameters ?? []).filter((p) => p.in === "path").map((p) => p.name);
      expect(declared, path).toEqual(inPath);
      if (op["x-access"] === "public") continue;
      expect(Object.keys(op.responses), path).toEqual(expect.arrayContaining(["401", "429"]));
      if (op["x-access"] === "operator") expect(Object.keys(op.responses), path).toContain("403");
      if (inPath.length > 0) expect(Object.keys(op.responses), path).toContain("404");
    }
  });

  it("documents the request bodies the handlers enforce: leaving out a required field is a 400 naming it", async () => {
    const withBodies = operations(await served()).filter(
      ({ op }) => (op.requestBody?.content["application/json"].schema.required ?? []).length > 0,
    );
    expect(withBodies.length).toBeGreaterThan(5);
    for (const { path, method, op } of withBodies) {
      const required = op.requestBody!.content["application/json"].schema.required!;
      const res = await f.http[method as "post" | "patch"](concrete(path))
        .set("Authorization", `Bearer ${f.tokens.operator}`)
        .send({});
      expect(res.status, `${method} ${path}`).toBe(400);
      expect(res.body.message, `${method} ${path}`).toContain(required[0]);
    }
  });

  it("documents every query parameter a route accepts: an undocumented one is refused with 400", async () => {
    const gets = operations(await served()).filter(
      ({ method, op }) => method === "get" && (op.parameters ?? []).some((p) => p.in === "query"),
    );
    expect(gets.length).toBeGreaterThan(5);
    for (const { path } of gets) {
      const res = await f.http
        .get(`${concrete(path)}?undocumented=1`)
        .set("Authorization", `Bearer ${f.tokens.operator}`);
      expect(res.status, path).toBe(400);
      expect(res.body.message, path).toContain("undocumented");
    }
  });
});
