/**
 * CLI entry: registers the commands (src/cli/) and gives each what it needs. `serve` and `start` build
 * the bridge through createBridge (./bridge.ts); the configuration comes from ./config.ts, the only
 * reader of the environment.
 */
import { randomBytes } from "node:crypto";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { Command } from "commander";
import { registerAdminCommands } from "./cli/admin.js";
import { migrateDatabase, openStore, type OpenStore } from "./cli/database.js";
import { registerDoctorCommand } from "./cli/doctor.js";
import { registerEmulatorCommand } from "./cli/emulator.js";
import { registerMappingCommands } from "./cli/mapping.js";
import { registerOrgCommands } from "./cli/org.js";
import { registerReconcileCommand } from "./cli/reconcile.js";
import { registerSetupLinkCommands } from "./cli/setup-link.js";
import { ensureSandboxDirectory, forgetEmulatedTenant, sandboxBanner } from "./cli/sandbox.js";
import { registerStatusCommands } from "./cli/status.js";
import { registerUsersCommands } from "./cli/users.js";
import type { Bridge, BridgeOverrides } from "./bridge.js";
import { loadProcessConfig, ConfigError, type Config } from "./config.js";
import { sandboxTenant } from "./directory/settings.js";
import type { RunningEmulator } from "./emulator/index.js";
import { createLogger } from "./logging.js";

const program = new Command("scim-bridge")
  .description("SCIM 2.0 provisioning and deprovisioning bridge for Auth0 Organizations")
  .showHelpAfterError();

const config = (): Readonly<Config> => loadProcessConfig();
/** The store at DATABASE_URL, for the commands that run on either dialect. */
const openCliStore: OpenStore = () => openStore(config().databaseUrl);

/**
 * The sync engine and the Auth0 client, loaded by the commands that talk to Auth0 only: node-auth0
 * and the bridge's HTTP stack would otherwise be loaded by every command, doubling a short
 * command's start-up.
 */
const syncEngineModules = async () => {
  const [{ createSyncEngine }, { createManagementClient }] = await Promise.all([
    import("./sync/engine.js"),
    import("./auth0/client.js"),
  ]);
  return { createSyncEngine, createManagementClient };
};

/** The sandbox's own database unless DATABASE_URL names one: it must never land on `serve`'s. */
const sandboxDatabaseUrl = "sqlite:./data/sandbox.db";

/**
 * Runs the bridge: HTTP (SCIM, admin API, post-login hook, metrics, health) and the sync worker.
 * Without Auth0 settings it runs the sandbox: the Management API emulator in-process and a demo
 * organization. SIGTERM/SIGINT stop it gracefully.
 */
