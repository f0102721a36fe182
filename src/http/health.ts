/**
 * Liveness and readiness. /healthz answers while the process serves HTTP (a container HEALTHCHECK
 * restarts it otherwise). /readyz says whether it should receive traffic: the database answers and
 * the job worker is alive. A worker that stopped polling means acknowledged deprovisions are not
 * reaching Auth0, which is exactly what an operator must hear about. So is a tenant the bridge cannot
 * work with: Auth0 unreachable, credentials refused, a scope or a mapped connection missing (the
 * background tenant checks; `scim-bridge doctor` runs the same ones).
 */
import { Router, type Response } from "express";
import { ping } from "../directory/operator-views.js";
import type { SqlStore } from "../directory/sql.js";
import { readinessProblems, type TenantStatus } from "../sync/tenant-checks.js";
import type { ReadPoolHealth } from "../scim/read-pool.js";
import type { SyncThreadHealth } from "../sync/engine-thread.js";

export interface HealthOptions {
  /** The store SCIM requests read and write (SQLite or PostgreSQL). */
  store: SqlStore;
  /** The job worker; omitted where none runs (e.g. a SCIM-only process). */
  worker?: { lastTickAt: number };
  /** A worker whose last poll is older than this is reported dead (default 15 s; it polls every 50 ms). */
  staleAfterMs?: number;
  /** True once a graceful shutdown started, so that load balancers stop sending traffic. */
  shuttingDown?: () => boolean;
  /** The sync engine's worker thread; omitted when the worker runs on the main thread. */
  syncThread?: { health(): SyncThreadHealth };
  /** The SCIM read pool; omitted when reads run on the main thread. */
  readPool?: { health(): ReadPoolHealth };
  /** The tenant checks' last report; omitted where the process does not talk to Auth0. */
  tenant?: TenantStatus;
  now?: () => number;
}

/** A trivial read unit (SELECT 1): fails when the store cannot run one (file gone, server down, pool exhausted). */
async function pingDatabase(store: SqlStore): Promise<void> {
  if (!(await store.read(ping()))) throw new Error("SELECT 1 returned no row");
}

const noStore = (res: Response): Response => res.set("Cache-Control", "no-store");

/** GET /healthz and GET /readyz. Mount at the app root, outside authentication. */
export function healthRouter(options: HealthOptions): Router {
  const staleAfterMs = options.staleAfterMs ?? 15_000;
  const now = options.now ?? Date.now;
  const router = Router();

  router.get("/healthz", (_req, res) => {
    noStore(res).json({ status: "ok" });
  });

  router.get("/readyz", async (_req, res) => {
    const checks: Record<string, string> = {};
    const problems: string[] = [];

    try {
      await pingDatabase(options.store);
      checks.database = "ok";
    } catch (err) {
      checks.database = "unreachable";
      problems.push(`database: ${err instanceof Error ? err.message : String(err)}`);
    }

    if (options.worker) {
      const last = options.worker.lastTickAt;
      const age = now() - last;
      if (last === 0) {
        checks.worker = "not started";
        problems.push("worker: has not polled for jobs yet");
      } else if (age > staleAfterMs) {
        checks.worker = "stale";
        problems.push(
          `worker: last polled ${Math.round(age / 1000)} s ago (limit ${Math.round(staleAfterMs / 1000)} s)`,
        );
      } else {
        checks.worker = "ok";
      }
    }

    let syncThread: object | undefined;
    if (options.syncThread) {
      // A crashed thread is replaced with back-off; until the new one runs no job reaches Auth0.
      // Past crashes stay in the body (with a 200 once it runs again), so a probe can see them.
      const thread = options.syncThread.health();
      checks.syncThread = thread.status;
      if (thread.status === "restarting")
        problems.push(`sync thread: ${thread.lastCrash?.problem ?? "crashed"}; restarting`);
      if (thread.crashes > 0) syncThread = { crashes: thread.crashes, lastCrash: thread.lastCrash };
    }

    if (options.readPool) {
      // Threads still starting are not a problem (reads wait for them); none able to start is.
      const pool = options.readPool.health();
      checks.readPool = pool.status;
      if (pool.status === "failed" || pool.status === "closed")
        problems.push(`read pool: ${pool.problem ?? "closed"}; SCIM reads answer 503`);
    }

    let auth0: object | undefined;
    if (options.tenant) {
      const report = options.tenant.current();
      if (!report) {
        checks.auth0 = "checking";
        problems.push("auth0: the first tenant check has not finished yet");
      } else {
        const found = readinessProblems(report);
        checks.auth0 =
          report.auth0 !== "ok"
            ? report.auth0
            : report.missingScopes.length > 0
              ? "missing scopes"
              : found.length > 0
                ? "connection missing"
                : "ok";
        problems.push(...found);
        auth0 = {
          tenant: report.tenant,
          checkedAt: report.checkedAt,
          status: report.auth0,
          missingScopes: report.missingScopes.map((m) => m.scope),
          failedChecks: report.checks.filter((c) => c.status === "fail").map((c) => c.id),
        };
      }
    }

    if (options.shuttingDown?.()) {
      checks.shutdown = "in progress";
      problems.push("shutdown: the process is stopping");
    }

    const extra = { ...(auth0 ? { auth0 } : {}), ...(syncThread ? { syncThread } : {}) };
    if (problems.length > 0)
      noStore(res)
        .status(503)
        .json({ status: "unavailable", checks, problems, ...extra });
    else noStore(res).json({ status: "ok", checks, ...extra });
  });

  return router;
}
