/**
 * The user import's store work (user_imports, user_import_chunks, and the links an import writes),
 * as store ops that run on SQLite and on PostgreSQL alike (src/directory/store-op.ts), so that the
 * service's control flow holds no SQL.
 *
 * Several instances may run the same import (the same file uploaded twice, or a rerun while the
 * first run still lives). What keeps each chunk posted and linked once:
 * - the import claim (`claimImport`) locks the organization's row, so finding the import of a file
 *   and creating it when there is none is one step per organization (no two imports of one file);
 * - every chunk transition is a conditional update on the state (and attempt) the run last saw:
 *   of two runs that saw the same chunk, exactly one moves it, the other leaves it to the winner.
 */
import type { userImportChunks, userImports } from "../../../db/schema.js";
import { recordAudit, type Actor } from "../../directory/audit.js";
import { newResourceId } from "../../directory/ids.js";
import { exec, forUpdate, jsonTextList, many, one, type StoreOp } from "../../directory/store-op.js";
import { conflict, notFound } from "../../errors.js";
import type { ImportFormat } from "./records.js";

export type ImportRow = typeof userImports.$inferSelect;
export type ChunkRow = typeof userImportChunks.$inferSelect;

/** An import's state as stored: "running", "done" or "failed". */
export type ImportState = "running" | "done" | "failed";

/** How often a run writes its import's heartbeat. */
export const IMPORT_HEARTBEAT_MS = 30_000;

/**
 * A running import whose heartbeat is older than this is taken as abandoned (the instance running
 * it stopped) when another import of its organization asks to start. Ten missed heartbeats: the
 * heartbeats are written on the running instance's clock and compared on the starting one's, so
 * the margin also absorbs clocks that disagree by minutes, far beyond what NTP leaves.
 */
export const IMPORT_STALE_MS = 5 * 60_000;

const importColumns = `id, organization_id AS "organizationId", directory_id AS "directoryId",
  file_sha256 AS "fileSha256", file_name AS "fileName", format, upsert, connection, state, records, chunks,
  last_error AS "lastError", created_by AS "createdBy", created_at AS "createdAt", updated_at AS "updatedAt",
  heartbeat_at AS "heartbeatAt"`;

const chunkColumns = `import_id AS "importId", chunk, first_record AS "firstRecord", last_record AS "lastRecord",
  users, bytes, state, attempts, job_id AS "jobId", inserted, updated, failed, errors,
  submitted_at AS "submittedAt", completed_at AS "completedAt"`;

/** `upsert` arrives as 1/0 on both dialects; the row type keeps its boolean. */
const importRow = (row: Omit<ImportRow, "upsert"> & { upsert: unknown }): ImportRow => ({
  ...row,
  upsert: row.upsert === 1 || row.upsert === true,
});

export function* getImport(importId: string): StoreOp<ImportRow | undefined> {
  const row = yield* one<ImportRow>(`SELECT ${importColumns} FROM user_imports WHERE id = ?`, [importId]);
  return row && importRow(row);
}

/** Imports of an organization, newest first. */
export function* listImports(organizationId: string): StoreOp<ImportRow[]> {
  const rows = yield* many<ImportRow>(
    `SELECT ${importColumns} FROM user_imports WHERE organization_id = ? ORDER BY created_at DESC, id DESC`,
    [organizationId],
  );
  return rows.map(importRow);
}

/** The chunks of an import, in file order. */
export function* importChunks(importId: string): StoreOp<ChunkRow[]> {
  return yield* many<ChunkRow>(`SELECT ${chunkColumns} FROM user_import_chunks WHERE import_id = ? ORDER BY chunk`, [
    importId,
  ]);
}

