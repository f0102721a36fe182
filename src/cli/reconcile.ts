import type { Command } from "commander";
import { getOrganization } from "../directory/organizations.js";
import type { SyncEngine } from "../sync/engine.js";
import { Lane } from "../directory/outbox.js";
import { createProgress } from "./progress.js";
import type { SqlStore } from "../directory/sql.js";
import { deadJobsSince, openJobCount } from "../sync/job-queries.js";

/** The store and the sync engine over it; the command closes the store when done. */
export interface ReconcileContext {
  store: SqlStore;
  engine: SyncEngine;
}

/**
 * `scim-bridge reconcile <org> [--dry-run]`: compares Auth0 with what the bridge applied and, unless
 * --dry-run, repairs it: the drifted users are re-reconciled right here (the same worker code as the
 * server) until the organization's queue is empty.
 */
export function registerReconcileCommand(program: Command, open: () => Promise<ReconcileContext>): void {
  program
    .command("reconcile <org>")
    .description("compare Auth0 with the directory for one organization and repair any drift")
    .option("--dry-run", "report the drift, change nothing")
    .option("--json", "print the report as JSON")
    .action(async (orgRef: string, opts: { dryRun?: boolean; json?: boolean }) => {
      const ctx = await open();
      try {
        const org = await ctx.store.read(getOrganization(orgRef));
        if (!org) {
          console.error(`organization "${orgRef}" not found`);
          process.exitCode = 1;
          return;
        }
        const startedAt = Date.now();
        let failed: string[] = [];
        const progress = createProgress({ label: `scanning ${org.slug}`, silent: opts.json === true });
        // Loaded when used: the Auth0 gateway it brings would slow every other command's start-up.
        const { scanDrift } = await import("../sync/drift.js");
        const report = await scanDrift(ctx.engine.deps, org.id, {
          repair: !opts.dryRun,
          lane: Lane.background,
          onProgress: (done, total) => progress.update(done, total),
        });
        progress.finish(`${report.checked} linked users checked, ${report.drifted.length} drifted`);
        if (!opts.dryRun) {
          const repair = createProgress({ label: "repairing", silent: opts.json === true });
          ctx.engine.worker.start();
          const open = () => ctx.store.read(openJobCount(org.id));
          const initial = await open();
          for (let left = initial; left > 0; left = await open()) {
            repair.update(initial - left, initial);
            await new Promise((r) => setTimeout(r, 200));
          }
          await ctx.engine.worker.stop();
          repair.finish("queue empty");
          // An empty queue is not a repaired organization: jobs that went dead did not converge.
          failed = (await ctx.store.read(deadJobsSince(org.id, startedAt))).map(
            (j) => `${j.userName ?? `${j.kind} ${j.subjectId}`}: ${j.lastError ?? "failed"}`,
          );
        }
        if (opts.json) {
          console.log(JSON.stringify(report));
        } else {
          for (const u of report.drifted) console.log(`${u.userName}: ${u.differences.join("; ")}`);
          console.log(
            `${report.drifted.length} drifted, ${report.unsynced} not yet synced, ${report.unmanagedMembers.length} Auth0 members not managed by the bridge${opts.dryRun ? " (dry run: nothing changed)" : ""}`,
          );
          if (report.recent > 0)
            console.log(
              `${report.recent} written by the bridge moments ago, not judged yet (Auth0 may not show the write yet; the next scan checks them)`,
            );
        }
        if (failed.length > 0) {
          console.error(`${failed.length} repair${failed.length === 1 ? "" : "s"} failed:\n  ${failed.join("\n  ")}`);
          process.exitCode = 1;
        }
        if (opts.dryRun && report.drifted.length > 0) process.exitCode = 2;
      } finally {
        ctx.engine.limiter.stop();
        await ctx.store.close();
      }
    });
}
