import type { Command } from "commander";
import { getOrganization } from "../directory/organizations.js";
import type { SqlStore } from "../directory/sql.js";
import { isBridgeError } from "../errors.js";
import type { SyncEngine } from "../sync/engine.js";
import type { ImportApi } from "../sync/import/client.js";
import { formatOf, importFormats, type ImportFormat } from "../sync/import/records.js";
import type { ImportDeps, ImportReport } from "../sync/import/service.js";
import { createProgress } from "./progress.js";

/** What `users import` needs: the database, and for a real import the sync engine and the import job client. */
export interface UsersContext {
  store: SqlStore;
  engine?: SyncEngine;
  api?: ImportApi;
}

const noAuth0: ImportApi = {
  submit: () => Promise.reject(new Error("a dry run sends nothing")),
  status: () => Promise.reject(new Error("a dry run sends nothing")),
  errors: () => Promise.reject(new Error("a dry run sends nothing")),
};

const noGateway: ImportDeps["gateway"] = {
  connectionId: () => Promise.reject(new Error("a dry run sends nothing")),
  findUsersByEmail: () => Promise.reject(new Error("a dry run sends nothing")),
  getUser: () => Promise.reject(new Error("a dry run sends nothing")),
};

function printReport(report: ImportReport): void {
  for (const p of report.problems) console.log(`record ${p.record}${p.field ? `, ${p.field}` : ""}: ${p.message}`);
  if (report.problemCount > report.problems.length)
    console.log(`… and ${report.problemCount - report.problems.length} more problems`);
  if (report.state === "invalid") {
    console.log(
      `${report.problemCount} problem${report.problemCount === 1 ? "" : "s"} in ${report.records} records of ${report.fileName}: nothing was sent to Auth0`,
    );
    return;
  }
  if (report.state === "planned") {
    console.log(
      `${report.records} records valid; they would go to Auth0 as ${report.chunks} import job${report.chunks === 1 ? "" : "s"} (dry run: nothing was sent)`,
    );
    return;
  }
  for (const f of report.failures)
    console.log(
      `record ${f.record}${f.email ? ` (${f.email})` : ""}${f.field ? `, ${f.field}` : ""}: ${f.code} ${f.message}`,
    );
  const imported = report.inserted + report.updated + report.recovered;
  console.log(
    `${report.state}${report.resumed ? " (resumed)" : ""}: ${imported} of ${report.records} users imported (${report.inserted} new, ${report.updated} updated` +
      `${report.recovered ? `, ${report.recovered} by an earlier attempt` : ""}), ${report.failed} refused by Auth0, ${report.linked} recorded in the directory` +
      (report.lastError ? `; ${report.lastError}` : ""),
  );
}

/**
 * `scim-bridge users import <org> <file>`: migrates an organization's legacy users into Auth0 with
 * their password hashes (see docs/migrating-users.md), then adds them to the organization with the
 * mapping's roles, right here with the same worker code as the server. Running it again with the
 * same file resumes an interrupted import.
 */
export function registerUsersCommands(program: Command, open: (needAuth0: boolean) => Promise<UsersContext>): void {
  const users = program.command("users").description("bulk operations on an organization's users");
  users
    .command("import <org> <file>")
    .description("import legacy users with their password hashes into Auth0 (validates everything first; resumable)")
    .option("--format <format>", `file format: ${importFormats.join(", ")} (default: from the file name)`)
    .option("--directory <id>", "the directory the migrated users belong to (when the organization has several)")
    .option("--dry-run", "validate and plan only; send nothing")
    .option("--upsert", "update users that already exist in Auth0 (matched by email) instead of refusing them")
    .option("--no-sync", "leave membership and roles to the server's worker instead of applying them now")
    .option("--json", "print the report as JSON")
    .action(
      async (
        orgRef: string,
        file: string,
        opts: {
          format?: string;
          directory?: string;
          dryRun?: boolean;
          upsert?: boolean;
          sync: boolean;
          json?: boolean;
        },
      ) => {
        const format = (opts.format ?? formatOf(file)) as ImportFormat | undefined;
        if (!format || !importFormats.includes(format)) {
          console.error(`cannot tell the format of ${file}: pass --format ${importFormats.join("|")}`);
          process.exitCode = 1;
          return;
        }
        const ctx = await open(opts.dryRun !== true);
        const abort = new AbortController();
        const stop = () => abort.abort();
        process.once("SIGINT", stop);
        process.once("SIGTERM", stop);
        try {
          const org = await ctx.store.read(getOrganization(orgRef));
          if (!org) {
            console.error(`organization "${orgRef}" not found`);
            process.exitCode = 1;
            return;
          }
          const progress = createProgress({ label: `importing into ${org.slug}`, silent: opts.json === true });
          // Loaded when used: the Auth0 gateway it brings would slow every other command's start-up.
          const { runImport } = await import("../sync/import/service.js");
          const { openJobCount } = await import("../sync/job-queries.js");
          const report = await runImport(
            {
              store: ctx.store,
              api: ctx.api ?? noAuth0,
              gateway: ctx.engine?.gateway ?? noGateway,
            },
            {
              organization: org.id,
              ...(opts.directory ? { directory: opts.directory } : {}),
              filePath: file,
              format,
              upsert: opts.upsert === true,
              dryRun: opts.dryRun === true,
              actor: { type: "operator", id: "cli" },
              signal: abort.signal,
              onProgress: (p) =>
                p.phase === "validating"
                  ? progress.update(p.records)
                  : progress.update(p.imported + p.failed, p.records),
            },
          );
          progress.finish(report.state);
          if (report.state === "done" && report.linked > 0 && opts.sync && ctx.engine) {
            // The reconcile jobs the import enqueued: membership (10 per call) and the mapping's roles.
            const open = () => ctx.store.read(openJobCount(org.id));
            const membership = createProgress({ label: "membership and roles", silent: opts.json === true });
            ctx.engine.worker.start();
            const initial = await open();
            for (let left = initial; left > 0 && !abort.signal.aborted; left = await open()) {
              membership.update(initial - left, initial);
              await new Promise((r) => setTimeout(r, 200));
            }
            await ctx.engine.worker.stop();
            membership.finish(abort.signal.aborted ? "stopped; the server's worker finishes the rest" : "done");
          }
          if (opts.json) console.log(JSON.stringify(report));
          else printReport(report);
          if (report.state !== "done" && report.state !== "planned")
            process.exitCode = report.state === "stopped" ? 130 : 1;
          else if (report.failed > 0) process.exitCode = 2;
        } catch (err) {
          if (!isBridgeError(err)) throw err;
          console.error(err.message);
          process.exitCode = 1;
        } finally {
          process.off("SIGINT", stop);
          process.off("SIGTERM", stop);
          ctx.engine?.limiter.stop();
          await ctx.store.close();
        }
      },
    );
}
