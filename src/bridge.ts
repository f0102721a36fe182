/**
 * The composition root: everything `serve` runs, built from the parsed configuration, with overrides
 * for the things a test (or the sandbox) supplies itself. main.ts and the test helpers both build
 * through createBridge, so what the tests exercise is wired exactly as production is.
 */
import type { RequestHandler } from "express";
import { pino, type Logger } from "pino";
import { adminService, type AdminDeps } from "./admin/router.js";
import { adminRouter } from "./http/admin-router.js";
import { createManagementClient } from "./auth0/client.js";
import { monitorTenant, type TenantMonitor } from "./sync/tenant-checks.js";
import type { EndpointClass } from "./auth0/rate-limiter.js";
import { ConfigError, isPostgresUrl, type Auth0Config, type Config } from "./config.js";
import type { ConsoleOidcSettings } from "./console/oidc.js";
import { consoleRouter, ephemeralSessionSecret } from "./console/router.js";
import {
  openDatabase,
  sqlitePathFromUrl,
  startBackgroundCheckpoints,
  type Db,
  type OpenDatabase,
} from "./directory/database.js";
import { linkedTenant, recordTenantLink, sandboxRefusal, sandboxTenant } from "./directory/settings.js";
import { createApp, type AppDeps } from "./http/app.js";
import { healthRouter } from "./http/health.js";
import { createMetrics, metricsRouter, organizationSlugs, queueDepthFromDb, type Metrics } from "./http/metrics.js";
import { postLoginHookRouter } from "./http/post-login-hook.js";
import { scimRequestLog } from "./http/scim-request-log.js";
import { ReadPool } from "./scim/read-pool.js";
import { createLogger, requestLogger } from "./logging.js";
import { scheduleDriftScans } from "./sync/drift-schedule.js";
import { createSyncEngine, type SyncEngine, type SyncEngineOptions } from "./sync/engine.js";
import { SyncThread, type EngineSettings } from "./sync/engine-thread.js";
import { ImportClient } from "./sync/import/client.js";
import { webhookInvitationDelivery, type InvitationDelivery } from "./sync/invitations.js";
import { postgresStore, sqliteStore, type ConflictRetry, type SqlStore } from "./directory/sql.js";
import { migratePostgres } from "./directory/postgres.js";

export interface BridgeOverrides {
  /** The database instead of config.databaseUrl (the sandbox's own file, a test's temporary one). */
  databaseUrl?: string;
  /**
   * WAL checkpoints in a thread of their own (as `serve` runs them, never inside a SCIM write's
   * commit) or SQLite's automatic ones. Default true.
   */
  backgroundCheckpoints?: boolean;
  /** The tenant this database is linked to (refused if linked to another); default the Auth0 domain; false: no link. */
  tenantLink?: string | false;
  /** PUBLIC_URL once the port is known (PORT=0), or a test server's origin. */
  publicUrl?: string;
  log?: Logger;
  /** Clock of the admin API and the console (sessions, setup links, token expiry). */
  clock?: () => number;
  /** Auth0 settings instead of config.auth0: the sandbox's or a test's emulator. */
  auth0?: Auth0Config;
  /** Management API client options (tests: no retries, so faults show at once). */
  managementClient?: { maxRetries?: number };
  plan?: Config["auth0Plan"];
  rateScale?: number;
  hookSecret?: string;
  consoleOidc?: ConsoleOidcSettings;
  /** The sync engine's knobs beyond the configuration (a test's fast poll, an invitation sink). */
  engine?: Pick<SyncEngineOptions, "pollMs" | "concurrency" | "leaseMs" | "backoff" | "outage"> & {
    invitations?: InvitationDelivery;
  };
  /** Admin API per-token limit; false turns it off (tests of other things). */
  adminRateLimit?: AdminDeps["rateLimit"];
  /** SCIM rate limit instead of config.scimRateLimit; null turns it off. */
  scimRateLimit?: AppDeps["scimRateLimit"] | null;
  /** The HTTP app's test knobs and extra mounts (before the product's own routers). */
  app?: Pick<
    AppDeps,
    | "bodyLimit"
    | "queryBudget"
    | "unauthenticatedLimit"
    | "onUnauthenticated"
    | "extraRouters"
    | "scimMiddleware"
    | "middleware"
  >;
  /** Metrics without Node's default process metrics (tests build many registries in one process). */
  defaultMetrics?: boolean;
  /**
   * The SCIM read pool instead of config.scimReadWorkers / scimRequestBudgetMs. `workerSetup`: the URL
   * of a module each worker imports and whose `setup(connection)` it runs first (tests: a slow read).
   */
  readPool?: { workers?: number; timeoutMs?: number; workerSetup?: string };
  /**
   * The job worker in a worker thread of its own (docs/design.md, "Concurrency") rather than on the
   * main thread. Off by default: tests drive `engine.worker` directly; main.ts turns it on for
   * `serve` and `start` from SYNC_WORKER_THREAD. `workerSetup`: the URL of a module whose `setup()`
   * the thread runs before its worker starts (tests: a way to crash it). Not with
   * `engine.invitations` (a function cannot cross into the thread) nor a :memory: database.
   */
  syncThread?: boolean | { workerSetup?: string };
}