/** An import, the slug of its organization and its chunks, read together (the report's inputs). */
export function* importWithChunks(
  importId: string,
): StoreOp<{ row: ImportRow; organizationSlug: string; chunks: ChunkRow[] } | undefined> {
  const row = yield* one<ImportRow & { organizationSlug: string }>(
    `SELECT ${importColumns}, (SELECT o.slug FROM organizations o WHERE o.id = user_imports.organization_id) AS "organizationSlug"
     FROM user_imports WHERE id = ?`,
    [importId],
  );
  if (!row) return undefined;
  const { organizationSlug, ...rest } = row;
  return { row: importRow(rest), organizationSlug, chunks: yield* importChunks(importId) };
}

export interface ImportProgressCounts {
  /** Chunks that ended: linked, or failed as a whole. */
  chunksDone: number;
  /** Users Auth0 inserted or updated in the linked chunks. */
  imported: number;
  /** Records Auth0 refused. */
  failed: number;
}

/** The progress counters of an import, summed by the database. */
export function* importProgress(importId: string): StoreOp<ImportProgressCounts> {
  // sum() is numeric on PostgreSQL: cast back to int8, which arrives as a number.
  const row = yield* one<ImportProgressCounts>(
    `SELECT count(*) FILTER (WHERE state IN ('linked', 'failed')) AS "chunksDone",
       CAST(coalesce(sum(CASE WHEN state = 'linked' THEN coalesce(inserted, 0) + coalesce(updated, 0) ELSE 0 END), 0) AS bigint) AS imported,
       CAST(coalesce(sum(coalesce(failed, 0)), 0) AS bigint) AS failed
     FROM user_import_chunks WHERE import_id = ?`,
    [importId],
  );
  return row ?? { chunksDone: 0, imported: 0, failed: 0 };
}

export interface ChunkPlan {
  chunk: number;
  firstRecord: number;
  lastRecord: number;
  users: number;
  bytes: number;
}

export interface NewImport {
  organizationId: string;
  directoryId: string;
  fileSha256: string;
  fileName: string;
  format: ImportFormat;
  upsert: boolean;
  connection: string;
  records: number;
  chunks: ChunkPlan[];
  actor: Actor;
  at: number;
}

export interface ImportClaim {
  row: ImportRow;
  /** An earlier import of the same file was found (running, failed or done) and taken up again. */
  resumed: boolean;
}

/**
 * Takes up the import of a file: the organization's latest import of the same file (same SHA-256
 * and upsert) when there is one (a done import is returned as it is, nothing to do; a running or
 * failed one runs again, its chunks that failed as a whole back to pending), else a new import with
 * its planned chunks and an audit entry, all in the caller's transaction.
 *
 * Refused (409) while another import of the organization is running: one at a time per organization.
 * A running import whose heartbeat is older than IMPORT_STALE_MS (its instance stopped) does not
 * count: it is marked failed as abandoned, with the reason in its report and an audit entry, and
 * the new import starts. Running its file again later resumes it, as for any failed import.
 *
 * Find-then-create is made safe with several instances by locking the organization's row first
 * (FOR UPDATE on PostgreSQL; SQLite runs one write transaction at a time): two uploads of the same
 * file find, in turn, one import, and two uploads of different files start one.
 */
