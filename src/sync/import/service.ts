/**
 * Bulk migration of an organization's legacy users into Auth0 (user import jobs), shared by the CLI
 * (`scim-bridge users import`) and the admin API.
 *
 * 1. Validate: the whole file is read once, streamed, and every record checked before anything is
 *    sent; every problem is reported with its record number and field. The same pass plans the
 *    chunks (Auth0 takes at most 500 KB per import file) and hashes the file.
 * 2. Import: the file is read again and each chunk posted as one import job, never more than Auth0's
 *    two concurrent jobs per tenant; jobs are polled with backoff; error reports are mapped back to
 *    record numbers. Every step is durable per chunk (user_import_chunks), so a crash resumes where
 *    it stopped: a chunk whose POST may have gone out is posted again, and Auth0 refuses the users
 *    it already holds (the same user_id, upsert off) instead of importing them twice.
 * 3. Link: each imported user becomes a directory user of the organization, linked to its Auth0 id
 *    (user_sync), in the transaction that marks the chunk done. The reconcile job each one gets adds
 *    the organization membership (batched, 10 per call) and the mapping's roles; the IdP's later
 *    SCIM create of the same person takes this user over (see directory/migrated.ts).
 *
 * Password hashes live only in memory while their chunk is in flight: they are never logged, never
 * written to the database, never written to a temporary file by this service.
 */
import { createReadStream } from "node:fs";
import type { Logger } from "pino";
import { Auth0CallError } from "../../auth0/errors.js";
import type { Auth0Gateway } from "../../auth0/gateway.js";
import type { Actor } from "../../directory/audit.js";
import type { SqlStore } from "../../directory/sql.js";
import { listDirectories } from "../../directory/directories.js";
import { createMigratedUsers } from "../../directory/migrated.js";
import { getOrganization, type OrganizationRow } from "../../directory/organizations.js";
import { conflict, invalidValue, notFound } from "../../errors.js";
import { initialApplied, type AppliedState, type Profile } from "../../mapping/index.js";
import { isRecord, profileFields } from "../../mapping/types.js";
import { Lane } from "../../directory/outbox.js";
import { TooManyImportJobs, type ImportApi, type ImportJobStatus } from "./client.js";
import { Digest, readRecords, type ImportFormat } from "./records.js";
import { validateRecord, type ImportUser, type RecordProblem } from "./validate.js";
import type { StoreOp } from "../../directory/store-op.js";
import {
  claimChunkLink,
  claimChunkSubmit,
  claimImport,
  failChunk,
  failImport,
  finishImport,
  heartbeatImport,
  IMPORT_HEARTBEAT_MS,
  importChunks,
  importProgress,
  importWithChunks,
  insertUserSyncLinks,
  recordChunkLinked,
  recordChunkSubmitted,
  takenUserNames,
  type ChunkPlan,
  type ChunkRow,
  type ImportRow,
} from "./store.js";

export { listImports } from "./store.js";

/** Auth0's limit per import file is 500 KB; the request's other multipart parts fit in the rest of its 512,000 bytes. */
export const MAX_CHUNK_BYTES = 500_000;
/** "2 concurrent import jobs per tenant" (Auth0, Bulk User Imports: Limits). */
export const MAX_CONCURRENT_JOBS = 2;
/** Problems listed in a report; the count covers all of them. */
const MAX_LISTED_PROBLEMS = 1000;

export interface ImportDeps {
  store: SqlStore;
  api: ImportApi;
  gateway: Pick<Auth0Gateway, "connectionId" | "findUsersByEmail" | "getUser">;
  log?: Pick<Logger, "info" | "warn" | "error">;
  maxConcurrentJobs?: number;
  maxChunkBytes?: number;
  sleep?: (ms: number, signal?: AbortSignal) => Promise<void>;
  now?: () => number;
  /** How often a run writes its import's heartbeat (default IMPORT_HEARTBEAT_MS). */
  heartbeatMs?: number;
}

