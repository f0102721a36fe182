import { afterEach, describe, expect, it, vi } from "vitest";
import express from "express";
import request from "supertest";
import type { SqlStore } from "../../src/directory/sql.js";
import { createMetrics, metricsRouter, organizationSlugs, queueDepthFromDb } from "../../src/http/metrics.js";
import { onboardOrganizationOp } from "../../src/admin/onboarding.js";
import { changeBy } from "../../src/directory/write-context.js";
import { requestId } from "../../src/http/request-id.js";
import { errorMiddleware } from "../../src/http/errors.js";
import { createLogger } from "../../src/logging.js";
import { RateLimiter, rateProfile } from "../../src/auth0/rate-limiter.js";
import { enqueueJob, Lane } from "../../src/directory/outbox.js";
import type { JobRow } from "../../src/sync/worker.js";
import { exec } from "../../src/directory/store-op.js";
import { openTestStores } from "../support/test-dialect.js";

let opened: { close(): Promise<void> }[] = [];
afterEach(async () => {
  for (const o of opened) await o.close();
  opened = [];
});

/** A store on a new database of the run's dialect (vitest.config.ts runs this suite on both). */
async function open(): Promise<SqlStore> {
  const o = await openTestStores(1);
  opened.push(o);
  return o.stores[0]!;
}

const userId = "2819c223-7f76-453a-919d-413861904646";

function job(overrides: Partial<JobRow>): JobRow {
  return {
    id: 1,
    organizationId: "org-1",
    directoryId: "dir-abc2def3",
    kind: "user",
    key: `user:${userId}`,
    subjectId: userId,
    lane: Lane.provision,
    state: "running",
    attempts: 0,
    leaseToken: 0,
    runAfter: 0,
    leaseOwner: null,
    leaseExpiresAt: null,
    lastError: null,
    firstEnqueuedAt: 0,
    createdAt: 0,
    updatedAt: 0,
    ...overrides,
  };
}

/** The sample lines of one metric family, e.g. lines("scim_bridge_job_outcomes_total"). */
const samples = (text: string, name: string): string[] =>
  text.split("\n").filter((l) => l.startsWith(`${name}{`) || l.startsWith(`${name} `));

function bridgeLikeApp(metrics: ReturnType<typeof createMetrics>) {
  const app = express();
  app.use(requestId());
  app.use(metricsRouter(metrics));
  app.use("/scim", metrics.httpMetricsMiddleware());
  const scim = express.Router({ mergeParams: true });
  scim.get("/Users", (_req, res) => void res.json({ totalResults: 0 }));
  scim.get(
    "/Users/:id",
    (req, res) => void (req.params.id === userId ? res.json({ id: userId }) : res.status(404).json({ status: "404" })),
  );
  scim.patch("/Users/:id", (_req, res) => void res.status(204).end());
  scim.put("/Users/:id", () => {
    throw new Error("bug");
  });
  app.use("/scim/v2/:directory", scim);
  app.use(errorMiddleware("auto", createLogger({ level: "silent" })));
  return app;
}