export interface Bridge {
  app: ReturnType<typeof createApp>;
  /** The store's connection (synchronous=FULL): every SCIM write commits through it. */
  db: Db;
  sqlite: OpenDatabase["sqlite"];
  /** The worker's and bookkeeping connection (synchronous=NORMAL). */
  syncDb: Db;
  /** The store over `db`: SCIM and admin writes, every read that answers a request. */
  store: SqlStore;
  /** The store over `syncDb`: the worker's bookkeeping, the request log, tokens' last use. */
  bookkeeping: SqlStore;
  /** The SCIM read pool's threads; absent when reads run on the main thread (SCIM_READ_WORKERS=0, :memory:). */
  readPool?: ReadPool;
  log: Logger;
  metrics: Metrics;
  /**
   * The sync engine on the main thread: sign-out and user imports use its gateway and limiter, and
   * its worker runs the jobs unless `syncThread` does.
   */
  engine: SyncEngine;
  /** The thread that runs the job worker, when BridgeOverrides.syncThread asked for one. */
  syncThread?: SyncThread;
  publicUrl: string;
  auth0: Auth0Config;
  hookSecret?: string;
  /** Starts the background work: tenant checks (the worker waits for the first, at most 5 s), the worker, drift scans. */
  start(): Promise<void>;
  /** /healthz answers 503 from now on: a load balancer stops sending before the server closes. */
  beginShutdown(): void;
  /** Stops the background work, flushes the request log, closes the connections. */
  close(): Promise<void>;
}

/**
 * Links the database to the tenant it serves, once. The sandbox refuses a database linked to a real
 * tenant (it would replace that tenant's ids with its throwaway tenant's), and `serve` refuses one
 * linked to another tenant (its ids mean nothing there).
 */
async function linkDatabase(store: SqlStore, tenant: string): Promise<void> {
  if (tenant === sandboxTenant) {
    const refusal = await store.read(sandboxRefusal());
    if (refusal) throw new ConfigError([`the sandbox refuses this database: ${refusal}`]);
  } else {
    const link = await store.read(linkedTenant());
    if (link && link.tenant !== tenant) {
      throw new ConfigError([
        link.tenant === sandboxTenant
          ? `this database belongs to the sandbox (npm start): its Auth0 ids are those of a throwaway emulated tenant, not ${tenant}. Give \`serve\` its own DATABASE_URL.`
          : `this database is linked to the Auth0 tenant ${link.tenant}, not AUTH0_DOMAIN=${tenant}: its organization and user ids belong to that tenant. Use that tenant's settings, or a new DATABASE_URL.`,
      ]);
    }
  }
  await store.write(recordTenantLink(tenant));
}