export interface ImportRequest {
  /** Organization id or slug. */
  organization: string;
  /** Directory id; default the organization's only (or first) directory. */
  directory?: string;
  filePath: string;
  /** Shown in reports; default the path's last segment. */
  fileName?: string;
  format: ImportFormat;
  upsert?: boolean;
  dryRun?: boolean;
  actor: Actor;
  onProgress?: (p: ImportProgress) => void;
  signal?: AbortSignal;
  /** Called once the import is recorded (before the first job), e.g. to answer an HTTP request. */
  onStarted?: (importId: string) => void;
  /** Called once every job has been built from the file: a spooled upload can be deleted then. */
  onFileRead?: () => void;
}

export interface ImportProgress {
  phase: "validating" | "importing" | "done";
  records: number;
  chunks: number;
  chunksDone: number;
  imported: number;
  failed: number;
}

export interface RecordFailure {
  record: number;
  email: string | null;
  field: string;
  code: string;
  message: string;
}

export interface ImportReport {
  importId: string | null;
  organization: string;
  fileName: string;
  format: ImportFormat;
  upsert: boolean;
  dryRun: boolean;
  /** "invalid" (nothing sent), "planned" (dry run), "running", "done", "failed", "stopped". */
  state: "invalid" | "planned" | "running" | "done" | "failed" | "stopped";
  resumed: boolean;
  records: number;
  chunks: number;
  problemCount: number;
  problems: RecordProblem[];
  inserted: number;
  updated: number;
  /** Users an earlier, interrupted attempt had already imported. */
  recovered: number;
  /** Records Auth0 refused (mapped back from the job error reports). */
  failed: number;
  failures: RecordFailure[];
  /** Migrated users recorded in the directory (linked to their Auth0 user). */
  linked: number;
  lastError: string | null;
}

type NumberedUser = ImportUser & { record: number };

const defaultSleep = (ms: number, signal?: AbortSignal): Promise<void> =>
  new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const t = setTimeout(done, ms);
    function done() {
      clearTimeout(t);
      signal?.removeEventListener("abort", done);
      resolve();
    }
    signal?.addEventListener("abort", done, { once: true });
  });

/** The organization and its directories, in one snapshot. */
function* targetOf(organization: string) {
  const org = yield* getOrganization(organization);
  return org ? { org, dirs: yield* listDirectories(org.id) } : undefined;
}

async function resolveTarget(
  store: SqlStore,
  request: Pick<ImportRequest, "organization" | "directory">,
): Promise<{ org: OrganizationRow; directoryId: string }> {
  const target = await store.read(targetOf(request.organization));
  if (!target) throw notFound(`organization "${request.organization}" not found`);
  const { org, dirs } = target;
  if (request.directory) {
    if (!dirs.some((d) => d.id === request.directory))
      throw notFound(`directory "${request.directory}" is not a directory of ${org.slug}`);
    return { org, directoryId: request.directory };
  }
  if (dirs.length === 0)
    throw conflict(`organization ${org.slug} has no directory to record the migrated users in; add one first`);
  if (dirs.length > 1)
    throw invalidValue(
      `organization ${org.slug} has ${dirs.length} directories: say which one the migrated users belong to (the one whose IdP will push them)`,
    );
  return { org, directoryId: dirs[0]!.id };
}

