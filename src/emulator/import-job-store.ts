// The import jobs a tenant holds, apart from the routes that run them (import-jobs.ts), so the
// tenant state can own them without importing the routes.

/** How long a job takes: `baseMs` plus `perUserMs` per user (time compression for tests and benchmarks). */
export interface ImportTiming {
  baseMs: number;
  perUserMs: number;
}

export interface ImportJobError {
  user: Record<string, unknown>;
  errors: { code: string; message: string; path: string }[];
}

export interface ImportJob {
  id: string;
  connection_id: string;
  external_id?: string;
  upsert: boolean;
  send_completion_email: boolean;
  created_at: string;
  createdMs: number;
  status: "pending" | "processing" | "completed" | "failed";
  startedAt: number;
  durationMs: number;
  /** Epoch ms the job ended (its users applied), for benchmarks that measure the tenant's side. */
  endedAt?: number;
  users: unknown;
  summary?: { total: number; inserted: number; updated: number; failed: number };
  status_details?: string;
  errors: ImportJobError[];
  timer?: NodeJS.Timeout;
}

/** The tenant's import jobs (Auth0 deletes job data after 24 hours; the emulator keeps it until reset). */
export class ImportJobStore {
  readonly jobs = new Map<string, ImportJob>();
  timing: ImportTiming = { baseMs: 20, perUserMs: 0.05 };

  /** Jobs not yet finished. */
  running(): ImportJob[] {
    return [...this.jobs.values()].filter((j) => j.status === "pending" || j.status === "processing");
  }

  clear(): void {
    for (const job of this.jobs.values()) if (job.timer) clearTimeout(job.timer);
    this.jobs.clear();
  }
}
