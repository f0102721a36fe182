/**
 * Composition root and CLI entry: the only place that reads configuration, opens the database and
 * builds clients. Commands live in src/cli/; each receives what it needs from here.
 */
import { randomBytes } from "node:crypto";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { Command } from "commander";
import type { RequestHandler } from "express";
import { adminRouter } from "./admin/router.js";
import { createManagementClient } from "./auth0/client.js";
import { registerAdminCommands } from "./cli/admin.js";
import { registerEmulatorCommand } from "./cli/emulator.js";
import { registerMappingCommands } from "./cli/mapping.js";
import { registerOrgCommands } from "./cli/org.js";
import { registerReconcileCommand } from "./cli/reconcile.js";
import { ensureSandboxDirectory, forgetEmulatedTenant, sandboxBanner } from "./cli/sandbox.js";
import { registerStatusCommands } from "./cli/status.js";
import { registerUsersCommands } from "./cli/users.js";
import { loadConfig, ConfigError, type Auth0Config, type Config } from "./config.js";
import { openDatabase } from "./directory/database.js";
import { startEmulator, type RunningEmulator } from "./emulator/index.js";
import { createApp } from "./http/app.js";
import { healthRouter } from "./http/health.js";
import { createMetrics, metricsRouter, organizationSlugs, queueDepthFromDb } from "./http/metrics.js";
import { postLoginHookRouter } from "./http/post-login-hook.js";
import { bearerKey, tokenRateLimit } from "./http/rate-limit.js";
import { scimRequestLog } from "./http/scim-request-log.js";
import { createLogger, requestLogger } from "./logging.js";
import { scheduleDriftScans } from "./sync/drift-schedule.js";
import { createSyncEngine } from "./sync/engine.js";
import { webhookInvitationDelivery } from "./sync/invitations.js";
import { ImportClient } from "./sync/import/client.js";

const program = new Command("scim-bridge")
  .description("SCIM 2.0 provisioning and deprovisioning bridge for Auth0 Organizations")
  .showHelpAfterError();

const config = (): Readonly<Config> => loadConfig(process.env);
const openDb = () => openDatabase(config().databaseUrl);

/**
 * Runs the bridge: HTTP (SCIM, admin API, post-login hook, metrics, health) and the sync worker.
 * Without Auth0 settings it runs the sandbox: the Management API emulator in-process and a demo
 * organization. SIGTERM/SIGINT stop it gracefully (DESIGN.md §9; issue 7).
 */