/** Pass 1: every record checked, duplicates found, chunks planned and the file hashed. Nothing is sent. */
export async function planImport(
  filePath: string,
  format: ImportFormat,
  organizationId: string,
  maxChunkBytes = MAX_CHUNK_BYTES,
  onRecord?: (n: number) => void,
): Promise<{ records: number; problems: RecordProblem[]; problemCount: number; chunks: ChunkPlan[]; sha256: string }> {
  const digest = new Digest();
  const problems: RecordProblem[] = [];
  let problemCount = 0;
  const note = (p: RecordProblem) => {
    problemCount++;
    if (problems.length < MAX_LISTED_PROBLEMS) problems.push(p);
  };
  const seen = {
    email: new Map<string, number>(),
    user_id: new Map<string, number>(),
    username: new Map<string, number>(),
    phone_number: new Map<string, number>(),
  };
  const chunks: ChunkPlan[] = [];
  let current: ChunkPlan | undefined;
  let records = 0;
  let stream;
  try {
    stream = createReadStream(filePath);
    for await (const r of readRecords(stream, format, digest)) {
      records = Math.max(records, r.record);
      onRecord?.(records);
      if (r.error !== undefined) {
        note({ record: r.record, field: "", message: r.error });
        continue;
      }
      const { problems: found, user } = validateRecord(r.record, r.value, organizationId);
      for (const p of found) note(p);
      if (!user) continue;
      for (const key of ["email", "user_id", "username", "phone_number"] as const) {
        // A user_id the bridge derived from the email is as unique as the email: not tracked twice.
        const raw =
          key === "user_id" && isRecord(r.value) && r.value.user_id === undefined ? undefined : user.user[key];
        if (typeof raw !== "string") continue;
        const v = key === "email" || key === "username" ? raw.toLowerCase() : raw;
        const first = seen[key].get(v);
        if (first !== undefined)
          note({
            record: r.record,
            field: key,
            message: `duplicates record ${first} (Auth0 refuses duplicates within an import)`,
          });
        else seen[key].set(v, r.record);
      }
      const bytes = Buffer.byteLength(JSON.stringify(user.user));
      if (bytes + 2 > maxChunkBytes) {
        note({
          record: r.record,
          field: "",
          message: `is ${bytes} bytes; an Auth0 import file holds at most ${maxChunkBytes} bytes`,
        });
        continue;
      }
      if (!current || current.bytes + bytes + 1 > maxChunkBytes) {
        current = { chunk: chunks.length + 1, firstRecord: r.record, lastRecord: r.record, users: 0, bytes: 2 };
        chunks.push(current);
      }
      current.lastRecord = r.record;
      current.users++;
      current.bytes += bytes + (current.users > 1 ? 1 : 0);
    }
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === "ENOENT" || code === "EACCES" || code === "EISDIR")
      throw invalidValue(`cannot read ${filePath}: ${code}`);
    throw err;
  } finally {
    stream?.destroy();
  }
  if (records === 0 && problemCount === 0) note({ record: 0, field: "", message: "the file holds no users" });
  return { records, problems, problemCount, chunks, sha256: digest.hex() };
}

function emptyReport(request: ImportRequest, org: OrganizationRow, fileName: string): ImportReport {
  return {
    importId: null,
    organization: org.slug,
    fileName,
    format: request.format,
    upsert: request.upsert === true,
    dryRun: request.dryRun === true,
    state: "invalid",
    resumed: false,
    records: 0,
    chunks: 0,
    ...noOutcomes(),
    lastError: null,
  };
}

/** The outcome counters of a report before anything is counted (fresh arrays: reports mutate them). */
function noOutcomes(): Pick<
  ImportReport,
  "problemCount" | "problems" | "inserted" | "updated" | "recovered" | "failed" | "failures" | "linked"
> {
  return { problemCount: 0, problems: [], inserted: 0, updated: 0, recovered: 0, failed: 0, failures: [], linked: 0 };
}

/**
 * The report of a recorded import, from its chunks (the admin API's progress view); undefined when
 * there is no such import (in `organizationId`, when given).
 */
export function* importReport(importId: string, organizationId?: string): StoreOp<ImportReport | undefined> {
  const found = yield* importWithChunks(importId);
  if (!found || (organizationId && found.row.organizationId !== organizationId)) return undefined;
  const { row, chunks } = found;
  const report: ImportReport = {
    importId,
    organization: found.organizationSlug,
    fileName: row.fileName,
    format: row.format as ImportFormat,
    upsert: row.upsert,
    dryRun: false,
    state: row.state as ImportReport["state"],
    resumed: false,
    records: row.records,
    chunks: row.chunks,
    ...noOutcomes(),
    lastError: row.lastError,
  };
  for (const c of chunks) {
    report.inserted += c.inserted ?? 0;
    report.updated += c.updated ?? 0;
    const stats = c.errors
      ? (JSON.parse(c.errors) as { failures: RecordFailure[]; recovered: number; linked: number })
      : undefined;
    if (stats) {
      report.failures.push(...stats.failures);
      report.recovered += stats.recovered;
      report.linked += stats.linked;
    }
  }
  report.failed = report.failures.length;
  if (report.failures.length > MAX_LISTED_PROBLEMS) report.failures.length = MAX_LISTED_PROBLEMS;
  return report;
}

