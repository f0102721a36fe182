import { mkdtempSync, rmSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type Database from "better-sqlite3";
import type { Express } from "express";
import supertest from "supertest";
import { openDatabase, type Db } from "../../src/directory/database.js";
import { scimBaseUrl } from "../../src/directory/directories.js";
import { addDirectory, onboardOrganization } from "../../src/admin/onboarding.js";
import { changeBy } from "../../src/directory/write-context.js";
import { createApp, type AppDeps } from "../../src/http/app.js";

/**
 * A real bridge for tests: a temporary SQLite file (WAL, synchronous=FULL, migrations applied, as in
 * production), the Express app listening on 127.0.0.1 with an ephemeral port, and one organization
 * with a directory and its token. Reused by the sync and admin suites: pass `extraRouters` to mount
 * more of the product on the same app.
 */
export interface TestDirectory {
  organizationId: string;
  directoryId: string;
  token: string;
  /** Full SCIM base URL, e.g. http://127.0.0.1:41234/scim/v2/dir-abc */
  baseUrl: string;
  /** Path prefix for supertest calls: /scim/v2/dir-abc */
  basePath: string;
}

export interface TestBridge extends TestDirectory {
  app: Express;
  db: Db;
  sqlite: Database.Database;
  server: Server;
  /** http://127.0.0.1:<port> */
  origin: string;
  /** supertest bound to the listening server. */
  http: supertest.Agent;
  /** Authenticated requests to this bridge's first directory; `path` is relative to its base URL ("/Users"). */
  scim: ScimClient;
  /** Another organization and directory in the same database (isolation tests). */
  newDirectory(slug?: string): TestDirectory & { scim: ScimClient };
  close(): Promise<void>;
}

export interface ScimClient {
  get(path: string): supertest.Test;
  post(path: string, body?: unknown): supertest.Test;
  put(path: string, body?: unknown): supertest.Test;
  patch(path: string, body?: unknown): supertest.Test;
  delete(path: string): supertest.Test;
}

let counter = 0;

function client(http: supertest.Agent, dir: TestDirectory): ScimClient {
  const auth = (t: supertest.Test) => t.set("Authorization", `Bearer ${dir.token}`);
  const withBody = (t: supertest.Test, body: unknown) =>
    body === undefined ? t : t.set("Content-Type", "application/scim+json").send(JSON.stringify(body));
  return {
    get: (path) => auth(http.get(dir.basePath + path)),
    post: (path, body) => withBody(auth(http.post(dir.basePath + path)), body),
    put: (path, body) => withBody(auth(http.put(dir.basePath + path)), body),
    patch: (path, body) => withBody(auth(http.patch(dir.basePath + path)), body),
    delete: (path) => auth(http.delete(dir.basePath + path)),
  };
}

export async function createTestBridge(options: Omit<Partial<AppDeps>, "db" | "publicUrl"> = {}): Promise<TestBridge> {
  const dir = mkdtempSync(join(tmpdir(), "scim-bridge-test-"));
  const { db, sqlite, close } = openDatabase(`sqlite:${join(dir, "bridge.db")}`);
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const app = createApp({ db, publicUrl: origin, ...options });
  server.on("request", app);
  const http = supertest.agent(server);
  const operator = { type: "operator" as const, id: "test" };

  const describe = (organizationId: string, directoryId: string, token: string): TestDirectory => ({
    organizationId,
    directoryId,
    token,
    baseUrl: scimBaseUrl(origin, directoryId),
    basePath: `/scim/v2/${directoryId}`,
  });
  const first = onboardOrganization(db, { slug: `test-org-${process.pid}-${++counter}` }, changeBy(operator));
  const main = describe(first.organization.id, first.directory.id, first.token.token);

  return {
    ...main,
    app,
    db,
    sqlite,
    server,
    origin,
    http,
    scim: client(http, main),
    newDirectory(slug) {
      const made = slug === undefined ? onboardOrganization(db, { slug: `test-org-${process.pid}-${++counter}` }, changeBy(operator)) : addDirectory(db, slug, {}, changeBy(operator));
      const d = describe(made.organization.id, made.directory.id, made.token.token);
      return { ...d, scim: client(http, d) };
    },
    async close() {
      await new Promise<void>((resolve) => server.close(() => resolve()));
      close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