describe("/metrics", () => {
  it("exposes every named series with the expected labels after some traffic", async () => {
    const store = await open();
    await store.write(enqueueJob({ organizationId: "org-1", kind: "user", subjectId: "u1", lane: Lane.deprovision }));
    await store.write(enqueueJob({ organizationId: "org-1", kind: "user", subjectId: "u2", lane: Lane.provision }));
    await store.write(enqueueJob({ organizationId: "org-1", kind: "user", subjectId: "u3", lane: Lane.provision }));

    let now = 1_000_000;
    const metrics = createMetrics({
      now: () => now,
      organizationLabel: (id) => (id === "org-1" ? "acme" : id),
      defaultMetrics: false,
    });
    metrics.setQueueDepthSource(() => queueDepthFromDb(store));
    const limiter = new RateLimiter(rateProfile("essentials"));
    metrics.setRateBudgetSource(() => limiter.snapshot());
    const app = bridgeLikeApp(metrics);

    // SCIM traffic: a filter holding an email, a read by id, a miss, a PATCH, and an unknown path.
    await request(app).get('/scim/v2/dir-abc2def3/Users?filter=userName eq "ann@acme.test"').expect(200);
    await request(app).get(`/scim/v2/dir-abc2def3/Users/${userId}`).expect(200);
    await request(app).get("/scim/v2/dir-abc2def3/Users/ann@acme.test").expect(404);
    await request(app).patch(`/scim/v2/dir-zzz9yyy8/Users/${userId}`).expect(204);
    await request(app).get("/scim/v2/dir-abc2def3/Nothing").expect(404);

    // Worker outcomes: a deprovision done 1.5 s after it was acknowledged, a provision retry, a dead job.
    metrics.workerEvents.onOutcome?.(
      job({ lane: Lane.deprovision, firstEnqueuedAt: now - 1500 }),
      { status: "done" },
      40,
    );
    metrics.workerEvents.onOutcome?.(job({ lane: Lane.provision }), { status: "retry", reason: "Auth0 503" }, 12);
    metrics.workerEvents.onOutcome?.(
      job({ kind: "organization", lane: Lane.background }),
      { status: "dead", reason: "connection missing" },
      5,
    );
    now += 1000;

    // Auth0 calls through the gateway's observer: two successes, one 429, one network failure.
    metrics.callObserver.onCall?.("usersWrite", 200, 80);
    metrics.callObserver.onCall?.("usersWrite", 200, 95);
    metrics.callObserver.onCall?.("orgMembersWrite", 429, 10);
    metrics.callObserver.onCall?.("usersRead", 0, 5000);
    limiter.observe(
      "usersWrite",
      200,
      new Headers({ "x-ratelimit-limit": "20", "x-ratelimit-remaining": "7", "x-ratelimit-reset": "0" }),
    );

    const res = await request(app).get("/metrics").expect(200);
    expect(res.headers["content-type"]).toMatch(/^text\/plain; version=0\.0\.4/);
    const text = res.text;

    const scim = samples(text, "scim_bridge_scim_requests_total");
    expect(scim).toContain(
      'scim_bridge_scim_requests_total{route="/scim/v2/:directory/Users",method="GET",status="200"} 1',
    );
    expect(scim).toContain(
      'scim_bridge_scim_requests_total{route="/scim/v2/:directory/Users/:id",method="GET",status="200"} 1',
    );
    expect(scim).toContain(
      'scim_bridge_scim_requests_total{route="/scim/v2/:directory/Users/:id",method="GET",status="404"} 1',
    );
    expect(scim).toContain(
      'scim_bridge_scim_requests_total{route="/scim/v2/:directory/Users/:id",method="PATCH",status="204"} 1',
    );
    expect(scim).toContain('scim_bridge_scim_requests_total{route="(unmatched)",method="GET",status="404"} 1');
    expect(samples(text, "scim_bridge_scim_request_duration_seconds_count")).toContain(
      'scim_bridge_scim_request_duration_seconds_count{route="/scim/v2/:directory/Users/:id",method="PATCH",status="204"} 1',
    );
    // /metrics itself is not a SCIM request, and no id, directory or email reached a label.
    expect(text).not.toContain('route="/metrics"');
    for (const leak of ["acme.test", userId, "dir-abc2def3", "dir-zzz9yyy8"]) expect(text).not.toContain(leak);

    const outcomes = samples(text, "scim_bridge_job_outcomes_total");
    expect(outcomes).toContain('scim_bridge_job_outcomes_total{kind="user",lane="deprovision",outcome="done"} 1');
    expect(outcomes).toContain('scim_bridge_job_outcomes_total{kind="user",lane="provision",outcome="retry"} 1');
    expect(outcomes).toContain(
      'scim_bridge_job_outcomes_total{kind="organization",lane="background",outcome="dead"} 1',
    );

    const depth = samples(text, "scim_bridge_job_queue_depth");
    expect(depth).toContain('scim_bridge_job_queue_depth{lane="deprovision",state="pending"} 1');
    expect(depth).toContain('scim_bridge_job_queue_depth{lane="provision",state="pending"} 2');
    expect(depth).toContain('scim_bridge_job_queue_depth{lane="background",state="dead"} 0');

    const calls = samples(text, "scim_bridge_auth0_calls_total");
    expect(calls).toContain('scim_bridge_auth0_calls_total{endpoint="usersWrite",status="200"} 2');
    expect(calls).toContain('scim_bridge_auth0_calls_total{endpoint="orgMembersWrite",status="429"} 1');
    expect(calls).toContain('scim_bridge_auth0_calls_total{endpoint="usersRead",status="network_error"} 1');
    expect(samples(text, "scim_bridge_auth0_rate_limited_total")).toEqual([
      'scim_bridge_auth0_rate_limited_total{endpoint="orgMembersWrite"} 1',
    ]);
    expect(samples(text, "scim_bridge_auth0_call_duration_seconds_count")).toContain(
      'scim_bridge_auth0_call_duration_seconds_count{endpoint="usersWrite"} 2',
    );

    const budget = samples(text, "scim_bridge_auth0_rate_budget_tokens");
    expect(budget).toHaveLength(rateProfile("essentials").buckets.length);
    const usersWriteLeft = Number(budget.find((l) => l.includes('bucket="usersWrite"'))!.split(" ")[1]);
    expect(usersWriteLeft).toBeGreaterThanOrEqual(7);
    expect(usersWriteLeft).toBeLessThan(8); // the 7 Auth0 reported, plus at most a moment's refill
    expect(samples(text, "scim_bridge_auth0_rate_budget_capacity")).toContain(
      'scim_bridge_auth0_rate_budget_capacity{bucket="usersWrite"} 20',
    );

    const latency = samples(text, "scim_bridge_deprovision_latency_seconds_bucket");
    expect(latency).toContain('scim_bridge_deprovision_latency_seconds_bucket{le="1",organization="acme"} 0');
    expect(latency).toContain('scim_bridge_deprovision_latency_seconds_bucket{le="2",organization="acme"} 1');
    expect(samples(text, "scim_bridge_deprovision_latency_seconds_sum")).toEqual([
      'scim_bridge_deprovision_latency_seconds_sum{organization="acme"} 1.5',
    ]);
  });

  it("keeps the route template when an app-level error handler answers", async () => {
    const metrics = createMetrics({ defaultMetrics: false });
    const app = bridgeLikeApp(metrics);
    await request(app).put(`/scim/v2/dir-abc2def3/Users/${userId}`).send({}).expect(500);
    const text = (await request(app).get("/metrics")).text;
    expect(text).toContain(
      'scim_bridge_scim_requests_total{route="/scim/v2/:directory/Users/:id",method="PUT",status="500"} 1',
    );
  });

  it("follows the queue as it drains: a lane that empties reads 0, not its old depth", async () => {
    const store = await open();
    const metrics = createMetrics({ defaultMetrics: false });
    metrics.setQueueDepthSource(() => queueDepthFromDb(store));
    const app = bridgeLikeApp(metrics);
    await store.write(enqueueJob({ organizationId: "org-1", kind: "user", subjectId: "u1", lane: Lane.deprovision }));
    expect((await request(app).get("/metrics")).text).toContain(
      'scim_bridge_job_queue_depth{lane="deprovision",state="pending"} 1',
    );
    await store.write(exec("UPDATE jobs SET state = 'done'"));
    expect((await request(app).get("/metrics")).text).toContain(
      'scim_bridge_job_queue_depth{lane="deprovision",state="pending"} 0',
    );
  });

  it("labels the deprovision latency with the organization's slug, not its id", async () => {
    const store = await open();
    const acme = (
      await store.write(onboardOrganizationOp({ slug: "acme" }, changeBy({ type: "operator", id: "test" })))
    ).organization;
    const metrics = createMetrics({
      defaultMetrics: false,
      organizationLabel: organizationSlugs(store),
      now: () => 10_000,
    });
    metrics.workerEvents.onOutcome?.(
      job({ organizationId: acme.id, lane: Lane.deprovision, firstEnqueuedAt: 9_000 }),
      { status: "done" },
      1,
    );
    metrics.workerEvents.onOutcome?.(
      job({ organizationId: "gone", lane: Lane.deprovision, firstEnqueuedAt: 9_000 }),
      { status: "done" },
      1,
    );
    // A slug not cached yet is read from the store and the sample recorded once it is known: at once
    // on SQLite, after a round trip on PostgreSQL, so the scrape waits for both samples.
    const app = bridgeLikeApp(metrics);
    const text = await vi.waitFor(async () => {
      const scraped = (await request(app).get("/metrics")).text;
      expect(samples(scraped, "scim_bridge_deprovision_latency_seconds_count")).toEqual([
        'scim_bridge_deprovision_latency_seconds_count{organization="acme"} 1',
        'scim_bridge_deprovision_latency_seconds_count{organization="gone"} 1',
      ]);
      return scraped;
    });
    expect(text).not.toContain(acme.id);
  });

  it("keeps serving when a scrape-time source fails, and each instance has its own registry", async () => {
    const a = createMetrics({ defaultMetrics: false });
    const b = createMetrics();
    a.setQueueDepthSource(() => {
      throw new Error("database is closed");
    });
    a.callObserver.onCall?.("other", 200, 1);
    const textA = (await request(bridgeLikeApp(a)).get("/metrics").expect(200)).text;
    const textB = (await request(bridgeLikeApp(b)).get("/metrics").expect(200)).text;
    expect(textA).toContain('scim_bridge_auth0_calls_total{endpoint="other",status="200"} 1');
    expect(textB).not.toContain('endpoint="other"');
    expect(textB).toContain("process_cpu_user_seconds_total");
    expect(textA).not.toContain("process_cpu_user_seconds_total");
  });
});