/** The directory document of a migrated user: what the legacy store knew, until the IdP says more. */
function migratedResource(u: ImportUser): Record<string, unknown> {
  const src = u.user;
  const str = (k: string) => (typeof src[k] === "string" ? (src[k] as string) : undefined);
  const name: Record<string, string> = {};
  if (str("given_name")) name.givenName = str("given_name")!;
  if (str("family_name")) name.familyName = str("family_name")!;
  if (str("name")) name.formatted = str("name")!;
  return {
    schemas: ["urn:ietf:params:scim:schemas:core:2.0:User"],
    userName: u.emailLower,
    ...(u.externalId ? { externalId: u.externalId } : {}),
    ...(Object.keys(name).length > 0 ? { name } : {}),
    ...(str("name") ? { displayName: str("name") } : {}),
    emails: [{ value: u.emailLower, type: "work", primary: true }],
    active: src.blocked !== true,
  };
}

/** What the import itself wrote to the Auth0 user, as applied state: the reconcile then adds only membership, roles and owned keys. */
function appliedAfterImport(u: ImportUser, auth0UserId: string): AppliedState {
  const profile: Profile = { email: u.emailLower };
  for (const f of profileFields) if (f !== "email" && typeof u.user[f] === "string") profile[f] = u.user[f] as string;
  return { ...initialApplied(), auth0UserId, exists: true, blocked: u.user.blocked === true, profile };
}

class ImportRun {
  private readonly sleep: (ms: number, signal?: AbortSignal) => Promise<void>;
  private readonly now: () => number;
  private readonly max: number;
  private connectionId: string | undefined;
  private fatal: Error | undefined;
  private readonly progress: ImportProgress;

  constructor(
    private readonly deps: ImportDeps,
    private readonly request: ImportRequest,
    private readonly org: OrganizationRow,
    private readonly row: ImportRow,
  ) {
    this.sleep = deps.sleep ?? defaultSleep;
    this.now = deps.now ?? Date.now;
    this.max = deps.maxConcurrentJobs ?? MAX_CONCURRENT_JOBS;
    this.progress = {
      phase: "importing",
      records: row.records,
      chunks: row.chunks,
      chunksDone: 0,
      imported: 0,
      failed: 0,
    };
  }

  private async report(): Promise<void> {
    if (!this.request.onProgress) return;
    Object.assign(this.progress, await this.deps.store.read(importProgress(this.row.id)));
    this.request.onProgress({ ...this.progress });
  }

  /**
   * Writes the import's heartbeat every heartbeatMs while the run lives, so that another instance
   * does not take the import as abandoned. If the import stopped running meanwhile (this process
   * was silent past IMPORT_STALE_MS, e.g. suspended, and another import started), the run posts no
   * more chunks: two imports of one organization must not run at once. Returns the stop function.
   */
  private startHeartbeat(): () => void {
    const beat = async () => {
      try {
        if (!(await this.deps.store.write(heartbeatImport(this.row.id, this.now()))))
          this.fatal ??= new ImportAbandoned();
      } catch (err) {
        // A missed beat is retried at the next tick; the staleness limit spans many of them.
        this.deps.log?.warn({ err, importId: this.row.id }, "user import: could not write the heartbeat");
      }
    };
    const timer = setInterval(() => void beat(), this.deps.heartbeatMs ?? IMPORT_HEARTBEAT_MS);
    timer.unref();
    return () => clearInterval(timer);
  }

  async run(): Promise<void> {
    const stopHeartbeat = this.startHeartbeat();
    try {
      await this.runChunks();
    } finally {
      stopHeartbeat();
    }
  }

