/**
 * Composition root and CLI entry: the only place that reads configuration, opens the database and
 * builds clients. Commands live in src/cli/; each receives what it needs from here.
 */
import { Command } from "commander";
import { loadConfig, ConfigError } from "./config.js";
import { openDatabase } from "./directory/database.js";
import { registerEmulatorCommand } from "./cli/emulator.js";
import { registerMappingCommands } from "./cli/mapping.js";
import { registerOrgCommands } from "./cli/org.js";
import { registerStatusCommands } from "./cli/status.js";
import { registerAdminCommands } from "./cli/admin.js";

const program = new Command("scim-bridge")
  .description("SCIM 2.0 provisioning and deprovisioning bridge for Auth0 Organizations")
  .showHelpAfterError();

program
  .command("migrate")
  .description("apply pending database migrations to DATABASE_URL")
  .action(() => {
    const config = loadConfig(process.env);
    const { close } = openDatabase(config.databaseUrl);
    close();
    console.log("migrations applied");
  });

registerEmulatorCommand(program);
registerMappingCommands(program, () => openDatabase(loadConfig(process.env).databaseUrl));
registerOrgCommands(program, () => { const config = loadConfig(process.env); return { ...openDatabase(config.databaseUrl), publicUrl: config.publicUrl }; });
registerStatusCommands(program, () => openDatabase(loadConfig(process.env).databaseUrl), () => loadConfig(process.env).publicUrl);
registerAdminCommands(program, () => openDatabase(loadConfig(process.env).databaseUrl));

program.parseAsync(process.argv).catch((err: unknown) => {
  if (err instanceof ConfigError) {
    console.error(err.message);
    process.exit(78); // EX_CONFIG
  }
  console.error(err instanceof Error ? err.message : String(err));
  process.exit(1);
});