async function serve(cfg: Readonly<Config>, sandboxAllowed: boolean): Promise<void> {
  if (!cfg.auth0 && !sandboxAllowed) {
    throw new ConfigError([
      "AUTH0_DOMAIN, AUTH0_CLIENT_ID and AUTH0_CLIENT_SECRET are required by `serve` (use `npm start` for the sandbox)",
    ]);
  }
  const log = createLogger({ level: cfg.logLevel });
  const sandbox = !cfg.auth0;
  const server = createServer();
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(cfg.port, () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  // PORT=0 picks a free port; the public URL then follows it unless PUBLIC_URL was set.
  const publicUrl = cfg.publicUrlSet ? cfg.publicUrl : `http://localhost:${port}`;

  let emulator: RunningEmulator | undefined;
  const overrides: BridgeOverrides = {
    log,
    publicUrl,
    rateScale: sandbox ? 1 : cfg.auth0RateScale,
    // The sync worker in a thread of its own when SYNC_WORKER_THREAD=1 (default off): docs/design.md, "Concurrency".
    syncThread: cfg.syncWorkerThread,
  };
  if (sandbox) {
    const hookSecret = cfg.hookSecret ?? randomBytes(32).toString("hex");
    // The sandbox's console signs in through the emulator's simulated Universal Login.
    const consoleClient = {
      clientId: "sandbox-console",
      clientSecret: randomBytes(24).toString("hex"),
      callbacks: [`${publicUrl}/console/callback`],
      logoutUrls: [`${publicUrl}/console`],
    };
    const { startEmulator } = await import("./emulator/index.js");
    emulator = await startEmulator({
      plan: "enterprise",
      postLoginHook: { url: `http://127.0.0.1:${port}/hooks/auth0/post-login`, secret: hookSecret },
      oidcClients: [consoleClient],
      roleClaimNamespace: cfg.console.roleClaimNamespace,
    });
    Object.assign(overrides, {
      // The sandbox's own database unless DATABASE_URL names one: it must never land on `serve`'s.
      databaseUrl: cfg.databaseUrlSet ? cfg.databaseUrl : sandboxDatabaseUrl,
      tenantLink: sandboxTenant,
      auth0: {
        domain: "sandbox.scim-bridge.local",
        clientId: "sandbox",
        clientSecret: "sandbox",
        managementUrl: emulator.url,
      },
      plan: "enterprise",
      hookSecret,
      consoleOidc: {
        issuer: `${emulator.url}/`,
        clientId: consoleClient.clientId,
        clientSecret: consoleClient.clientSecret,
        roleClaimNamespace: cfg.console.roleClaimNamespace,
        adminRole: cfg.console.adminRole,
      },
    } satisfies BridgeOverrides);
  }
  let bridge: Bridge;
  try {
    const { createBridge } = await import("./bridge.js");
    bridge = await createBridge(cfg, overrides);
  } catch (err) {
    server.close();
    await emulator?.close();
    throw err;
  }
  if (emulator) await forgetEmulatedTenant(bridge.store);
  server.on("request", bridge.app);
  await bridge.start();

  if (emulator)
    console.log(sandboxBanner(await ensureSandboxDirectory(bridge.store, publicUrl), emulator.url, publicUrl));
  log.info({ port, publicUrl, sandbox }, "scim-bridge listening");

  let shuttingDown = false;
  const shutdown = async (signal: string): Promise<void> => {
    if (shuttingDown) return;
    shuttingDown = true;
    log.info(
      { signal },
      "shutting down: no new connections; finishing requests in flight and the Auth0 calls under way",
    );
    bridge.beginShutdown();
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    server.closeIdleConnections();
    await Promise.race([closed, new Promise((r) => setTimeout(r, 10_000).unref())]);
    server.closeAllConnections();
    await bridge.close();
    await emulator?.close();
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
  .action(async () => {
    await migrateDatabase(config().databaseUrl);
    console.log("migrations applied");
  });

registerEmulatorCommand(program);
registerDoctorCommand(program, {
  open: openCliStore,
  settings: () => {
    const cfg = config();
    if (!cfg.auth0)
      throw new ConfigError([
        "doctor checks a real tenant: set AUTH0_DOMAIN, AUTH0_CLIENT_ID and AUTH0_CLIENT_SECRET (AUTH0_MANAGEMENT_URL for an emulator)",
      ]);
    return { auth0: cfg.auth0, publicUrl: cfg.publicUrl, hookSecret: cfg.hookSecret };
  },
});
registerMappingCommands(program, openCliStore);
registerOrgCommands(program, () => ({ open: openCliStore, publicUrl: config().publicUrl }));
registerSetupLinkCommands(program, () => ({ open: openCliStore, publicUrl: config().publicUrl }));
registerStatusCommands(program, openCliStore, () => config().publicUrl);
registerAdminCommands(program, () => ({ open: openCliStore }));
registerReconcileCommand(program, async () => {
  const cfg = config();
  if (!cfg.auth0)
    throw new ConfigError([
      "reconcile needs AUTH0_DOMAIN, AUTH0_CLIENT_ID and AUTH0_CLIENT_SECRET (AUTH0_MANAGEMENT_URL for an emulator)",
    ]);
  const { createSyncEngine, createManagementClient } = await syncEngineModules();
  const store = await openCliStore();
  try {
    return {
      store,
      engine: createSyncEngine({
        store,
        client: createManagementClient(cfg.auth0),
        plan: cfg.auth0Plan,
        // The same key as `serve`: the CLI spends the tenant's budget from the same buckets.
        tenant: cfg.auth0.domain,
        rateScale: cfg.auth0RateScale,
        ...(cfg.auth0.invitationClientId ? { invitationClientId: cfg.auth0.invitationClientId } : {}),
      }),
    };
  } catch (err) {
    await store.close();
    throw err;
  }
});

registerUsersCommands(program, async (needAuth0) => {
  const cfg = config();
  if (needAuth0 && !cfg.auth0)
    throw new ConfigError([
      "users import needs AUTH0_DOMAIN, AUTH0_CLIENT_ID and AUTH0_CLIENT_SECRET (AUTH0_MANAGEMENT_URL for an emulator); --dry-run does not",
    ]);
  const store = await openCliStore();
  if (!needAuth0 || !cfg.auth0) return { store };
  try {
    const { createSyncEngine, createManagementClient } = await syncEngineModules();
    const { ImportClient } = await import("./sync/import/client.js");
    const client = createManagementClient(cfg.auth0);
    const engine = createSyncEngine({ store, client, plan: cfg.auth0Plan, rateScale: cfg.auth0RateScale });
    return { store, engine, api: new ImportClient(client, engine.limiter) };
  } catch (err) {
    await store.close();
    throw err;
  }
});

program.parseAsync(process.argv).catch((err: unknown) => {
  if (err instanceof ConfigError) {
    console.error(err.message);
    process.exit(78); // EX_CONFIG
  }
  console.error(err instanceof Error ? err.message : String(err));
  process.exit(1);
});
