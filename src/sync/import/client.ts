import type { ManagementClient } from "auth0";
import { ManagementError } from "auth0";
import { Auth0CallError, classifyAuth0Error } from "../../auth0/errors.js";
import type { RateLimiter } from "../../auth0/rate-limiter.js";
import { Lane } from "../../directory/outbox.js";

/**
 * Auth0's user import job endpoints (POST /jobs/users-imports, GET /jobs/{id}, GET /jobs/{id}/errors)
 * through the same rate limiter as every other Management API call, in the background lane so that
 * provisioning and deprovisioning go first. Auth0 publishes no jobs-specific limit, so these calls
 * count against the "other endpoints" budget (the global bucket on Enterprise).
 */
export interface ImportJobStatus {
  id: string;
  status: string;
  percentage_done?: number;
  time_left_seconds?: number;
  summary?: { total?: number; inserted?: number; updated?: number; failed?: number };
  status_details?: string;
}

export interface ImportJobUserError {
  user?: Record<string, unknown>;
  errors?: { code?: string; message?: string; path?: string }[];
}

/** The errors report: per-user errors, a whole-job failure, or nothing. */
export type ImportErrorsReport =
  { kind: "users"; errors: ImportJobUserError[] } | { kind: "job"; details: string } | { kind: "none" };

export class TooManyImportJobs extends Error {}

export interface ImportApi {
  submit(file: Buffer, connectionId: string, upsert: boolean, externalId: string): Promise<{ id: string }>;
  status(jobId: string): Promise<ImportJobStatus>;
  errors(jobId: string): Promise<ImportErrorsReport>;
}

export class ImportClient implements ImportApi {
  constructor(
    private readonly client: ManagementClient,
    private readonly limiter: RateLimiter,
    private readonly lane: number = Lane.background,
  ) {}

  private async call<T>(
    path: string,
    send: () => Promise<{ data: T; rawResponse: { status: number; headers: Headers } }>,
    concurrencyAware = false,
  ): Promise<T> {
    await this.limiter.acquire("other", this.lane);
    try {
      const { data, rawResponse } = await send();
      this.limiter.observe("other", rawResponse.status, rawResponse.headers);
      return data;
    } catch (err) {
      const status = err instanceof ManagementError ? (err.statusCode ?? 0) : 0;
      const headers = err instanceof ManagementError ? err.rawResponse?.headers : undefined;
      // Auth0 does not document the answer to a third concurrent import job; a 429 that leaves rate
      // budget (x-ratelimit-remaining > 0) is that limit, not the rate limit, so the buckets are left alone.
      const remaining = Number(headers?.get("x-ratelimit-remaining"));
      if (concurrencyAware && status === 429 && Number.isFinite(remaining) && remaining > 0)
        throw new TooManyImportJobs("Auth0 refused another concurrent import job");
      this.limiter.observe("other", status, headers);
      throw classifyAuth0Error(err, path);
    }
  }

  async submit(file: Buffer, connectionId: string, upsert: boolean, externalId: string): Promise<{ id: string }> {
    const job = await this.call(
      "/jobs/users-imports",
      () =>
        this.client.jobs.usersImports
          .create(
            {
              users: { data: file, filename: "users.json", contentType: "application/json" },
              connection_id: connectionId,
              upsert,
              external_id: externalId,
              send_completion_email: false,
            },
            // A retried POST after a lost answer could start a second job: the caller decides instead.
            { maxRetries: 0, timeoutInSeconds: 120 },
          )
          .withRawResponse(),
      true,
    );
    if (!job.id) throw new Auth0CallError("retryable", undefined, undefined, "Auth0 returned no job id");
    return { id: job.id };
  }

  async status(jobId: string): Promise<ImportJobStatus> {
    return (await this.call(`/jobs/${jobId}`, () => this.client.jobs.get(jobId).withRawResponse())) as ImportJobStatus;
  }

  async errors(jobId: string): Promise<ImportErrorsReport> {
    const data = (await this.call(`/jobs/${jobId}/errors`, () =>
      this.client.jobs.errors.get(jobId).withRawResponse(),
    )) as unknown;
    if (Array.isArray(data)) return { kind: "users", errors: data as ImportJobUserError[] };
    if (data && typeof data === "object")
      return {
        kind: "job",
        details: String((data as { status_details?: unknown }).status_details ?? "the job failed"),
      };
    return { kind: "none" };
  }
}
