import type { SqlStore } from "../../src/directory/sql.js";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import type Database from "better-sqlite3";
import type { Express } from "express";
import { pino, type Logger } from "pino";
import supertest from "supertest";
import { createBridge, type Bridge, type BridgeOverrides } from "../../src/bridge.js";
import { loadConfig } from "../../src/config.js";
import type { Db } from "../../src/directory/database.js";
import { scimBaseUrl } from "../../src/directory/directories.js";
import { addDirectoryOp, onboardOrganizationOp } from "../../src/admin/onboarding.js";
import { changeBy } from "../../src/directory/write-context.js";
import type { AppDeps } from "../../src/http/app.js";
import { createTestDatabase, type TestDialect } from "../support/test-dialect.js";

/**
 * A real bridge for tests: a new database of the run's dialect (a temporary SQLite file, WAL,
 * synchronous=FULL, or a fresh PostgreSQL database; migrations applied, as in production), the
 * Express app listening on 127.0.0.1 with an ephemeral port, and one organization with a directory
 * and its token. Reused by the sync and admin suites: pass `extraRouters` to mount
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
  /** The whole bridge as createBridge built it (metrics, sync engine, request log, product routers). */
  bridge: Bridge;
  app: Express;
  /** The SQLite connection (throws on PostgreSQL: read through `store` there). */
  db: Db;
  sqlite: Database.Database;
  /** The dialect this run's bridge is on (test/support/test-dialect.ts). */
  dialect: TestDialect;
  /** The bridge's database (sqlite:<file> or postgres://…), for a second connection or process on it. */
  databaseUrl: string;
  /** The bridge's main store (SCIM writes and reads) and its bookkeeping store (request log, token use). */
  store: SqlStore;
  bookkeeping: SqlStore;
  server: Server;
  /** http://127.0.0.1:<port> */
  origin: string;
  /** supertest bound to the listening server. */
  http: supertest.Agent;
  /** Authenticated requests to this bridge's first directory; `path` is relative to its base URL ("/Users"). */
  scim: ScimClient;
  /** Another organization and directory in the same database (isolation tests). */
  newDirectory(slug?: string): Promise<TestDirectory & { scim: ScimClient }>;
  close(): Promise<void>;
}

/** Authenticated SCIM requests with the SCIM content type: the one place tests build them. */
export interface ScimClient {
  get(path: string): supertest.Test;
  post(path: string, body?: unknown): supertest.Test;
  put(path: string, body?: unknown): supertest.Test;
  patch(path: string, body?: unknown): supertest.Test;
  delete(path: string): supertest.Test;
  /** Any method, the body JSON-encoded (sent on GET and DELETE too: routes must ignore or refuse it). */
  request(method: "get" | "post" | "put" | "patch" | "delete", path: string, body?: unknown): supertest.Test;
  /** A body sent exactly as given (malformed JSON, other media types). */
  raw(method: "post" | "put" | "patch", path: string, body: string, contentType?: string): supertest.Test;
}

let counter = 0;

/**
 * SCIM requests to one directory's base path with its bearer token: `scimClient(bridge.http, dir).post("/Users", body)`.
 * `target` is a supertest agent or an app; `contentType` what JSON bodies are sent as (default application/scim+json).
 */
export function scimClient(
  target: supertest.Agent | Express,
  dir: { basePath: string; token: string },
  options: { contentType?: string } = {},
): ScimClient {
  const http: supertest.Agent = typeof target === "function" ? supertest.agent(target) : target;
  const contentType = options.contentType ?? "application/scim+json";
  const auth = (t: supertest.Test) => t.set("Authorization", `Bearer ${dir.token}`);
  const withBody = (t: supertest.Test, body: unknown) =>
    body === undefined ? t : t.set("Content-Type", contentType).send(JSON.stringify(body));
  const request = (method: "get" | "post" | "put" | "patch" | "delete", path: string, body?: unknown) =>
    withBody(auth(http[method](dir.basePath + path)), body);
  return {
    get: (path) => request("get", path),
    post: (path, body) => request("post", path, body),
    put: (path, body) => request("put", path, body),
    patch: (path, body) => request("patch", path, body),
    delete: (path) => request("delete", path),
    request,
    raw: (method, path, body, type = "application/scim+json") =>
      auth(http[method](dir.basePath + path))
        .set("Content-Type", type)
        .send(body),
  };
}

