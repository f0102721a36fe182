/**
 * Composition root and CLI entry: the only place that reads configuration, opens the database and
 * builds clients. Commands live in src/cli/; each receives what it needs from here.
 */
import { randomBytes } from "node:crypto";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { Command } from "commander";
import type { RequestHandler } from "express";
import { adminService, type AdminDeps } from "./admin/router.js";
import { createManagementClient } from "./auth0/client.js";
import { registerAdminCommands } from "./cli/admin.js";
import { registerDoctorCommand } from "./cli/doctor.js";
import { registerEmulatorCommand } from "./cli/emulator.js";
import { registerMappingCommands } from "./cli/mapping.js";
import { registerOrgCommands } from "./cli/org.js";
import { registerReconcileCommand } from "./cli/reconcile.js";
import { registerSetupLinkCommands } from "./cli/setup-link.js";
import { ensureSandboxDirectory, forgetEmulatedTenant, sandboxBanner } from "./cli/sandbox.js";
import { registerStatusCommands } from "./cli/status.js";
import { registerUsersCommands } from "./cli/users.js";
import { loadConfig, ConfigError, type Auth0Config, type Config } from "./config.js";
import type { ConsoleOidcSettings } from "./console/oidc.js";
import { consoleRouter, ephemeralSessionSecret } from "./console/router.js";
import { openDatabase, startBackgroundCheckpoints, type Db } from "./directory/database.js";
import { linkedTenant, recordTenantLink, sandboxRefusal, sandboxTenant } from "./directory/settings.js";
import { startEmulator, type RunningEmulator } from "./emulator/index.js";
import { adminRouter } from "./http/admin-router.js";
import { createApp } from "./http/app.js";
import { healthRouter } from "./http/health.js";
import { createMetrics, metricsRouter, organizationSlugs, queueDepthFromDb } from "./http/metrics.js";
import { postLoginHookRouter } from "./http/post-login-hook.js";
import { scimRequestLog } from "./http/scim-request-log.js";
import { createLogger, requestLogger } from "./logging.js";
import { scheduleDriftScans } from "./sync/drift-schedule.js";
import { monitorTenant, type TenantMonitor } from "./sync/tenant-checks.js";
import { createSyncEngine } from "./sync/engine.js";
import { webhookInvitationDelivery } from "./sync/invitations.js";
import { ImportClient } from "./sync/import/client.js";

const program = new Command("scim-bridge")
  .description("SCIM 2.0 provisioning and deprovisioning bridge for Auth0 Organizations")
  .showHelpAfterError();

const config = (): Readonly<Config> => loadConfig(process.env);
const openDb = () => openDatabase(config().databaseUrl);

/** The sandbox's own database unless DATABASE_URL names one: it must never land on `serve`'s. */
const sandboxDatabaseUrl = "sqlite:./data/sandbox.db";

/**
 * Links the database to the tenant it serves, once. The sandbox refuses a database linked to a real
 * tenant (it would replace that tenant's ids with its throwaway tenant's), and `serve` refuses one
 * linked to another tenant (its ids mean nothing there).
 */
function linkDatabase(db: Db, tenant: string): void {
  if (tenant === sandboxTenant) {
    const refusal = sandboxRefusal(db);
    if (refusal) throw new ConfigError([`the sandbox refuses this database: ${refusal}`]);
  } else {
    const link = linkedTenant(db);
    if (link && link.tenant !== tenant) {
      throw new ConfigError([
        link.tenant === sandboxTenant
          ? `this database belongs to the sandbox (npm start): its Auth0 ids are those of a throwaway emulated tenant, not ${tenant}. Give \`serve\` its own DATABASE_URL.`
          : `this database is linked to the Auth0 tenant ${link.tenant}, not AUTH0_DOMAIN=${tenant}: its organization and user ids belong to that tenant. Use that tenant's settings, or a new DATABASE_URL.`,
      ]);
    }
  }
  recordTenantLink(db, tenant);
}