  private async runChunks(): Promise<void> {
    const signal = this.request.signal;
    const rows = new Map((await this.deps.store.read(importChunks(this.row.id))).map((c) => [c.chunk, c]));
    await this.report();
    const open = [...rows.values()].filter((c) => c.state !== "linked" && c.state !== "failed");
    if (open.length > 0) {
      this.connectionId = await this.deps.gateway.connectionId(this.row.connection, Lane.background);
      const inFlight = new Set<Promise<void>>();
      const finishing = new Set<Promise<void>>();
      const fail = (err: unknown) => {
        this.fatal ??= err instanceof Error ? err : new Error(String(err));
      };
      // A job holds one of the tenant's slots until Auth0 ends it; recording its users comes after,
      // so that the next job is posted first.
      const launch = (c: ChunkRow, members: NumberedUser[]) => {
        const p = this.job(c, members)
          .then((done) => {
            const f = this.finish(c, members, done.jobId, done.status)
              .catch(fail)
              .finally(() => finishing.delete(f));
            finishing.add(f);
          })
          .catch((err: unknown) => {
            // Another run of the same import claimed this chunk first: it posts and links it.
            if (err instanceof ChunkTaken) this.taken(c);
            else fail(err);
          })
          .finally(() => inFlight.delete(p));
        inFlight.add(p);
      };
      // Chunks whose job was already submitted are polled first: they hold the tenant's job slots.
      const ordered = [...open].sort(
        (a, b) => Number(b.state === "submitted") - Number(a.state === "submitted") || a.chunk - b.chunk,
      );
      const byChunk = new Map<number, NumberedUser[]>();
      let next = 0;
      const stream = createReadStream(this.request.filePath);
      try {
        const it = readRecords(stream, this.row.format as ImportFormat);
        const plan = [...rows.values()].sort((a, b) => a.chunk - b.chunk);
        let planIndex = 0;
        for await (const r of it) {
          if (signal?.aborted || this.fatal) break;
          while (planIndex < plan.length && plan[planIndex]!.lastRecord < r.record) planIndex++;
          const c = plan[planIndex];
          if (!c || r.record < c.firstRecord || c.state === "linked" || c.state === "failed") continue;
          if (r.error !== undefined)
            throw invalidValue(
              `record ${r.record} no longer reads as it did: the file changed since the import started`,
            );
          const { user } = validateRecord(r.record, r.value, this.org.id);
          if (!user)
            throw invalidValue(`record ${r.record} no longer validates: the file changed since the import started`);
          const list = byChunk.get(c.chunk) ?? [];
          list.push({ ...user, record: r.record });
          byChunk.set(c.chunk, list);
          // Launch every chunk that is complete, in the order decided above, when a job slot is free.
          while (
            next < ordered.length &&
            byChunk.has(ordered[next]!.chunk) &&
            byChunk.get(ordered[next]!.chunk)!.length === ordered[next]!.users
          ) {
            while (inFlight.size >= this.max) await Promise.race(inFlight);
            if (signal?.aborted || this.fatal) break;
            const c2 = ordered[next++]!;
            launch(c2, byChunk.get(c2.chunk)!);
            byChunk.delete(c2.chunk);
          }
        }
      } finally {
        stream.destroy();
      }
      if (!signal?.aborted && !this.fatal) this.request.onFileRead?.();
      await Promise.all(inFlight);
      await Promise.all(finishing);
      if (this.fatal) throw this.fatal;
      if (!signal?.aborted && next < ordered.length)
        throw invalidValue("the file ended before every planned chunk was read: it changed since the import started");
    }
    if (signal?.aborted) return;
    // Still "running" when another run holds chunks of this import: that run ends it.
    await this.deps.store.write(finishImport(this.row.id, this.request.actor, this.now()));
    this.progress.phase = "done";
    await this.report();
  }

  private taken(c: ChunkRow): void {
    this.deps.log?.info(
      { importId: this.row.id, chunk: c.chunk },
      "user import: another run of this import took the chunk over; it records the chunk's users",
    );
  }