async function serve(cfg: Readonly<Config>, sandboxAllowed: boolean): Promise<void> {
  if (!cfg.auth0 && !sandboxAllowed) {
    throw new ConfigError(["AUTH0_DOMAIN, AUTH0_CLIENT_ID and AUTH0_CLIENT_SECRET are required by `serve` (use `npm start` for the sandbox)"]);
  }
  const log = createLogger({ level: cfg.logLevel });
  const { db, sqlite, close: closeDb } = openDatabase(cfg.databaseUrl);
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
  if (cfg.auth0) {
    auth0 = cfg.auth0;
  } else {
    hookSecret ??= randomBytes(32).toString("hex");
    plan = "enterprise";
    emulator = await startEmulator({ plan, postLoginHook: { url: `http://127.0.0.1:${port}/hooks/auth0/post-login`, secret: hookSecret } });
    auth0 = { domain: "sandbox.scim-bridge.local", clientId: "sandbox", clientSecret: "sandbox", managementUrl: emulator.url };
    forgetEmulatedTenant(db);
  }

  const metrics = createMetrics({ organizationLabel: organizationSlugs(db) });
  // The worker's bookkeeping gets its own connection without an fsync per commit (see OpenOptions).
  const syncConnection = openDatabase(cfg.databaseUrl, { durability: "normal" });
  const importClient = createManagementClient(auth0);
  const engine = createSyncEngine({
    db: syncConnection.db,
    client: importClient,
    plan,
    rateScale: cfg.auth0 ? cfg.auth0RateScale : 1,
    leaseMs: cfg.jobLeaseSeconds * 1000,
    concurrency: cfg.syncConcurrency,
    ...(cfg.invitationWebhook ? { invitations: webhookInvitationDelivery(cfg.invitationWebhook.url, cfg.invitationWebhook.secret) } : {}),
    observer: metrics.callObserver,
    events: { ...metrics.workerEvents, onError: (err) => log.warn({ err }, "job worker: database write failed; retrying on the next poll") },
  });
  metrics.setQueueDepthSource(() => queueDepthFromDb(db));
  metrics.setRateBudgetSource(() => engine.limiter.snapshot());
  let shuttingDown = false;

  const extraRouters = [
    { path: "/admin/v1", router: adminRouter({ db, publicUrl, bootstrapOperatorToken: cfg.adminToken, log, signOut: (userId) => engine.signOut(userId), notifyWorker: () => engine.worker.notify(), userImports: { api: new ImportClient(importClient, engine.limiter), gateway: engine.gateway } }) },
    { path: "/", router: healthRouter({ db: sqlite, worker: engine.worker, shuttingDown: () => shuttingDown }) },
    { path: "/", router: metricsRouter(metrics) },
  ];
  if (hookSecret) extraRouters.push({ path: "/hooks/auth0/post-login", router: postLoginHookRouter(db, hookSecret) });
  else log.warn("AUTH0_HOOK_SECRET is not set: POST /hooks/auth0/post-login is off, so logins are not checked against the directory");

  const requestLog = scimRequestLog(db, { log });
  // The log records every request, rate-limited ones included, so it goes first.
  const scimMiddleware: RequestHandler[] = [requestLog];
  if (cfg.scimRateLimit) scimMiddleware.push(tokenRateLimit({ ...cfg.scimRateLimit, keyOf: bearerKey }));
  const app = createApp({
    db,
    publicUrl,
    log,
    middleware: [metrics.httpMetricsMiddleware(), requestLogger(log)],
    scimMiddleware,
    onScimWrite: () => engine.worker.notify(),
    extraRouters,
  });
  server.on("request", app);
  engine.worker.start();
  const stopDrift = scheduleDriftScans(db, cfg.driftScanHours, log);

  if (emulator) console.log(sandboxBanner(ensureSandboxDirectory(db, publicUrl), emulator.url, publicUrl));
  log.info({ port, publicUrl, sandbox: emulator !== undefined }, "scim-bridge listening");

  const shutdown = async (signal: string): Promise<void> => {
    if (shuttingDown) return;
    shuttingDown = true;
    log.info({ signal }, "shutting down: no new connections; finishing requests in flight and the Auth0 calls under way");
    stopDrift();
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    server.closeIdleConnections();
    await Promise.race([closed, new Promise((r) => setTimeout(r, 10_000).unref())]);
    server.closeAllConnections();
    await engine.worker.stop(10_000);
    requestLog.close();
    engine.limiter.stop();
    await emulator?.close();
    syncConnection.close();
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
registerMappingCommands(program, openDb);
registerOrgCommands(program, () => ({ ...openDb(), publicUrl: config().publicUrl }));
registerStatusCommands(program, openDb, () => config().publicUrl);
registerAdminCommands(program, openDb);
registerReconcileCommand(program, () => {
  const cfg = config();
  if (!cfg.auth0) throw new ConfigError(["reconcile needs AUTH0_DOMAIN, AUTH0_CLIENT_ID and AUTH0_CLIENT_SECRET (AUTH0_MANAGEMENT_URL for an emulator)"]);
  const opened = openDb();
  return { ...opened, engine: createSyncEngine({ db: opened.db, client: createManagementClient(cfg.auth0), plan: cfg.auth0Plan, rateScale: cfg.auth0RateScale }) };
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