export async function createBridge(config: Readonly<Config>, overrides: BridgeOverrides = {}): Promise<Bridge> {
  const auth0 = overrides.auth0 ?? config.auth0;
  if (!auth0)
    throw new ConfigError([
      "AUTH0_DOMAIN, AUTH0_CLIENT_ID and AUTH0_CLIENT_SECRET are required (or an emulator's settings)",
    ]);
  const log =
    overrides.log ??
    (config.logLevel === "silent" ? pino({ level: "silent" }) : createLogger({ level: config.logLevel }));
  const databaseUrl = overrides.databaseUrl ?? config.databaseUrl;
  const publicUrl = overrides.publicUrl ?? config.publicUrl;
  const plan = overrides.plan ?? config.auth0Plan;
  const hookSecret = overrides.hookSecret ?? config.hookSecret;
  const background = overrides.backgroundCheckpoints ?? true;
  if (overrides.syncThread && overrides.engine?.invitations)
    throw new ConfigError(["an invitation delivery function cannot run in the sync thread: turn syncThread off"]);

  // PostgreSQL: one pool per instance, for SCIM, admin and the worker's bookkeeping alike (its
  // commits are as durable as SCIM's). SQLite: the main connection (synchronous=FULL) and a
  // bookkeeping connection without an fsync per commit (see OpenOptions), so that the worker's
  // bookkeeping, the SCIM request log and tokens' last use stay off the SCIM commit path.
  const postgres = isPostgresUrl(databaseUrl);
  let sqliteFiles: { main: OpenDatabase; bookkeeping: OpenDatabase } | undefined;
  let mainStore: SqlStore;
  let bookkeeping: SqlStore;
  // The metrics are made once the store is open (their labels read it): a retry before that, while
  // linking the database at start, is logged only.
  let conflictRetryMetric: ((retry: ConflictRetry) => void) | undefined;
  if (postgres) {
    await migratePostgres(databaseUrl);
    mainStore = postgresStore(databaseUrl, {
      poolSize: config.databasePoolSize,
      applicationName: "scim-bridge",
      // Contention between writers (instances, or requests of one) shows here before it shows as 503s.
      onConflictRetry: (retry) => {
        log.warn(retry, "store: a transaction lost a deadlock or serialization check; retrying");
        conflictRetryMetric?.(retry);
      },
    });
    bookkeeping = mainStore;
  } else {
    const main = openDatabase(databaseUrl, { ...config.sqlite, ...(background ? { autoCheckpoint: false } : {}) });
    const sync = openDatabase(databaseUrl, {
      ...config.sqlite,
      durability: "normal",
      ...(background ? { autoCheckpoint: false } : {}),
    });
    sqliteFiles = { main, bookkeeping: sync };
    mainStore = sqliteStore(main.sqlite);
    bookkeeping = sqliteStore(sync.sqlite);
  }
  const closeStores = async () => {
    if (sqliteFiles) {
      sqliteFiles.bookkeeping.close();
      sqliteFiles.main.close();
    } else await mainStore.close();
  };
  try {
    const tenant = overrides.tenantLink ?? auth0.domain;
    if (tenant !== false) await linkDatabase(mainStore, tenant);
  } catch (err) {
    await closeStores();
    throw err;
  }
  const checkpoints =
    background && sqliteFiles
      ? startBackgroundCheckpoints(databaseUrl, (message) =>
          log.error(
            { err: message },
            "WAL checkpoint failed: the write-ahead log grows until one succeeds; check disk space and permissions",
          ),
        )
      : undefined;
  // Threads open connections of their own to the file: SQLite only, and not a :memory: database,
  // which is private to its connection.
  const ownConnections = sqliteFiles !== undefined && sqlitePathFromUrl(databaseUrl) !== ":memory:";
  const sqliteOnly = <T>(what: string, get: (files: NonNullable<typeof sqliteFiles>) => T): T => {
    if (!sqliteFiles) throw new Error(`bridge.${what} is SQLite's; on PostgreSQL use bridge.store`);
    return get(sqliteFiles);
  };

  const metrics = createMetrics({
    organizationLabel: organizationSlugs(mainStore),
    ...(overrides.defaultMetrics === false ? { defaultMetrics: false } : {}),
  });
  conflictRetryMetric = (retry) => metrics.storeConflictRetry(retry);
  const client = createManagementClient(auth0, overrides.managementClient ?? {});
  const invitations =
    overrides.engine?.invitations ??
    (config.invitationWebhook
      ? webhookInvitationDelivery(config.invitationWebhook.url, config.invitationWebhook.secret)
      : undefined);
  // Plain data, shared by the in-process engine and the sync thread's.
  const engineSettings: EngineSettings = {
    plan,
    tenant: auth0.domain,
    rateScale: overrides.rateScale ?? config.auth0RateScale,
    ...(auth0.invitationClientId ? { invitationClientId: auth0.invitationClientId } : {}),
    leaseMs: overrides.engine?.leaseMs ?? config.jobLeaseSeconds * 1000,
    concurrency: overrides.engine?.concurrency ?? config.syncConcurrency,
    ...(overrides.engine?.pollMs === undefined ? {} : { pollMs: overrides.engine.pollMs }),
    ...(overrides.engine?.backoff ? { backoff: overrides.engine.backoff } : {}),
    ...(overrides.engine?.outage ? { outage: overrides.engine.outage } : {}),
  };
  const engine = createSyncEngine({
    store: bookkeeping,
    client,
    ...engineSettings,
    log,
    onAuth0Failure: (organizationId, errorCode) => metrics.auth0Failure(organizationId, errorCode),
    ...(invitations ? { invitations } : {}),
    observer: metrics.callObserver,
    events: {
      ...metrics.workerEvents,
      onError: (err) => log.warn({ err }, "job worker: database write failed; retrying on the next poll"),
    },
  });
  metrics.setQueueDepthSource(() => queueDepthFromDb(mainStore));

  // The job worker in a thread of its own (docs/design.md, "Concurrency"). A :memory: database is
  // private to its connection, so its worker stays on the main thread.
  const threadOption = overrides.syncThread ?? false;
  let syncThread: SyncThread | undefined;
  if (threadOption !== false && ownConnections) {
    const workerSetup = typeof threadOption === "object" ? threadOption.workerSetup : undefined;
    syncThread = new SyncThread({
      data: {
        databaseUrl,
        sqlite: config.sqlite,
        autoCheckpoint: !background,
        auth0,
        ...(overrides.managementClient ? { managementClient: overrides.managementClient } : {}),
        settings: engineSettings,
        ...(config.invitationWebhook ? { invitationWebhook: config.invitationWebhook } : {}),
        logLevel: log.level as Config["logLevel"],
        ...(workerSetup ? { setup: workerSetup } : {}),
      },
      log,
      sinks: {
        onOutcome: (event) => metrics.jobOutcome(event),
        onCall: (cls, status, durationMs) => metrics.callObserver.onCall?.(cls as EndpointClass, status, durationMs),
        onAuth0Failure: (organizationId, errorCode) => metrics.auth0Failure(organizationId, errorCode),
        onCrash: () => metrics.syncThreadCrashes.inc(),
      },
    });
  }
  const thread = syncThread;
  // The budget as the limiter that spends it sees it: the thread's, once it has reported.
  metrics.setRateBudgetSource(() => thread?.budget ?? engine.limiter.snapshot());

  let shuttingDown = false;
  let tenantMonitor: TenantMonitor | undefined;
  let stopDrift: (() => void) | undefined;
  const adminDeps: AdminDeps = {
    store: mainStore,
    publicUrl,
    ...(config.adminToken ? { bootstrapOperatorToken: config.adminToken } : {}),
    log,
    signOut: (userId) => engine.signOut(userId),
    notifyWorker: () => (syncThread ? syncThread.notify() : engine.worker.notify()),
    userImports: { api: new ImportClient(client, engine.limiter), gateway: engine.gateway },
    ...(overrides.clock ? { now: overrides.clock } : {}),
    ...(overrides.adminRateLimit === undefined ? {} : { rateLimit: overrides.adminRateLimit }),
  };
  const consoleOidc: ConsoleOidcSettings | undefined =
    overrides.consoleOidc ??
    (config.console.oidc
      ? {
          ...config.console.oidc,
          roleClaimNamespace: config.console.roleClaimNamespace,
          adminRole: config.console.adminRole,
          operatorOrganization: config.console.operatorOrganization,
        }
      : undefined);
  if (!config.console.sessionSecret)
    log.warn(
      "CONSOLE_SESSION_SECRET is not set: console sessions end when this process restarts and are not shared with other instances",
    );
  // SCIM reads in worker threads with read-only connections (docs/design.md, "Concurrency"). A
  // :memory: database is private to its connection, so its reads stay on the main thread.
  const readWorkers = overrides.readPool?.workers ?? config.scimReadWorkers;
  const readPool =
    readWorkers > 0 && ownConnections
      ? new ReadPool({
          databaseUrl,
          sqlite: config.sqlite,
          size: readWorkers,
          // One time budget per SCIM request: a read in the pool is cancelled when it runs out.
          timeoutMs: overrides.readPool?.timeoutMs ?? config.scimRequestBudgetMs,
          log,
          ...(overrides.readPool?.workerSetup ? { workerSetup: overrides.readPool.workerSetup } : {}),
        })
      : undefined;
  const productRouters: { path: string; router: RequestHandler }[] = [
    { path: "/admin/v1", router: adminRouter(adminDeps) },
    {
      path: "/console",
      router: consoleRouter({
        store: mainStore,
        publicUrl,
        log,
        admin: adminService(adminDeps),
        oidc: consoleOidc,
        ...(config.adminToken ? { bootstrapOperatorToken: config.adminToken } : {}),
        sessionSecret: config.console.sessionSecret ?? ephemeralSessionSecret(),
        metricsText: () => metrics.registry.metrics(),
        ...(overrides.clock ? { now: overrides.clock } : {}),
      }),
    },
    {
      path: "/",
      router: healthRouter({
        store: mainStore,
        worker: syncThread ?? engine.worker,
        ...(syncThread ? { syncThread } : {}),
        shuttingDown: () => shuttingDown,
        tenant: { current: () => tenantMonitor?.current() },
        ...(readPool ? { readPool } : {}),
      }),
    },
    { path: "/", router: metricsRouter(metrics) },
  ];
  if (hookSecret)
    productRouters.push({ path: "/hooks/auth0/post-login", router: postLoginHookRouter(mainStore, hookSecret) });
  else
    log.warn(
      "AUTH0_HOOK_SECRET is not set: POST /hooks/auth0/post-login is off, so logins are not checked against the directory",
    );

  const requestLog = scimRequestLog(bookkeeping, { log });
  const scimRateLimit =
    overrides.scimRateLimit === undefined ? config.scimRateLimit : (overrides.scimRateLimit ?? undefined);
  const onUnauthenticated = overrides.app?.onUnauthenticated;
  const app = createApp({
    store: mainStore,
    publicUrl,
    log,
    trustProxy: config.trustProxy,
    ...(overrides.app?.bodyLimit === undefined ? {} : { bodyLimit: overrides.app.bodyLimit }),
    ...(overrides.app?.queryBudget === undefined ? {} : { queryBudget: overrides.app.queryBudget }),
    ...(overrides.app?.unauthenticatedLimit === undefined
      ? {}
      : { unauthenticatedLimit: overrides.app.unauthenticatedLimit }),
    middleware: [metrics.httpMetricsMiddleware(), requestLogger(log), ...(overrides.app?.middleware ?? [])],
    // The log records every authenticated request, rate-limited ones included, so it goes first.
    scimMiddleware: [requestLog, ...(overrides.app?.scimMiddleware ?? [])],
    // The event-loop share goes with the rate limit (an override of the rate limit without one has none).
    ...(scimRateLimit
      ? {
          scimRateLimit:
            overrides.scimRateLimit === undefined && config.scimLoopBudget
              ? { ...scimRateLimit, loop: config.scimLoopBudget }
              : scimRateLimit,
        }
      : {}),
    scimRequestBudgetMs: config.scimRequestBudgetMs,
    onUnauthenticated: (outcome) => {
      metrics.unauthenticatedRequests.inc({ outcome });
      onUnauthenticated?.(outcome);
    },
    bookkeeping,
    ...(readPool ? { readPool } : {}),
    extraRouters: [...(overrides.app?.extraRouters ?? []), ...productRouters],
  });

  let started = false;
  let closed = false;
  const stopBackground = () => {
    stopDrift?.();
    stopDrift = undefined;
    tenantMonitor?.stop();
  };
  return {
    app,
    get db() {
      return sqliteOnly("db", (f) => f.main.db);
    },
    get sqlite() {
      return sqliteOnly("sqlite", (f) => f.main.sqlite);
    },
    get syncDb() {
      return sqliteOnly("syncDb", (f) => f.bookkeeping.db);
    },
    store: mainStore,
    bookkeeping,
    ...(readPool ? { readPool } : {}),
    log,
    metrics,
    engine,
    ...(syncThread ? { syncThread } : {}),
    publicUrl,
    auth0,
    ...(hookSecret ? { hookSecret } : {}),
    async start() {
      if (started) return;
      started = true;
      readPool?.start();
      syncThread?.prepare();
      // The worker waits for the first tenant check (at most 5 s) so that the connections' types,
      // which the default mapping follows, are known before the first job.
      tenantMonitor = monitorTenant({ auth0, store: mainStore, publicUrl, hookSecret, log });
      await Promise.race([tenantMonitor.first, new Promise((r) => setTimeout(r, 5000).unref())]);
      if (syncThread) syncThread.start();
      else engine.worker.start();
      stopDrift = scheduleDriftScans(mainStore, config.driftScanHours, log);
    },
    beginShutdown() {
      shuttingDown = true;
      stopBackground();
    },
    async close() {
      if (closed) return;
      closed = true;
      shuttingDown = true;
      stopBackground();
      await (syncThread ? syncThread.stop(10_000) : engine.worker.stop(10_000));
      await readPool?.close();
      await requestLog.close();
      engine.limiter.stop();
      await checkpoints?.stop();
      await closeStores();
    },
  };
}
