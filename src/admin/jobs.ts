import { z } from "zod";
import { getOrganization } from "../directory/organizations.js";
import { notFound } from "../errors.js";
import { jobCounts, jobStates, listDeadJobs, listJobs, requestDriftReconcile, retryJob } from "../sync/job-queries.js";
import { Lane, laneName, laneNames, type JobKind } from "../directory/outbox.js";
import { intParam, iso, limitParam, type AdminRoutes } from "./routes.js";
import { jobView } from "./views.js";
import type { StoreOp } from "../directory/store-op.js";

/** Sync health for operators: jobs by state and lane, dead letters, retry, and drift reconcile on demand. */
const kinds: [JobKind, ...JobKind[]] = ["user", "group", "organization", "drift"];

const pageQuery = {
  organization: z.string().min(1).optional().describe("organization id or slug"),
  limit: limitParam(500, 50),
  before: z.coerce.number().int().min(1).optional().describe("cursor: `next` of the previous page"),
};

function* organizationId(idOrSlug: string | undefined): StoreOp<string | undefined> {
  if (idOrSlug === undefined) return undefined;
  const org = yield* getOrganization(idOrSlug);
  if (!org) throw notFound(`organization "${idOrSlug}" not found`);
  return org.id;
}

export function jobRoutes(routes: AdminRoutes): void {
  routes.add(
    {
      method: "get",
      path: "/jobs",
      access: "operator",
      tag: "jobs",
      summary: "Jobs, newest first, by organization, state, lane and kind",
      query: z.strictObject({
        ...pageQuery,
        state: z.enum(jobStates as [string, ...string[]]).optional(),
        lane: z.enum(laneNames).optional(),
        kind: z.enum(kinds).optional(),
      }),
      status: 200,
    },
    async ({ deps, query }) => {
      const page = await deps.store.read(
        (function* () {
          return yield* listJobs({
            organizationId: yield* organizationId(query.organization),
            state: query.state as (typeof jobStates)[number] | undefined,
            lane: query.lane === undefined ? undefined : Lane[query.lane],
            kind: query.kind,
            limit: query.limit,
            before: query.before,
          });
        })(),
      );
      return { jobs: page.jobs.map(jobView), next: page.next };
    },
  );

  routes.add(
    {
      method: "get",
      path: "/jobs/dead",
      access: "operator",
      tag: "jobs",
      summary: "Dead letters: jobs that gave up, with their last error",
      query: z.strictObject(pageQuery),
      status: 200,
    },
    async ({ deps, query }) => {
      const page = await deps.store.read(
        (function* () {
          return yield* listDeadJobs({
            organizationId: yield* organizationId(query.organization),
            limit: query.limit,
            before: query.before,
          });
        })(),
      );
      return { jobs: page.jobs.map(jobView), next: page.next };
    },
  );

  routes.add(
    {
      method: "get",
      path: "/jobs/summary",
      access: "operator",
      tag: "jobs",
      summary: "Pending, running and dead jobs per organization and lane, with the oldest waiting change (sync lag)",
      query: z.strictObject({ organization: pageQuery.organization }),
      status: 200,
    },
    async ({ deps, query, now }) => ({
      groups: (
        await deps.store.read(
          (function* () {
            return yield* jobCounts(yield* organizationId(query.organization));
          })(),
        )
      ).map((g) => ({
        ...g,
        lane: laneName(g.lane),
        oldestFirstEnqueuedAt: iso(g.oldestFirstEnqueuedAt),
        lagSeconds: Math.max(0, Math.round((now - g.oldestFirstEnqueuedAt) / 1000)),
      })),
    }),
  );

  routes.add(
    {
      method: "post",
      path: "/jobs/:jobId/retry",
      access: "operator",
      tag: "jobs",
      summary: "Retry a dead (or waiting) job now with attempts reset; merges with a pending job of the same subject",
      status: 200,
      errors: [409],
    },
    async ({ deps, param, change }) => {
      const result = await deps.store.write(retryJob(intParam(param("jobId"), "jobId"), change));
      deps.notifyWorker?.();
      return { job: jobView(result.job), mergedInto: result.mergedInto };
    },
  );

  routes.add(
    {
      method: "post",
      path: "/organizations/:org/drift",
      access: "operator",
      tag: "jobs",
      summary: "Trigger a drift reconcile of the organization (compares Auth0 with the applied state; background lane)",
      status: 202,
    },
    async ({ deps, organization, actor, requestId, now }) => {
      const job = await deps.store.write(requestDriftReconcile(organization.id, { actor, requestId, at: now }));
      deps.notifyWorker?.();
      return { job: job ? jobView(job) : null };
    },
  );
}