  /** Polls a job with backoff until it ends; Auth0's progress estimate, when given, sets the next poll. */
  private async waitForJob(jobId: string): Promise<ImportJobStatus | "missing"> {
    const started = this.now();
    for (let attempt = 0; ; attempt++) {
      const backoff = Math.min(5000, 150 * 1.6 ** attempt);
      let status: ImportJobStatus;
      try {
        status = await this.deps.api.status(jobId);
      } catch (err) {
        if (err instanceof Auth0CallError && err.kind === "notFound") return "missing";
        if (err instanceof Auth0CallError && err.kind !== "retryable") throw err;
        this.deps.log?.warn({ err, jobId }, "user import: polling the job failed; retrying");
        await this.sleep(backoff, this.request.signal);
        if (this.request.signal?.aborted) throw new Error("stopped", { cause: err });
        continue;
      }
      if (status.status === "completed" || status.status === "failed" || status.status === "expired") return status;
      const p = status.percentage_done;
      const elapsed = this.now() - started;
      const estimate = typeof p === "number" && p > 0 && p < 100 ? (elapsed * (100 - p)) / p : undefined;
      // Slightly before the estimate, so that the end is seen soon after it comes (polls are cheap, idle job slots are not).
      const delay = estimate !== undefined ? Math.max(50, Math.min(5000, estimate * 0.8)) : backoff;
      await this.sleep(delay, this.request.signal);
      if (this.request.signal?.aborted) throw new Error("stopped");
    }
  }

  private async submit(c: ChunkRow, members: NumberedUser[]): Promise<string> {
    const body = Buffer.from(`[${members.map((m) => JSON.stringify(m.user)).join(",")}]`);
    for (let attempt = 0; ; attempt++) {
      if (this.request.signal?.aborted) throw new Error("stopped");
      // Durable before the POST: after a crash this chunk is known to be possibly in Auth0's hands.
      if (!(await this.deps.store.write(claimChunkSubmit(this.row.id, c.chunk, c)))) throw new ChunkTaken();
      c.state = "submitting";
      c.attempts++;
      try {
        const { id } = await this.deps.api.submit(
          body,
          this.connectionId!,
          this.row.upsert,
          `${this.row.id}:${c.chunk}`,
        );
        const at = this.now();
        if (!(await this.deps.store.write(recordChunkSubmitted(this.row.id, c.chunk, c.attempts, id, at))))
          throw new ChunkTaken();
        Object.assign(c, { state: "submitted", jobId: id, submittedAt: at });
        return id;
      } catch (err) {
        const retry = err instanceof TooManyImportJobs || (err instanceof Auth0CallError && err.kind === "retryable");
        if (!retry) throw err;
        if (!(err instanceof TooManyImportJobs))
          this.deps.log?.warn(
            { err, chunk: c.chunk },
            "user import: submitting a job failed; retrying (Auth0 refuses users already imported)",
          );
        await this.sleep(Math.min(10_000, 500 * 2 ** Math.min(attempt, 5)), this.request.signal);
      }
    }
  }

  /** Posts the chunk (unless its job is already known) and waits until Auth0 ends the job. */
  private async job(c: ChunkRow, members: NumberedUser[]): Promise<{ jobId: string; status: ImportJobStatus }> {
    let jobId = c.state === "submitted" ? c.jobId! : undefined;
    for (;;) {
      jobId ??= await this.submit(c, members);
      const status = await this.waitForJob(jobId);
      // Auth0 deletes job data after 24 hours: posting again is safe, it refuses users it already has.
      if (status !== "missing") return { jobId, status };
      jobId = undefined;
    }
  }

