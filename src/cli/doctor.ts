/**
 * `scim-bridge doctor [--json]`: checks the live Auth0 tenant against what the configuration and
 * the organizations' mappings need, one ✓/✗ line per check with its fix.
 * Exit codes: 0 nothing required is missing (warnings allowed); 1 something required is missing or
 * Auth0 refused or did not answer; 78 configuration (no Auth0 settings).
 */
import type { Command } from "commander";
import type { TenantCheckOptions } from "../sync/tenant-checks.js";
import { withStore, type OpenStore } from "./database.js";

export interface DoctorContext {
  open: OpenStore;
  /** Everything checkTenant needs but the database; throws ConfigError without Auth0 settings. */
  settings: () => Omit<TenantCheckOptions, "store">;
}

export function registerDoctorCommand(program: Command, ctx: DoctorContext): void {
  program
    .command("doctor")
    .description(
      "check the Auth0 tenant: credentials, granted scopes, connections, roles, the post-login hook, revocation endpoints",
    )
    .option("--json", "machine-readable output")
    .action(async (opts: { json?: boolean }) => {
      const settings = ctx.settings();
      await withStore(ctx.open, async (store) => {
        // Loaded here, not at start-up: the Auth0 client it brings costs every other command's start.
        const { checkTenant, formatReport } = await import("../sync/tenant-checks.js");
        const report = await checkTenant({ ...settings, store });
        console.log(opts.json ? JSON.stringify(report, null, 2) : formatReport(report));
        if (!report.ok) process.exitCode = 1;
      });
    });
}
