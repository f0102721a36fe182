/**
 * Prometheus metrics: SCIM requests, the job queue, Auth0 calls and the rate budget, and
 * the deprovision latency per organization (docs/design.md, invariant 3). Each createMetrics() has its
 * own Registry: the composition root creates one and passes it in; tests build as many as they like.
 *
 * Labels carry route templates ("/scim/v2/:directory/Users/:id"), never raw URLs, so cardinality
 * stays bounded and no user id, userName or email can reach a label.
 */
import { Router, type RequestHandler } from "express";
import { organizationSlug } from "../directory/organizations.js";
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";
import type { CallObserver } from "../auth0/gateway.js";
import type { EndpointClass } from "../auth0/rate-limiter.js";
import type { ConflictRetry, SqlStore } from "../directory/sql.js";
import { routeTemplate, trackRoute } from "../logging.js";
import { Lane, laneName } from "../directory/outbox.js";
import { queueDepth } from "../sync/job-queries.js";
import type { WorkerEvents } from "../sync/worker.js";
import type { JobOutcomeEvent } from "../sync/engine-thread.js";

/** States that make up the queue (done jobs are history, not depth). */
const queueStates = ["pending", "running", "dead"] as const;

export interface QueueDepthRow {
  lane: number;
  state: string;
  count: number;
}

/** What the rate-budget gauge needs from RateLimiter.snapshot(). */
export interface RateBudgetRow {
  name: string;
  tokens: number;
  capacity: number;
}

export interface MetricsOptions {
  /** Clock for the deprovision latency (epoch ms). */
  now?: () => number;
  /** Label value for an organization id (e.g. its slug); defaults to the id itself. */
  organizationLabel?: (organizationId: string) => string | Promise<string>;
  /** Node.js process metrics (CPU, memory, event-loop lag); on by default. */
  defaultMetrics?: boolean;
}

export interface Metrics {
  registry: Registry;
  scimRequests: Counter<"route" | "method" | "status">;
  scimRequestDuration: Histogram<"route" | "method" | "status">;
  jobOutcomes: Counter<"kind" | "lane" | "outcome">;
  jobQueueDepth: Gauge<"lane" | "state">;
  auth0Calls: Counter<"endpoint" | "status">;
  auth0CallDuration: Histogram<"endpoint">;
  auth0RateLimited: Counter<"endpoint">;
  auth0RateBudget: Gauge<"bucket">;
  auth0RateCapacity: Gauge<"bucket">;
  deprovisionLatency: Histogram<"organization">;
  auth0Failures: Counter<"organization" | "error_code">;
  /** Counts a reconcile that failed on an Auth0 error (wire as the sync engine's onAuth0Failure). */
  auth0Failure(organizationId: string, errorCode: string): void;
  /** Crashes of the sync engine's worker thread (each is logged and the thread replaced). */
  syncThreadCrashes: Counter;
  /** Counts a job outcome (the worker's onOutcome, or one forwarded from the sync thread with its completion time). */
  jobOutcome(event: JobOutcomeEvent): void;
  /** SCIM requests refused before authentication: "rejected" (401) or "limited" (429, too many failures from the address). */
  unauthenticatedRequests: Counter<"outcome">;
  /** PostgreSQL units of work run again after a deadlock (40P01) or serialization failure (40001). */
  storeConflictRetries: Counter<"code" | "unit">;
  /** Counts one such retry (wire as the PostgreSQL store's onConflictRetry). */
  storeConflictRetry(retry: ConflictRetry): void;
  /** Counts and times every request that passes through it, labelled by route template. */
  httpMetricsMiddleware(): RequestHandler;
  /** Read on every scrape, e.g. `() => queueDepthFromDb(db)`. */
  setQueueDepthSource(source: () => QueueDepthRow[] | Promise<QueueDepthRow[]>): void;
  /** Read on every scrape, e.g. `() => limiter.snapshot()`. */
  setRateBudgetSource(source: () => RateBudgetRow[]): void;
  /** Pass to `new Auth0Gateway(client, limiter, metrics.callObserver)`. */
  callObserver: CallObserver;
  /** Pass as `new Worker({ …, events: metrics.workerEvents })`. */
  workerEvents: WorkerEvents;
}

const prefix = "scim_bridge_";