  /** Maps the job's outcome back to records and records its users in the directory. */
  private async finish(c: ChunkRow, members: NumberedUser[], jobId: string, status: ImportJobStatus): Promise<void> {
    await new Promise((resolve) => setImmediate(resolve));
    if (status.status !== "completed") {
      const report = await this.deps.api.errors(jobId).catch(() => undefined);
      const details =
        report?.kind === "job" ? report.details : (status.status_details ?? `the job ended ${status.status}`);
      const ended = await this.deps.store.write(
        failChunk(this.row.id, c.chunk, jobId, {
          at: this.now(),
          failed: members.length,
          errors: JSON.stringify({
            failures: members.map((m) => ({
              record: m.record,
              email: m.emailLower,
              field: "",
              code: "JOB_FAILED",
              message: details,
            })),
            recovered: 0,
            linked: 0,
          }),
        }),
      );
      if (!ended) return this.taken(c);
      this.deps.log?.error(
        { importId: this.row.id, chunk: c.chunk, jobId, details },
        "user import: an Auth0 import job failed as a whole; fix the cause and run the import again to retry its users",
      );
      await this.report();
      return;
    }
    const summary = status.summary ?? {};
    const failures: RecordFailure[] = [];
    let recovered = 0;
    const byEmail = new Map(members.map((m) => [m.emailLower, m]));
    const byUserId = new Map(members.map((m) => [String(m.user.user_id), m]));
    const failedRecords = new Set<number>();
    if ((summary.failed ?? 0) > 0) {
      const report = await this.deps.api.errors(jobId);
      const list = report.kind === "users" ? report.errors : [];
      for (const e of list) {
        const email = typeof e.user?.email === "string" ? e.user.email.toLowerCase() : undefined;
        const m = (email ? byEmail.get(email) : undefined) ?? byUserId.get(String(e.user?.user_id ?? ""));
        const errs = e.errors ?? [];
        // A chunk posted more than once: the users its first job imported come back as conflicts now.
        if (m && c.attempts > 1 && errs.every((x) => x.code === "CONFLICT" || x.code === "CONFLICT_EMAIL")) {
          const existing = await this.deps.gateway
            .getUser(`auth0|${String(m.user.user_id)}`, Lane.background)
            .catch(() => undefined);
          if (existing && existing.email === m.emailLower) {
            recovered++;
            continue;
          }
        }
        if (m) failedRecords.add(m.record);
        for (const x of errs.length > 0 ? errs : [{}]) {
          failures.push({
            record: m?.record ?? 0,
            email: m?.emailLower ?? email ?? null,
            field: x.path ?? "",
            code: x.code ?? "UNKNOWN",
            message: x.message ?? "refused by Auth0",
          });
        }
      }
    }
    // With upsert, an existing user keeps its own id: ask Auth0 which user each email now is.
    const ids = new Map<number, string>();
    const imported = members.filter((m) => !failedRecords.has(m.record));
    if (this.row.upsert && (summary.updated ?? 0) > 0) {
      for (const m of imported) {
        const found = await this.deps.gateway.findUsersByEmail(m.emailLower, this.row.connection, Lane.background);
        if (found[0]) ids.set(m.record, found[0].user_id);
      }
    }
    const linked = await this.link(c, jobId, imported, ids, {
      failures,
      recovered,
      inserted: summary.inserted ?? 0,
      updated: summary.updated ?? 0,
    });
    if (!linked) return this.taken(c);
    if (failures.length > 0)
      this.deps.log?.warn(
        { importId: this.row.id, chunk: c.chunk, failed: failures.length },
        "user import: Auth0 refused some users; the import report lists them by record number",
      );
    await this.report();
  }

  /**
   * Records the chunk's imported users in the directory, linked to their Auth0 users, with the
   * chunk's outcome, in one transaction; false (and nothing written) when another run of the import
   * linked the chunk first.
   */
  private link(
    c: ChunkRow,
    jobId: string,
    imported: NumberedUser[],
    ids: Map<number, string>,
    outcome: { failures: RecordFailure[]; recovered: number; inserted: number; updated: number },
  ): Promise<boolean> {
    const now = this.now();
    const ctx = {
      organizationId: this.org.id,
      directoryId: this.row.directoryId,
      actor: this.request.actor,
      requestId: null,
      at: now,
    };
    const counts = { inserted: outcome.inserted, updated: outcome.updated, failed: outcome.failures.length, at: now };
    const row = this.row;
    const organizationId = this.org.id;
    return this.deps.store.write(
      (function* linkChunk(): StoreOp<boolean> {
        // First, so that of two runs that polled the same job only one records its users.
        if (!(yield* claimChunkLink(row.id, c.chunk, jobId, counts))) return false;
        const taken = yield* takenUserNames(
          row.directoryId,
          imported.map((m) => m.emailLower),
        );
        // Already in the directory (the IdP pushed this person first): its own sync links it.
        const fresh = imported.filter((m) => !taken.has(m.emailLower));
        const rows = yield* createMigratedUsers(
          ctx,
          row.id,
          fresh.map((m) => ({ resource: migratedResource(m), emailLower: m.emailLower, externalId: m.externalId })),
        );
        const links = rows.map((r, i) => {
          const m = fresh[i]!;
          const applied = appliedAfterImport(m, ids.get(m.record) ?? `auth0|${String(m.user.user_id)}`);
          return {
            userId: r.id,
            directoryId: r.directoryId,
            organizationId,
            auth0UserId: applied.auth0UserId!,
            applied: JSON.stringify(applied),
            appliedAt: now,
          };
        });
        yield* insertUserSyncLinks(links);
        const errors = JSON.stringify({
          failures: outcome.failures,
          recovered: outcome.recovered,
          linked: rows.length,
        });
        yield* recordChunkLinked(row.id, c.chunk, errors, now);
        return true;
      })(),
    );
  }
}