export function* claimImport(input: NewImport): StoreOp<ImportClaim> {
  const org = yield* one<{ slug: string }>(`SELECT slug FROM organizations WHERE id = ? ${yield* forUpdate()}`, [
    input.organizationId,
  ]);
  if (!org) throw notFound(`organization ${input.organizationId} no longer exists`);
  const found = yield* one<ImportRow>(
    `SELECT ${importColumns} FROM user_imports
     WHERE organization_id = ? AND file_sha256 = ? AND upsert = ? AND state IN ('running', 'failed', 'done')
     ORDER BY created_at DESC, id DESC LIMIT 1`,
    [input.organizationId, input.fileSha256, input.upsert],
  );
  if (found?.state === "done") return { row: importRow(found), resumed: true };
  // One running import per organization, whichever instance runs it: two imports at once would
  // split Auth0's two job slots and race on the same people. Another run of that same import is
  // not a second import (it shares the chunks); the organization's row lock above makes this
  // check-then-start atomic across instances.
  const running = yield* many<{ id: string; fileName: string; heartbeatAt: number }>(
    `SELECT id, file_name AS "fileName", coalesce(heartbeat_at, updated_at) AS "heartbeatAt" FROM user_imports
     WHERE organization_id = ? AND state = 'running' AND id <> ? ORDER BY created_at, id`,
    [input.organizationId, found?.id ?? ""],
  );
  const live = running.find((r) => input.at - r.heartbeatAt <= IMPORT_STALE_MS);
  if (live)
    throw conflict(
      `organization ${org.slug} already has a user import running (${live.id}, file "${live.fileName}"); ` +
        `wait until it ends, or, if its process stopped, run that file again to resume it ` +
        `(an import silent for ${IMPORT_STALE_MS / 60_000} minutes is taken as abandoned, and another may then start)`,
    );
  for (const stale of running) yield* abandonImport(stale, input.organizationId, input.actor, input.at);
  if (found) {
    // A job that failed as a whole is tried again; users Auth0 already holds are refused, not doubled.
    yield* exec(
      `UPDATE user_import_chunks SET state = 'pending', job_id = NULL WHERE import_id = ? AND state = 'failed'`,
      [found.id],
    );
    const row = (yield* one<ImportRow>(
      `UPDATE user_imports SET state = 'running', updated_at = ?, heartbeat_at = ? WHERE id = ? RETURNING ${importColumns}`,
      [input.at, input.at, found.id],
    ))!;
    return { row: importRow(row), resumed: true };
  }
  const id = newResourceId();
  const row = (yield* one<ImportRow>(
    `INSERT INTO user_imports (id, organization_id, directory_id, file_sha256, file_name, format, upsert, connection,
       state, records, chunks, last_error, created_by, created_at, updated_at, heartbeat_at)
     VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'running', ?, ?, NULL, ?, ?, ?, ?) RETURNING ${importColumns}`,
    [
      id,
      input.organizationId,
      input.directoryId,
      input.fileSha256,
      input.fileName,
      input.format,
      input.upsert,
      input.connection,
      input.records,
      input.chunks.length,
      `${input.actor.type}:${input.actor.id}`,
      input.at,
      input.at,
      input.at,
    ],
  ))!;
  for (const c of input.chunks)
    yield* exec(
      `INSERT INTO user_import_chunks (import_id, chunk, first_record, last_record, users, bytes, state, attempts)
       VALUES (?, ?, ?, ?, ?, ?, 'pending', 0)`,
      [id, c.chunk, c.firstRecord, c.lastRecord, c.users, c.bytes],
    );
  yield* recordAudit({
    actor: input.actor,
    organizationId: input.organizationId,
    directoryId: input.directoryId,
    action: "users.import.start",
    targetType: "user_import",
    targetId: id,
    after: { fileName: input.fileName, records: input.records, chunks: input.chunks.length, upsert: input.upsert },
    at: input.at,
  });
  return { row: importRow(row), resumed: false };
}

/**
 * Ends a running import whose runs stopped reporting (see claimImport): failed, with the reason in
 * its report, and an audit entry naming the actor whose new import found it so.
 */
function* abandonImport(
  stale: { id: string; heartbeatAt: number },
  organizationId: string,
  actor: Actor,
  at: number,
): StoreOp<void> {
  const reason =
    `abandoned: no run of this import reported since ${new Date(stale.heartbeatAt).toISOString()} ` +
    `(over ${IMPORT_STALE_MS / 60_000} minutes; the instance running it stopped), so another import of the ` +
    "organization was let start; run the same file again to resume this one";
  yield* exec(`UPDATE user_imports SET state = 'failed', last_error = ?, updated_at = ? WHERE id = ?`, [
    reason,
    at,
    stale.id,
  ]);
  yield* recordAudit({
    actor,
    organizationId,
    action: "users.import.abandon",
    targetType: "user_import",
    targetId: stale.id,
    after: { state: "failed", heartbeatAt: stale.heartbeatAt },
    at,
  });
}

