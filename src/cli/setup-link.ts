import type { Command } from "commander";
import { getOrganization } from "../directory/organizations.js";
import { createOrganizationSetupLink, revokeOrganizationSetupLinks } from "../admin/setup-links.js";
import { setupLinkUrl } from "../directory/setup-links.js";
import { changeBy } from "../directory/write-context.js";
import { invalidValue, notFound } from "../errors.js";
import { cliOperator } from "./database.js";
import { withStore, type CliDatabase } from "./org.js";

/**
 * `scim-bridge setup-link create <org> [--expires 24h] [--json]` and `setup-link revoke <org> (--all | <id>)`:
 * a self-service setup link for a customer's IT admin (the console's /console/setup pages), from the
 * configured database with or without a running server. The URL is printed once; only its hash is kept.
 */

export function registerSetupLinkCommands(program: Command, openDb: () => CliDatabase): void {
  const link = program
    .command("setup-link")
    .description("self-service setup links for a customer's IT admin (no account needed)");

  link
    .command("create <org>")
    .description("create a link that lets the customer's IT admin set up this organization's directories")
    .option("--expires <duration>", "lifetime such as 30m, 24h or 3d (at most 7d)", "72h")
    .option("--json", 'print {"url":…,"expiresAt":…}')
    .action(async (orgRef: string, opts: { expires: string; json?: boolean }) => {
      await withStore(openDb, async (store, { publicUrl }) => {
        const org = await store.read(getOrganization(orgRef));
        if (!org) throw notFound(`organization "${orgRef}" not found`);
        const made = await createOrganizationSetupLink(store, org.id, opts.expires, changeBy(cliOperator()));
        const out = {
          url: setupLinkUrl(publicUrl, made.token),
          expiresAt: new Date(made.record.expiresAt).toISOString(),
        };
        if (opts.json) console.log(JSON.stringify(out));
        else {
          console.log(`setup link  ${out.url}`);
          console.log(`expires     ${out.expiresAt}`);
          console.log(`id          ${made.record.id}`);
          console.log(
            "The link is shown only this once. Send it to the customer's IT admin; revoke it with `scim-bridge setup-link revoke`.",
          );
        }
      });
    });

  link
    .command("revoke <org> [id]")
    .description("revoke one setup link by id, or every link of the organization with --all")
    .option("--all", "revoke every active link of the organization")
    .option("--json", 'print {"revoked":[ids]}')
    .action(async (orgRef: string, id: string | undefined, opts: { all?: boolean; json?: boolean }) => {
      if ((id === undefined) === (opts.all !== true)) throw invalidValue("name one link id, or --all (not both)");
      await withStore(openDb, async (store) => {
        const org = await store.read(getOrganization(orgRef));
        if (!org) throw notFound(`organization "${orgRef}" not found`);
        const revoked = await revokeOrganizationSetupLinks(store, org.id, id, changeBy(cliOperator()));
        if (opts.json) console.log(JSON.stringify({ revoked }));
        else console.log(revoked.length === 0 ? "nothing to revoke" : `revoked ${revoked.join(", ")}`);
      });
    });
}