/** The import stopped running under this run (taken as abandoned while this process was silent): the run stops. */
class ImportAbandoned extends Error {
  constructor() {
    super("the import is no longer running: it was taken as abandoned or ended elsewhere; this run stopped");
    this.name = "ImportAbandoned";
  }
}

/** Another run of the same import moved the chunk first (see ./store.ts): this run leaves the chunk to it. */
class ChunkTaken extends Error {
  constructor() {
    super("another run of the import claimed the chunk");
    this.name = "ChunkTaken";
  }
}

/**
 * Validates, then (unless dry run) imports or resumes. Throws a BridgeError for a request that
 * cannot start (unknown organization, no directory, unreadable file); a file with problems gives a
 * report in state "invalid" and sends nothing.
 */
export async function runImport(deps: ImportDeps, request: ImportRequest): Promise<ImportReport> {
  const { org, directoryId } = await resolveTarget(deps.store, request);
  const fileName = request.fileName ?? request.filePath.split(/[\\/]/).pop() ?? request.filePath;
  const report = emptyReport(request, org, fileName);
  const now = deps.now ?? Date.now;
  request.onProgress?.({ phase: "validating", records: 0, chunks: 0, chunksDone: 0, imported: 0, failed: 0 });
  const plan = await planImport(
    request.filePath,
    request.format,
    org.id,
    deps.maxChunkBytes ?? MAX_CHUNK_BYTES,
    (n) => {
      if (n % 1000 === 0)
        request.onProgress?.({ phase: "validating", records: n, chunks: 0, chunksDone: 0, imported: 0, failed: 0 });
    },
  );
  report.records = plan.records;
  report.chunks = plan.chunks.length;
  report.problems = plan.problems;
  report.problemCount = plan.problemCount;
  if (plan.problemCount > 0) return report;
  if (request.dryRun) return { ...report, state: "planned" };

  // Refused (409) while another import of the organization runs, on whichever instance.
  const claim = await deps.store.write(() =>
    claimImport({
      organizationId: org.id,
      directoryId,
      fileSha256: plan.sha256,
      fileName,
      format: request.format,
      upsert: request.upsert === true,
      connection: org.connection,
      records: plan.records,
      chunks: plan.chunks,
      actor: request.actor,
      at: now(),
    }),
  );
  const row = claim.row;
  // The same file again after it was fully imported: nothing to do, and nothing is sent.
  if (row.state === "done") return { ...(await deps.store.read(importReport(row.id)))!, resumed: true };
  if (claim.resumed) {
    report.resumed = true;
    deps.log?.info(
      { importId: row.id, organization: org.slug },
      "user import: resuming an interrupted import of the same file",
    );
  }
  request.onStarted?.(row.id);
  const run = new ImportRun(deps, request, org, row);
  try {
    await run.run();
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    if (err instanceof ImportAbandoned) {
      // Its state and reason are already recorded; overwriting them would hide why.
      deps.log?.warn({ importId: row.id }, `user import: ${message}`);
    } else if (!request.signal?.aborted) {
      await deps.store.write(failImport(row.id, message, now()));
      deps.log?.error({ err, importId: row.id }, "user import failed; run it again with the same file to resume");
    }
  }
  const final = (await deps.store.read(importReport(row.id)))!;
  return {
    ...final,
    resumed: report.resumed,
    state: request.signal?.aborted && final.state === "running" ? "stopped" : final.state,
  };
}
