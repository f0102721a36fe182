/**
 * `scim-bridge admin-token …`: issue, list and revoke admin API tokens against the configured
 * database, with or without a running server. The secret is printed once, at issue, and never again.
 * Exit codes: 0 done; 1 refused (unknown organization or token, invalid option).
 */
import { userInfo } from "node:os";
import { InvalidArgumentError, type Command } from "commander";
import type { Actor } from "../directory/audit.js";
import type { OpenDatabase } from "../directory/database.js";
import {
  adminTokenSummary,
  defaultAdminTokenDays,
  issueAdminToken,
  listAdminTokens,
  maxAdminTokenDays,
  revokeAdminToken,
  type AdminTokenRow,
} from "../directory/admin-tokens.js";
import { getOrganization, listOrganizations } from "../directory/organizations.js";
import { isBridgeError } from "../errors.js";

const operator = (): Actor => ({ type: "operator", id: `cli:${userInfo().username}` });

function parseDays(value: string): number {
  if (!/^\d+$/.test(value) || Number(value) < 1 || Number(value) > maxAdminTokenDays) {
    throw new InvalidArgumentError(`a whole number of days from 1 to ${maxAdminTokenDays}`);
  }
  return Number(value);
}

function withDb<T>(openDb: () => OpenDatabase, fn: (db: OpenDatabase["db"]) => T): T | undefined {
  const handle = openDb();
  try {
    return fn(handle.db);
  } catch (e) {
    if (!isBridgeError(e)) throw e;
    console.error(`${e.kind}: ${e.message}`);
    process.exitCode = 1;
    return undefined;
  } finally {
    handle.close();
  }
}

const iso = (ms: number | null): string => (ms === null ? "-" : new Date(ms).toISOString());
const state = (t: AdminTokenRow, now: number): string =>
  t.revokedAt !== null ? "revoked" : t.expiresAt !== null && t.expiresAt <= now ? "expired" : "active";

export function registerAdminCommands(program: Command, openDb: () => OpenDatabase): void {
  const tokens = program.command("admin-token").description("admin API tokens: operator (every organization) or org-admin (one)");

  tokens
    .command("issue")
    .description("issue an admin token and print it once (operator scope unless --org is given)")
    .option("--org <slug>", "org-admin token for this organization (slug or id)")
    .option("--name <name>", "what the token is for (shown in listings and the audit trail)")
    .option("--expires-in <days>", `lifetime in days (default ${defaultAdminTokenDays})`, parseDays)
    .option("--json", "machine-readable output")
    .action((opts: { org?: string; name?: string; expiresIn?: number; json?: boolean }) => {
      withDb(openDb, (db) => {
        let organizationId: string | null = null;
        if (opts.org !== undefined) {
          const org = getOrganization(db, opts.org);
          if (!org) {
            console.error(`organization "${opts.org}" not found`);
            process.exitCode = 1;
            return;
          }
          organizationId = org.id;
        }
        const scope = organizationId ? "org_admin" : "operator";
        const name = opts.name ?? `${scope} token issued by ${userInfo().username}`;
        const issued = db.transaction(
          (tx) => issueAdminToken(tx, { scope, organizationId, name, expiresInDays: opts.expiresIn }, operator()),
          { behavior: "immediate" },
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
    .action((opts: { json?: boolean }) => {
      withDb(openDb, (db) => {
        const now = Date.now();
        const rows = listAdminTokens(db);
        if (opts.json) return void console.log(JSON.stringify(rows.map(adminTokenSummary), null, 2));
        if (rows.length === 0) return void console.log("no admin tokens issued (BRIDGE_ADMIN_TOKEN, if set, is the bootstrap operator token)");
        const slugs = new Map(listOrganizations(db).map((o) => [o.id, o.slug]));
        for (const t of rows) {
          const scope = t.organizationId ? `org_admin:${slugs.get(t.organizationId) ?? t.organizationId}` : "operator";
          console.log([t.id, `…${t.hint}`, state(t, now).padEnd(7), scope, `expires ${iso(t.expiresAt)}`, `last used ${iso(t.lastUsedAt)}`, t.name].join("  "));
        }
      });
    });

  tokens
    .command("revoke <id>")
    .description("revoke an admin token now")
    .action((id: string) => {
      withDb(openDb, (db) => {
        const row = db.transaction((tx) => revokeAdminToken(tx, id, operator()), { behavior: "immediate" });
        console.log(`admin token ${row.id} (…${row.hint}) revoked`);
      });
    });
}