/**
 * A run's sign of life: the import's heartbeat, while it is running. False when it no longer is
 * (another import found it silent and marked it abandoned, or another run ended it): the run stops.
 */
export function* heartbeatImport(importId: string, at: number): StoreOp<boolean> {
  const changed = yield* exec(`UPDATE user_imports SET heartbeat_at = ? WHERE id = ? AND state = 'running'`, [
    at,
    importId,
  ]);
  return changed === 1;
}

/** What a run last saw of a chunk: its transitions are conditional on it. */
export interface ChunkSeen {
  state: string;
  attempts: number;
}

/**
 * Claims a chunk for one POST: state → submitting, one more attempt, written before the POST so
 * that a crash after it is known. Conditional on the state and attempt the run saw: false when
 * another run moved the chunk first (it posts and links the chunk; this run leaves it).
 */
export function* claimChunkSubmit(importId: string, chunk: number, seen: ChunkSeen): StoreOp<boolean> {
  const changed = yield* exec(
    `UPDATE user_import_chunks SET state = 'submitting', attempts = attempts + 1
     WHERE import_id = ? AND chunk = ? AND state = ? AND attempts = ?`,
    [importId, chunk, seen.state, seen.attempts],
  );
  return changed === 1;
}

/** Records the job Auth0 created for the chunk's POST `attempt`; false when another run claimed the chunk since. */
export function* recordChunkSubmitted(
  importId: string,
  chunk: number,
  attempt: number,
  jobId: string,
  at: number,
): StoreOp<boolean> {
  const changed = yield* exec(
    `UPDATE user_import_chunks SET state = 'submitted', job_id = ?, submitted_at = ?
     WHERE import_id = ? AND chunk = ? AND state = 'submitting' AND attempts = ?`,
    [jobId, at, importId, chunk, attempt],
  );
  return changed === 1;
}

/**
 * Ends the chunk whose job `jobId` failed as a whole, with the failure of each of its records (JSON,
 * no secrets). Conditional on the chunk still waiting for that job: false when another run ended it.
 */
export function* failChunk(
  importId: string,
  chunk: number,
  jobId: string,
  outcome: { failed: number; errors: string; at: number },
): StoreOp<boolean> {
  const changed = yield* exec(
    `UPDATE user_import_chunks SET state = 'failed', completed_at = ?, failed = ?, errors = ?
     WHERE import_id = ? AND chunk = ? AND state = 'submitted' AND job_id = ?`,
    [outcome.at, outcome.failed, outcome.errors, importId, chunk, jobId],
  );
  return changed === 1;
}

export interface ChunkOutcome {
  inserted: number;
  updated: number;
  failed: number;
  at: number;
}

/**
 * Claims the right to link the chunk whose job `jobId` completed: state → linked with Auth0's
 * counts, first in the linking transaction, so that of two runs that polled the same job only one
 * records its users (the other's update finds the chunk linked and changes nothing: false).
 * `recordChunkLinked` then adds what the linking found, in the same transaction.
 */
export function* claimChunkLink(
  importId: string,
  chunk: number,
  jobId: string,
  outcome: ChunkOutcome,
): StoreOp<boolean> {
  const changed = yield* exec(
    `UPDATE user_import_chunks SET state = 'linked', completed_at = ?, inserted = ?, updated = ?, failed = ?
     WHERE import_id = ? AND chunk = ? AND state = 'submitted' AND job_id = ?`,
    [outcome.at, outcome.inserted, outcome.updated, outcome.failed, importId, chunk, jobId],
  );
  return changed === 1;
}

/** The per-record outcome of a linked chunk (failures by record, users recovered and linked) and the import's activity time. */
export function* recordChunkLinked(importId: string, chunk: number, errors: string, at: number): StoreOp<void> {
  yield* exec(`UPDATE user_import_chunks SET errors = ? WHERE import_id = ? AND chunk = ?`, [errors, importId, chunk]);
  yield* exec(`UPDATE user_imports SET updated_at = ? WHERE id = ?`, [at, importId]);
}