export function createMetrics(options: MetricsOptions = {}): Metrics {
  const now = options.now ?? Date.now;
  const organizationLabel = options.organizationLabel ?? ((id: string) => id);
  // A label not cached yet is read from the store: the sample is recorded once it is known (the id
  // if the read fails), so one organization's series never splits between its id and its slug.
  const withLabel = (organizationId: string, record: (label: string) => void): void => {
    const label = organizationLabel(organizationId);
    if (typeof label === "string") record(label);
    else label.then(record, () => record(organizationId));
  };
  const registry = new Registry();
  const registers = [registry];
  if (options.defaultMetrics ?? true) collectDefaultMetrics({ register: registry });

  let queueDepthSource: (() => QueueDepthRow[] | Promise<QueueDepthRow[]>) | undefined;
  let rateBudgetSource: (() => RateBudgetRow[]) | undefined;

  const scimRequests = new Counter({
    name: `${prefix}scim_requests_total`,
    help: "HTTP requests by route template, method and status",
    labelNames: ["route", "method", "status"] as const,
    registers,
  });
  const scimRequestDuration = new Histogram({
    name: `${prefix}scim_request_duration_seconds`,
    help: "HTTP request duration by route template, method and status",
    labelNames: ["route", "method", "status"] as const,
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers,
  });
  const jobOutcomes = new Counter({
    name: `${prefix}job_outcomes_total`,
    help: "Job runs by kind, lane and outcome as the handler reported it (done, retry, dead)",
    labelNames: ["kind", "lane", "outcome"] as const,
    registers,
  });
  const jobQueueDepth: Gauge<"lane" | "state"> = new Gauge({
    name: `${prefix}job_queue_depth`,
    help: "Jobs by lane and state (pending, running, dead), read from the database at scrape time",
    labelNames: ["lane", "state"] as const,
    registers,
    async collect() {
      if (!queueDepthSource) return;
      let rows: QueueDepthRow[];
      try {
        rows = await queueDepthSource();
      } catch {
        // The database is closing (shutdown) or broken: /readyz reports that; a scrape must not fail.
        return;
      }
      jobQueueDepth.reset();
      for (const lane of Object.values(Lane))
        for (const state of queueStates) jobQueueDepth.set({ lane: laneName(lane), state }, 0);
      for (const row of rows) jobQueueDepth.set({ lane: laneName(row.lane), state: row.state }, row.count);
    },
  });
  const auth0Calls = new Counter({
    name: `${prefix}auth0_calls_total`,
    help: "Auth0 Management API calls by endpoint class and HTTP status (network_error when no response)",
    labelNames: ["endpoint", "status"] as const,
    registers,
  });
  const auth0CallDuration = new Histogram({
    name: `${prefix}auth0_call_duration_seconds`,
    help: "Auth0 Management API call duration by endpoint class (node-auth0 retries included)",
    labelNames: ["endpoint"] as const,
    buckets: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
    registers,
  });
  const auth0RateLimited = new Counter({
    name: `${prefix}auth0_rate_limited_total`,
    help: "Auth0 Management API calls answered 429 by endpoint class",
    labelNames: ["endpoint"] as const,
    registers,
  });
  // Tokens left and bucket size, both read from the limiter's snapshot at scrape time.
  const budgetGauge = (name: string, help: string, value: (b: RateBudgetRow) => number): Gauge<"bucket"> => {
    const gauge: Gauge<"bucket"> = new Gauge({
      name,
      help,
      labelNames: ["bucket"] as const,
      registers,
      collect() {
        let rows: RateBudgetRow[] | undefined;
        try {
          rows = rateBudgetSource?.();
        } catch {
          return;
        }
        if (!rows) return;
        gauge.reset();
        for (const b of rows) gauge.set({ bucket: b.name }, value(b));
      },
    });
    return gauge;
  };
  const auth0RateBudget = budgetGauge(
    `${prefix}auth0_rate_budget_tokens`,
    "Tokens left in each Auth0 rate-limit bucket, as the bridge's limiter estimates them",
    (b) => Math.max(0, b.tokens),
  );
  const auth0RateCapacity = budgetGauge(
    `${prefix}auth0_rate_budget_capacity`,
    "Size (burst) of each Auth0 rate-limit bucket, learned from x-ratelimit-limit",
    (b) => b.capacity,
  );
  const deprovisionLatency = new Histogram({
    name: `${prefix}deprovision_latency_seconds`,
    help: "From the acknowledgement of a deactivation, deletion or hold to its deprovision job completing, per organization",
    labelNames: ["organization"] as const,
    buckets: [0.1, 0.25, 0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300],
    registers,
  });

  const auth0Failures = new Counter({
    name: `${prefix}auth0_failures_total`,
    help: "Reconciles that failed on an Auth0 error, by organization and Auth0 error code (HTTP status when Auth0 gave none)",
    labelNames: ["organization", "error_code"] as const,
    registers,
  });

  const unauthenticatedRequests = new Counter({
    name: `${prefix}unauthenticated_requests_total`,
    help: "SCIM requests refused for missing or wrong credentials (rejected: 401) or throttled after repeated failures from one address (limited: 429)",
    labelNames: ["outcome"] as const,
    registers,
  });

  const storeConflictRetries = new Counter({
    name: `${prefix}store_conflict_retries_total`,
    help: "PostgreSQL units of work run again after losing a deadlock (code 40P01) or a serialization check (40001), by SQLSTATE and unit (write or read)",
    labelNames: ["code", "unit"] as const,
    registers,
  });

  const httpMetricsMiddleware = (): RequestHandler => (req, res, next) => {
    trackRoute(req);
    const started = process.hrtime.bigint();
    let recorded = false;
    const record = (status: string): void => {
      if (recorded) return;
      recorded = true;
      const labels = { route: routeTemplate(req) ?? "(unmatched)", method: req.method, status };
      scimRequests.inc(labels);
      scimRequestDuration.observe(labels, Number(process.hrtime.bigint() - started) / 1e9);
    };
    res.once("finish", () => record(String(res.statusCode)));
    // The client went away before the answer (Okta closes the socket at 60 s).
    res.once("close", () => record(res.writableFinished ? String(res.statusCode) : "aborted"));
    next();
  };

  const callObserver: CallObserver = {
    onCall(cls: EndpointClass, status: number, durationMs: number) {
      auth0Calls.inc({ endpoint: cls, status: status === 0 ? "network_error" : String(status) });
      auth0CallDuration.observe({ endpoint: cls }, durationMs / 1000);
      if (status === 429) auth0RateLimited.inc({ endpoint: cls });
    },
  };

  const syncThreadCrashes = new Counter({
    name: `${prefix}sync_thread_crashes_total`,
    help: "Crashes of the sync worker thread; each is logged at error and the thread restarted with back-off",
    registers,
  });

  const jobOutcome = (event: JobOutcomeEvent): void => {
    jobOutcomes.inc({ kind: event.kind, lane: laneName(event.lane), outcome: event.status });
    if (event.lane === Lane.deprovision && event.status === "done") {
      const seconds = Math.max(0, event.at - event.firstEnqueuedAt) / 1000;
      withLabel(event.organizationId, (organization) => deprovisionLatency.observe({ organization }, seconds));
    }
  };

  const workerEvents: WorkerEvents = {
    onOutcome(job, outcome) {
      jobOutcome({
        kind: job.kind,
        lane: job.lane,
        organizationId: job.organizationId,
        firstEnqueuedAt: job.firstEnqueuedAt,
        status: outcome.status,
        at: now(),
      });
    },
  };

  return {
    registry,
    scimRequests,
    scimRequestDuration,
    jobOutcomes,
    jobQueueDepth,
    auth0Calls,
    auth0CallDuration,
    auth0RateLimited,
    auth0RateBudget,
    auth0RateCapacity,
    deprovisionLatency,
    auth0Failures,
    auth0Failure: (organizationId, errorCode) =>
      withLabel(organizationId, (organization) => auth0Failures.inc({ organization, error_code: errorCode })),
    syncThreadCrashes,
    jobOutcome,
    unauthenticatedRequests,
    storeConflictRetries,
    storeConflictRetry: (retry) => storeConflictRetries.inc({ code: retry.code, unit: retry.write ? "write" : "read" }),
    httpMetricsMiddleware,
    setQueueDepthSource: (source) => void (queueDepthSource = source),
    setRateBudgetSource: (source) => void (rateBudgetSource = source),
    callObserver,
    workerEvents,
  };
}

/** Queue depth by lane and state (done rows excluded), as the admin API and the CLI count it. */
export const queueDepthFromDb = async (store: SqlStore): Promise<QueueDepthRow[]> =>
  (await store.read(queueDepth())).map(({ lane, state, count }) => ({ lane, state, count }));

/**
 * Organization label by slug, for MetricsOptions.organizationLabel: the cached slug, or a read of it.
 * Slugs never change, so the cache stays correct with several instances on one database.
 */
export function organizationSlugs(store: SqlStore): (organizationId: string) => string | Promise<string> {
  const cache = new Map<string, string>();
  return (id) =>
    cache.get(id) ??
    store.read(organizationSlug(id)).then((found) => {
      const slug = found ?? id;
      cache.set(id, slug);
      return slug;
    });
}

/** GET /metrics in the Prometheus text format. Mount at the app root, outside SCIM auth. */
export function metricsRouter(metrics: Metrics): Router {
  const router = Router();
  router.get("/metrics", async (_req, res) => {
    const body = await metrics.registry.metrics();
    res.set("Cache-Control", "no-store").type(metrics.registry.contentType).send(body);
  });
  return router;
}