/**
 * Runs the bridge: HTTP (SCIM, admin API, post-login hook, metrics, health) and the sync worker.
 * Without Auth0 settings it runs the sandbox: the Management API emulator in-process and a demo
 * organization. SIGTERM/SIGINT stop it gracefully.
 */
async function serve(cfg: Readonly<Config>, sandboxAllowed: boolean): Promise<void> {
  if (!cfg.auth0 && !sandboxAllowed) {
    throw new ConfigError(["AUTH0_DOMAIN, AUTH0_CLIENT_ID and AUTH0_CLIENT_SECRET are required by `serve` (use `npm start` for the sandbox)"]);
  }
  const log = createLogger({ level: cfg.logLevel });
  const databaseUrl = cfg.auth0 || process.env.DATABASE_URL ? cfg.databaseUrl : sandboxDatabaseUrl;
  // Checkpoints run in a thread of their own, never inside a SCIM write's commit (see startBackgroundCheckpoints).
  const { db, sqlite, close: closeDb } = openDatabase(databaseUrl, { autoCheckpoint: false });
  try {
    linkDatabase(db, cfg.auth0 ? cfg.auth0.domain : sandboxTenant);
  } catch (err) {
    closeDb();
    throw err;
  }
  const checkpoints = startBackgroundCheckpoints(databaseUrl, (message) =>
    log.error({ err: message }, "WAL checkpoint failed: the write-ahead log grows until one succeeds; check disk space and permissions"),
  );
  const server = createServer();
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(cfg.port, () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  // PORT=0 picks a free port; the public URL then follows it unless PUBLIC_URL was set.
  const publicUrl = process.env.PUBLIC_URL ? cfg.publicUrl : `http://localhost:${port}`;

  let emulator: RunningEmulator | undefined;
  let auth0: Auth0Config;
  let hookSecret = cfg.hookSecret;
  let plan = cfg.auth0Plan;
  let consoleOidc: ConsoleOidcSettings | undefined = cfg.console.oidc
    ? { ...cfg.console.oidc, roleClaimNamespace: cfg.console.roleClaimNamespace, adminRole: cfg.console.adminRole, operatorOrganization: cfg.console.operatorOrganization }
    : undefined;
  if (cfg.auth0) {
    auth0 = cfg.auth0;
  } else {
    hookSecret ??= randomBytes(32).toString("hex");
    plan = "enterprise";
    // The sandbox's console signs in through the emulator's simulated Universal Login.
    const consoleClient = { clientId: "sandbox-console", clientSecret: randomBytes(24).toString("hex"), callbacks: [`${publicUrl}/console/callback`], logoutUrls: [`${publicUrl}/console`] };
    emulator = await startEmulator({
      plan,
      postLoginHook: { url: `http://127.0.0.1:${port}/hooks/auth0/post-login`, secret: hookSecret },
      oidcClients: [consoleClient],
      roleClaimNamespace: cfg.console.roleClaimNamespace,
    });
    auth0 = { domain: "sandbox.scim-bridge.local", clientId: "sandbox", clientSecret: "sandbox", managementUrl: emulator.url };
    consoleOidc = { issuer: `${emulator.url}/`, clientId: consoleClient.clientId, clientSecret: consoleClient.clientSecret, roleClaimNamespace: cfg.console.roleClaimNamespace, adminRole: cfg.console.adminRole };
    forgetEmulatedTenant(db);
  }

  const metrics = createMetrics({ organizationLabel: organizationSlugs(db) });
  // The worker's bookkeeping gets its own connection without an fsync per commit (see OpenOptions).
  // The SCIM request log and tokens' last use write through it too: bookkeeping, off the SCIM commit path.
  const syncConnection = openDatabase(databaseUrl, { durability: "normal", autoCheckpoint: false });
  const importClient = createManagementClient(auth0);
  const engine = createSyncEngine({
    db: syncConnection.db,
    client: importClient,
    plan,
    tenant: auth0.domain,
    rateScale: cfg.auth0 ? cfg.auth0RateScale : 1,
    ...(auth0.invitationClientId ? { invitationClientId: auth0.invitationClientId } : {}),
    log,
    onAuth0Failure: (organizationId, errorCode) => metrics.auth0Failure(organizationId, errorCode),
    leaseMs: cfg.jobLeaseSeconds * 1000,
    concurrency: cfg.syncConcurrency,
    ...(cfg.invitationWebhook ? { invitations: webhookInvitationDelivery(cfg.invitationWebhook.url, cfg.invitationWebhook.secret) } : {}),
    observer: metrics.callObserver,
    events: { ...metrics.workerEvents, onError: (err) => log.warn({ err }, "job worker: database write failed; retrying on the next poll") },
  });
  metrics.setQueueDepthSource(() => queueDepthFromDb(db));
  metrics.setRateBudgetSource(() => engine.limiter.snapshot());
  let shuttingDown = false;
  let tenantMonitor: TenantMonitor | undefined;

  const adminDeps: AdminDeps = {
    db,
    publicUrl,
    bootstrapOperatorToken: cfg.adminToken,
    log,
    signOut: (userId) => engine.signOut(userId),
    notifyWorker: () => engine.worker.notify(),
    userImports: { api: new ImportClient(importClient, engine.limiter), gateway: engine.gateway },
  };
  if (!cfg.console.sessionSecret) log.warn("CONSOLE_SESSION_SECRET is not set: console sessions end when this process restarts and are not shared with other instances");
  const extraRouters = [
    { path: "/admin/v1", router: adminRouter(adminDeps) },
    {
      path: "/console",
      router: consoleRouter({
        db,
        publicUrl,
        log,
        admin: adminService(adminDeps),
        oidc: consoleOidc,
        bootstrapOperatorToken: cfg.adminToken,
        sessionSecret: cfg.console.sessionSecret ?? ephemeralSessionSecret(),
        metricsText: () => metrics.registry.metrics(),
      }),
    },
    { path: "/", router: healthRouter({ db: sqlite, worker: engine.worker, shuttingDown: () => shuttingDown, tenant: { current: () => tenantMonitor?.current() } }) },
    { path: "/", router: metricsRouter(metrics) },
  ];
  if (hookSecret) extraRouters.push({ path: "/hooks/auth0/post-login", router: postLoginHookRouter(db, hookSecret) });
  else log.warn("AUTH0_HOOK_SECRET is not set: POST /hooks/auth0/post-login is off, so logins are not checked against the directory");

  const requestLog = scimRequestLog(syncConnection.db, { log });
  // The log records every authenticated request, rate-limited ones included, so it goes first.
  const scimMiddleware: RequestHandler[] = [requestLog];
  const app = createApp({
    db,
    publicUrl,
    log,
    middleware: [metrics.httpMetricsMiddleware(), requestLogger(log)],
    scimMiddleware,
    ...(cfg.scimRateLimit ? { scimRateLimit: cfg.scimRateLimit } : {}),
    onUnauthenticated: (outcome) => metrics.unauthenticatedRequests.inc({ outcome }),
    onScimWrite: () => engine.worker.notify(),
    bookkeepingDb: syncConnection.db,
    extraRouters,
  });
  server.on("request", app);
  // The tenant checks run in the background; the worker waits for the first (at most 5 s) so that
  // the connections' types, which the default mapping follows, are known before the first job.
  tenantMonitor = monitorTenant({ auth0, db, publicUrl, hookSecret, log });
  await Promise.race([tenantMonitor.first, new Promise((r) => setTimeout(r, 5000).unref())]);
  engine.worker.start();
  const stopDrift = scheduleDriftScans(db, cfg.driftScanHours, log);

  if (emulator) console.log(sandboxBanner(ensureSandboxDirectory(db, publicUrl), emulator.url, publicUrl));
  log.info({ port, publicUrl, sandbox: emulator !== undefined }, "scim-bridge listening");

  const shutdown = async (signal: string): Promise<void> => {
    if (shuttingDown) return;
    shuttingDown = true;
    log.info({ signal }, "shutting down: no new connections; finishing requests in flight and the Auth0 calls under way");
    stopDrift();
    tenantMonitor?.stop();
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    server.closeIdleConnections();
    await Promise.race([closed, new Promise((r) => setTimeout(r, 10_000).unref())]);
    server.closeAllConnections();
    await engine.worker.stop(10_000);
    requestLog.close();
    engine.limiter.stop();
    await emulator?.close();
    syncConnection.close();
    await checkpoints.stop();
    closeDb();
    log.info("stopped");
    log.flush?.();
    process.exit(0);
  };
  process.once("SIGTERM", () => void shutdown("SIGTERM"));
  process.once("SIGINT", () => void shutdown("SIGINT"));
}

program
  .command("start")
  .description("serve; without AUTH0_DOMAIN, run the sandbox (in-process Auth0 emulator and a demo organization)")
  .action(() => serve(config(), true));

program
  .command("serve")
  .description("start the HTTP server and the sync worker against the configured Auth0 tenant")
  .action(() => serve(config(), false));

program
  .command("migrate")
  .description("apply pending database migrations to DATABASE_URL")
  .action(() => {
    const { close } = openDb();
    close();
    console.log("migrations applied");
  });

registerEmulatorCommand(program);
registerDoctorCommand(program, {
  open: openDb,
  settings: () => {
    const cfg = config();
    if (!cfg.auth0) throw new ConfigError(["doctor checks a real tenant: set AUTH0_DOMAIN, AUTH0_CLIENT_ID and AUTH0_CLIENT_SECRET (AUTH0_MANAGEMENT_URL for an emulator)"]);
    return { auth0: cfg.auth0, publicUrl: cfg.publicUrl, hookSecret: cfg.hookSecret };
  },
});
registerMappingCommands(program, openDb);
registerOrgCommands(program, () => ({ ...openDb(), publicUrl: config().publicUrl }));
registerSetupLinkCommands(program, () => ({ ...openDb(), publicUrl: config().publicUrl }));
registerStatusCommands(program, openDb, () => config().publicUrl);
registerAdminCommands(program, openDb);
registerReconcileCommand(program, () => {
  const cfg = config();
  if (!cfg.auth0) throw new ConfigError(["reconcile needs AUTH0_DOMAIN, AUTH0_CLIENT_ID and AUTH0_CLIENT_SECRET (AUTH0_MANAGEMENT_URL for an emulator)"]);
  const opened = openDb();
  return {
    ...opened,
    engine: createSyncEngine({
      db: opened.db,
      client: createManagementClient(cfg.auth0),
      plan: cfg.auth0Plan,
      // The same key as `serve`: the CLI spends the tenant's budget from the same buckets.
      tenant: cfg.auth0.domain,
      rateScale: cfg.auth0RateScale,
      ...(cfg.auth0.invitationClientId ? { invitationClientId: cfg.auth0.invitationClientId } : {}),
    }),
  };
});

registerUsersCommands(program, (needAuth0) => {
  const cfg = config();
  if (needAuth0 && !cfg.auth0) throw new ConfigError(["users import needs AUTH0_DOMAIN, AUTH0_CLIENT_ID and AUTH0_CLIENT_SECRET (AUTH0_MANAGEMENT_URL for an emulator); --dry-run does not"]);
  const opened = openDb();
  if (!needAuth0 || !cfg.auth0) return opened;
  const client = createManagementClient(cfg.auth0);
  const engine = createSyncEngine({ db: opened.db, client, plan: cfg.auth0Plan, rateScale: cfg.auth0RateScale });
  return { ...opened, engine, api: new ImportClient(client, engine.limiter) };
});

program.parseAsync(process.argv).catch((err: unknown) => {
  if (err instanceof ConfigError) {
    console.error(err.message);
    process.exit(78); // EX_CONFIG
  }
  console.error(err instanceof Error ? err.message : String(err));
  process.exit(1);
});