/** Of `userNamesLower`, those a live user of the directory already has. One statement whatever the list's length. */
export function* takenUserNames(directoryId: string, userNamesLower: readonly string[]): StoreOp<Set<string>> {
  if (userNamesLower.length === 0) return new Set();
  const rows = yield* many<{ lower: string }>(
    `SELECT user_name_lower AS lower FROM users
     WHERE directory_id = ? AND deleted_at IS NULL AND user_name_lower IN (${yield* jsonTextList()})`,
    [directoryId, JSON.stringify(userNamesLower)],
  );
  return new Set(rows.map((r) => r.lower));
}

export interface UserSyncLink {
  userId: string;
  directoryId: string;
  organizationId: string;
  auth0UserId: string;
  /** JSON of the applied Auth0 state. */
  applied: string;
  appliedAt: number;
}

/** Rows per multi-row insert: 6 parameters each, far under either dialect's limit of bound parameters. */
const LINKS_PER_INSERT = 200;

/** Links migrated users to the Auth0 users the import created (their user_sync rows), in multi-row statements. */
export function* insertUserSyncLinks(links: readonly UserSyncLink[]): StoreOp<void> {
  for (let i = 0; i < links.length; i += LINKS_PER_INSERT) {
    const batch = links.slice(i, i + LINKS_PER_INSERT);
    yield* exec(
      `INSERT INTO user_sync (user_id, directory_id, organization_id, auth0_user_id, applied, applied_at)
       VALUES ${batch.map(() => "(?, ?, ?, ?, ?, ?)").join(", ")}`,
      batch.flatMap((l) => [l.userId, l.directoryId, l.organizationId, l.auth0UserId, l.applied, l.appliedAt]),
    );
  }
}

/**
 * Ends a running import once every chunk has ended: done when all were linked, else failed (a job
 * failed as a whole), with an audit entry, in the caller's transaction. The import row is locked
 * (FOR UPDATE on PostgreSQL) so that two runs ending the same import record one outcome. Returns
 * the import's state: still "running" while another run has chunks in flight (it ends the import),
 * or whatever another run already recorded.
 */
export function* finishImport(importId: string, actor: Actor, at: number): StoreOp<ImportState> {
  const row = yield* one<{ state: ImportState; organizationId: string }>(
    `SELECT state, organization_id AS "organizationId" FROM user_imports WHERE id = ? ${yield* forUpdate()}`,
    [importId],
  );
  if (!row || row.state !== "running") return row?.state ?? "failed";
  const counts = (yield* one<{ total: number; linked: number; failed: number }>(
    `SELECT count(*) AS total, count(*) FILTER (WHERE state = 'linked') AS linked,
       count(*) FILTER (WHERE state = 'failed') AS failed
     FROM user_import_chunks WHERE import_id = ?`,
    [importId],
  ))!;
  if (counts.linked + counts.failed < counts.total) return "running";
  const state: ImportState = counts.failed === 0 ? "done" : "failed";
  yield* exec(`UPDATE user_imports SET state = ?, updated_at = ?, last_error = ? WHERE id = ?`, [
    state,
    at,
    counts.failed > 0
      ? `${counts.failed} import job${counts.failed === 1 ? "" : "s"} failed as a whole; see their details`
      : null,
    importId,
  ]);
  yield* recordAudit({
    actor,
    organizationId: row.organizationId,
    action: "users.import.finish",
    targetType: "user_import",
    targetId: importId,
    after: { state, chunks: counts.total, failedChunks: counts.failed },
    at,
  });
  return state;
}

/** Marks an import failed with the error that stopped its run (a rerun with the same file resumes it). */
export function* failImport(importId: string, message: string, at: number): StoreOp<void> {
  yield* exec(`UPDATE user_imports SET state = 'failed', last_error = ?, updated_at = ? WHERE id = ?`, [
    message,
    at,
    importId,
  ]);
}