const client = (http: supertest.Agent, dir: TestDirectory): ScimClient => scimClient(http, dir);

/**
 * What a test may change: the app's test knobs createBridge accepts (others, such as the request budget,
 * come from the environment, so a knob the bridge would ignore does not type-check) and the environment
 * the configuration is parsed from.
 */
export type TestBridgeOptions = NonNullable<BridgeOverrides["app"]> & {
  log?: Logger;
  /** Environment variables beyond the defaults (e.g. SCIM_RATE_LIMIT_PER_SECOND). */
  env?: Record<string, string>;
  /** SCIM rate limit instead of the configured default; null turns it off. */
  scimRateLimit?: AppDeps["scimRateLimit"] | null;
  /** Further createBridge overrides (auth0, engine, clock…). */
  overrides?: BridgeOverrides;
};

/** Auth0 settings for bridges whose worker never runs: nothing listens there. */
const unreachableAuth0 = {
  domain: "tenant.example.auth0.com",
  clientId: "scim-bridge-test",
  clientSecret: "test-secret",
  managementUrl: "http://127.0.0.1:9",
};

export async function createTestBridge(options: TestBridgeOptions = {}): Promise<TestBridge> {
  const database = await createTestDatabase();
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const {
    env,
    overrides,
    log,
    scimRateLimit,
    bodyLimit,
    queryBudget,
    unauthenticatedLimit,
    onUnauthenticated,
    extraRouters,
    scimMiddleware,
    middleware,
  } = options;
  // The production defaults (rate limits included), parsed as `serve` parses them. SCIM_READ_WORKERS
  // from the test run's environment: `SCIM_READ_WORKERS=0 npx vitest run test/scim` runs every SCIM
  // read on the main thread instead of the read pool (docs/design.md, "Concurrency").
  const readWorkers = process.env.SCIM_READ_WORKERS;
  const config = loadConfig({
    LOG_LEVEL: "silent",
    ...(readWorkers === undefined ? {} : { SCIM_READ_WORKERS: readWorkers }),
    ...env,
  });
  const bridge = await createBridge(config, {
    databaseUrl: database.url,
    backgroundCheckpoints: false,
    publicUrl: origin,
    log: log ?? pino({ level: "silent" }),
    auth0: unreachableAuth0,
    defaultMetrics: false,
    ...(scimRateLimit === undefined ? {} : { scimRateLimit }),
    app: {
      ...(bodyLimit === undefined ? {} : { bodyLimit }),
      ...(queryBudget === undefined ? {} : { queryBudget }),
      ...(unauthenticatedLimit === undefined ? {} : { unauthenticatedLimit }),
      ...(onUnauthenticated === undefined ? {} : { onUnauthenticated }),
      ...(extraRouters === undefined ? {} : { extraRouters }),
      ...(scimMiddleware === undefined ? {} : { scimMiddleware }),
      ...(middleware === undefined ? {} : { middleware }),
    },
    ...overrides,
  });
  const { app } = bridge;
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
  const first = await bridge.store.write(
    onboardOrganizationOp({ slug: `test-org-${process.pid}-${++counter}` }, changeBy(operator)),
  );
  const main = describe(first.organization.id, first.directory.id, first.token.token);

  return {
    ...main,
    bridge,
    app,
    // Getters: on PostgreSQL the bridge has no SQLite connection, and reading one says so (use store).
    get db() {
      return bridge.db;
    },
    get sqlite() {
      return bridge.sqlite;
    },
    dialect: database.dialect,
    databaseUrl: database.url,
    store: bridge.store,
    bookkeeping: bridge.bookkeeping,
    server,
    origin,
    http,
    scim: client(http, main),
    async newDirectory(slug) {
      const made =
        slug === undefined
          ? await bridge.store.write(
              onboardOrganizationOp({ slug: `test-org-${process.pid}-${++counter}` }, changeBy(operator)),
            )
          : await bridge.store.write(addDirectoryOp(slug, {}, changeBy(operator)));
      const d = describe(made.organization.id, made.directory.id, made.token.token);
      return { ...d, scim: client(http, d) };
    },
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await bridge.close();
      await database.remove();
    },
  };
}
