/**
 * `scim-bridge admin-token …`: issue, list and revoke admin API tokens against the configured
 * database, with or without a running server. The secret is printed once, at issue, and never again.
 * Exit codes: 0 done; 1 refused (unknown organization or token, invalid option).
 */
import { userInfo } from "node:os";
import { InvalidArgumentError, type Command } from "commander";
import { adminTokensOf, adminTokenState, issueAdminTokenFor, revokeAdminTokenById } from "../admin/admin-tokens.js";
import { adminTokenSummary, defaultAdminTokenDays, maxAdminTokenDays } from "../directory/admin-tokens.js";
import { listOrganizations } from "../directory/organizations.js";
import { changeBy } from "../directory/write-context.js";
import { cliOperator } from "./database.js";
import { withStore } from "./org.js";
import type { OpenStore } from "./database.js";

function parseDays(value: string): number {
  if (!/^\d+$/.test(value) || Number(value) < 1 || Number(value) > maxAdminTokenDays) {
    throw new InvalidArgumentError(`a whole number of days from 1 to ${maxAdminTokenDays}`);
  }
  return Number(value);
}

const iso = (ms: number | null): string => (ms === null ? "-" : new Date(ms).toISOString());

export function registerAdminCommands(program: Command, openDb: () => { open: OpenStore }): void {
  const tokens = program
    .command("admin-token")
    .description("admin API tokens: operator (every organization) or org-admin (one)");

  tokens
    .command("issue")
    .description("issue an admin token and print it once (operator scope unless --org is given)")
    .option("--org <slug>", "org-admin token for this organization (slug or id)")
    .option("--name <name>", "what the token is for (shown in listings and the audit trail)")
    .option("--expires-in <days>", `lifetime in days (default ${defaultAdminTokenDays})`, parseDays)
    .option("--json", "machine-readable output")
    .action(async (opts: { org?: string; name?: string; expiresIn?: number; json?: boolean }) => {
      await withStore(openDb, async (store) => {
        const scope = opts.org !== undefined ? "org_admin" : "operator";
        const name = opts.name ?? `${scope} token issued by ${userInfo().username}`;
        const issued = await issueAdminTokenFor(
          store,
          { scope, organization: opts.org, name, expiresInDays: opts.expiresIn },
          changeBy(cliOperator()),
        );
        if (opts.json) {
          console.log(JSON.stringify({ token: issued.token, tokenRecord: adminTokenSummary(issued.record) }, null, 2));
          return;
        }
        console.log(issued.token);
        console.error(
          `${scope} token ${issued.record.id} (…${issued.record.hint}) expires ${iso(issued.record.expiresAt)}. ` +
            "Store it now: it is not shown again. Use it as: Authorization: Bearer <token>",
        );
      });
    });

  tokens
    .command("list")
    .description("issued admin tokens (never the secret)")
    .option("--json", "machine-readable output")
    .action(async (opts: { json?: boolean }) => {
      await withStore(openDb, async (store) => {
        const now = Date.now();
        const rows = await adminTokensOf(store);
        if (opts.json) return void console.log(JSON.stringify(rows.map(adminTokenSummary), null, 2));
        if (rows.length === 0)
          return void console.log(
            "no admin tokens issued (BRIDGE_ADMIN_TOKEN, if set, is the bootstrap operator token)",
          );
        const slugs = new Map((await store.read(listOrganizations())).map((o) => [o.id, o.slug]));
        for (const t of rows) {
          const scope = t.organizationId ? `org_admin:${slugs.get(t.organizationId) ?? t.organizationId}` : "operator";
          console.log(
            [
              t.id,
              `…${t.hint}`,
              adminTokenState(t, now).padEnd(7),
              scope,
              `expires ${iso(t.expiresAt)}`,
              `last used ${iso(t.lastUsedAt)}`,
              t.name,
            ].join("  "),
          );
        }
      });
    });

  tokens
    .command("revoke <id>")
    .description("revoke an admin token now")
    .action(async (id: string) => {
      await withStore(openDb, async (store) => {
        const row = await revokeAdminTokenById(store, id, changeBy(cliOperator()));
        console.log(`admin token ${row.id} (…${row.hint}) revoked`);
      });
    });
}
