/**
 * Bulk user import jobs (auth0.com/docs/manage-users/user-migration/bulk-user-imports; endpoint pages
 * …/api/management/v2/jobs/post-users-imports, get-jobs-by-id, get-errors):
 * - `POST /jobs/users-imports` takes multipart/form-data with a `users` JSON file and `connection_id`
 *   (`^con_[A-Za-z0-9]{16}$`, a database connection), plus `upsert`, `external_id`,
 *   `send_completion_email`; it answers 202 with a pending job. The request may not exceed 512,000
 *   bytes (413 "Payload content length greater than maximum allowed: 512000").
 * - At most 2 concurrent import jobs per tenant ("Limits"). The docs do not give the error for a
 *   third, so the emulator refuses it with 429 rather than queueing it.
 * - The job runs asynchronously: pending → processing (percentage_done, time_left_seconds) →
 *   completed with summary {total, inserted, updated, failed}; a file that is not a JSON array fails
 *   the whole job. Invalid users do not fail the job: `GET /jobs/{id}/errors` lists them with
 *   {code, message, path}, secrets redacted as "*****"; 204 when there are none.
 * - Without upsert, a user matching an existing one on email, user_id or username fails; with
 *   upsert, a match on email updates only the upsertable fields (metadata replaced, not merged).
 */
import { ApiError, badRequest, tooManyRequests } from "./errors.js";
import { validateCustomHash, type StoredPassword } from "./password-hashes.js";
import type { Router } from "./router.js";
import type { EmulatorState } from "./state.js";
import type { ImportJob } from "./import-job-store.js";
import type { User } from "./types.js";
import { isDatabase, RESERVED_APP_METADATA_KEYS } from "./routes/user-rules.js";
import { isPlainObject, nowIso, randomAlnum, randomHex } from "./util.js";

export const MAX_IMPORT_PAYLOAD_BYTES = 512_000;
export const MAX_CONCURRENT_IMPORT_JOBS = 2;
const CONNECTION_ID = /^con_[A-Za-z0-9]{16}$/;
const EMAIL = /^[^\s@]+@[^\s@]+\.[^\s@]+$/;
const E164 = /^\+[1-9][0-9]{1,14}$/;

/** A parsed multipart/form-data body; its JSON form (the call log) leaves the file's content out. */
export class MultipartBody {
  constructor(
    readonly fields: Record<string, string>,
    readonly files: Record<string, { filename: string; content: string }>,
    readonly byteLength: number,
  ) {}
  toJSON(): unknown {
    return {
      fields: this.fields,
      files: Object.fromEntries(
        Object.entries(this.files).map(([k, f]) => [k, { filename: f.filename, bytes: Buffer.byteLength(f.content) }]),
      ),
    };
  }
}

export const isMultipart = (contentType: string): boolean => /^multipart\/form-data/i.test(contentType);

/** RFC 7578 multipart/form-data, enough for what node-auth0's FormData sends. */
export function parseMultipart(raw: string, contentType: string): MultipartBody {
  const m = /boundary=(?:"([^"]+)"|([^;\s]+))/i.exec(contentType);
  const boundary = m?.[1] ?? m?.[2];
  if (!boundary) throw badRequest("Invalid multipart payload: no boundary", "invalid_body");
  const fields: Record<string, string> = {};
  const files: Record<string, { filename: string; content: string }> = {};
  const parts = raw.split(`--${boundary}`);
  for (const part of parts.slice(1)) {
    if (part.startsWith("--")) break;
    const headerEnd = part.indexOf("\r\n\r\n");
    if (headerEnd < 0) throw badRequest("Invalid multipart payload", "invalid_body");
    const headers = part.slice(0, headerEnd);
    let content = part.slice(headerEnd + 4);
    if (content.endsWith("\r\n")) content = content.slice(0, -2);
    const name = /name="([^"]*)"/i.exec(headers)?.[1];
    if (name === undefined) continue;
    const filename = /filename="([^"]*)"/i.exec(headers)?.[1];
    if (filename !== undefined) files[name] = { filename, content };
    else fields[name] = content;
  }
  return new MultipartBody(fields, files, Buffer.byteLength(raw));
}

function booleanField(fields: Record<string, string>, name: string, fallback: boolean): boolean {
  const v = fields[name];
  if (v === undefined) return fallback;
  if (v === "true") return true;
  if (v === "false") return false;
  throw badRequest(
    `Payload validation error: 'Expected type boolean but found type string' on property ${name}.`,
    "invalid_body",
  );
}

function jobJson(job: ImportJob): Record<string, unknown> {
  const base: Record<string, unknown> = {
    status: job.status,
    type: "users_import",
    created_at: job.created_at,
    id: job.id,
    connection_id: job.connection_id,
    ...(job.external_id !== undefined ? { external_id: job.external_id } : {}),
    upsert: job.upsert,
    send_completion_email: job.send_completion_email,
  };
  if (job.status === "processing") {
    const elapsed = Date.now() - job.startedAt;
    base.percentage_done = Math.min(99, Math.floor((elapsed / job.durationMs) * 100));
    base.time_left_seconds = Math.max(0, Math.ceil((job.durationMs - elapsed) / 1000));
  }
  if (job.summary) base.summary = job.summary;
  if (job.status_details) base.status_details = job.status_details;
  return base;
}

/** The view of a job as it stands now: pending at first, processing once started, done at its end. */
function refresh(job: ImportJob): void {
  if (job.status === "pending" && Date.now() >= job.startedAt) job.status = "processing";
}

const USER_KEYS = new Set([
  "email",
  "email_verified",
  "user_id",
  "username",
  "given_name",
  "family_name",
  "name",
  "nickname",
  "picture",
  "blocked",
  "phone_number",
  "phone_verified",
  "app_metadata",
  "user_metadata",
  "password_hash",
  "custom_password_hash",
  "mfa_factors",
]);
const STRING_KEYS = [
  "email",
  "user_id",
  "username",
  "given_name",
  "family_name",
  "name",
  "nickname",
  "picture",
  "phone_number",
  "password_hash",
];
const BOOLEAN_KEYS = ["email_verified", "blocked", "phone_verified"];
const UPSERTABLE = [
  "email_verified",
  "given_name",
  "family_name",
  "name",
  "nickname",
  "picture",
  "app_metadata",
  "user_metadata",
];

/** The user schema's rules (bulk-user-import-schema): every violation, with Auth0's codes. */
export function validateImportUser(u: unknown): { code: string; message: string; path: string }[] {
  const errors: { code: string; message: string; path: string }[] = [];
  if (!isPlainObject(u)) return [{ code: "INVALID_TYPE", message: "Expected type object", path: "" }];
  for (const key of Object.keys(u))
    if (!USER_KEYS.has(key))
      errors.push({ code: "OBJECT_REQUIRED", message: `Additional properties not allowed: ${key}`, path: key });
  if (u.email === undefined)
    errors.push({ code: "OBJECT_REQUIRED", message: "Missing required property: email", path: "email" });
  for (const key of STRING_KEYS)
    if (u[key] !== undefined && typeof u[key] !== "string")
      errors.push({ code: "INVALID_TYPE", message: `Expected type string but found type ${typeof u[key]}`, path: key });
  for (const key of BOOLEAN_KEYS)
    if (u[key] !== undefined && typeof u[key] !== "boolean")
      errors.push({
        code: "INVALID_TYPE",
        message: `Expected type boolean but found type ${typeof u[key]}`,
        path: key,
      });
  for (const key of ["app_metadata", "user_metadata"])
    if (u[key] !== undefined && !isPlainObject(u[key]))
      errors.push({ code: "INVALID_TYPE", message: "Expected type object", path: key });
  if (typeof u.email === "string" && !EMAIL.test(u.email))
    errors.push({
      code: "FORMAT",
      message: `Object didn't pass validation for format email: ${u.email}`,
      path: "email",
    });
  if (typeof u.phone_number === "string" && !E164.test(u.phone_number))
    errors.push({
      code: "PATTERN",
      message: "String does not match pattern ^\\+[1-9][0-9]{1,14}$",
      path: "phone_number",
    });
  if (isPlainObject(u.app_metadata)) {
    for (const key of Object.keys(u.app_metadata))
      if (RESERVED_APP_METADATA_KEYS.has(key))
        errors.push({
          code: "FORMAT",
          message: `'${key}' is a reserved key and cannot be used in app_metadata`,
          path: `app_metadata.${key}`,
        });
  }
  if (u.password_hash !== undefined && u.custom_password_hash !== undefined) {
    errors.push({
      code: "NOT_PASSED",
      message: "password_hash and custom_password_hash are mutually exclusive",
      path: "custom_password_hash",
    });
  }
  if (typeof u.password_hash === "string" && !/^\$2[ab]\$\d{2}\$[./A-Za-z0-9]{53}$/.test(u.password_hash)) {
    errors.push({
      code: "PATTERN",
      message: "password_hash must be a bcrypt hash ($2a$ or $2b$)",
      path: "password_hash",
    });
  }
  if (u.custom_password_hash !== undefined) for (const p of validateCustomHash(u.custom_password_hash)) errors.push(p);
  if (u.mfa_factors !== undefined) {
    if (!Array.isArray(u.mfa_factors) || u.mfa_factors.length < 1 || u.mfa_factors.length > 10)
      errors.push({ code: "ARRAY_LENGTH_LONG", message: "mfa_factors takes 1 to 10 items", path: "mfa_factors" });
  }
  return errors;
}

/** Secrets never come back: hash values and keys are replaced by "*****", as Auth0's error report does. */
function redact(u: unknown): Record<string, unknown> {
  if (!isPlainObject(u)) return {};
  const copy = structuredClone(u);
  if (typeof copy.password_hash === "string") copy.password_hash = "*****";
  const c = copy.custom_password_hash;
  if (isPlainObject(c)) {
    if (isPlainObject(c.hash)) {
      c.hash.value = "*****";
      if (isPlainObject(c.hash.key)) c.hash.key.value = "*****";
    }
    if (isPlainObject(c.salt)) c.salt.value = "*****";
  }
  return copy;
}

function runJob(state: EmulatorState, job: ImportJob): void {
  const connection = state.connections.get(job.connection_id);
  if (!Array.isArray(job.users) || !connection) {
    job.status = "failed";
    job.endedAt = Date.now();
    job.status_details = "Failed to parse users file JSON when importing users. Make sure it is valid JSON.";
    job.users = undefined;
    return;
  }
  const list = job.users as unknown[];
  let inserted = 0;
  let updated = 0;
  // The connection's users by email and username, kept current as the job inserts.
  const byEmailIndex = new Map<string, User>();
  const usernames = new Set<string>();
  for (const x of state.users.values()) {
    if (!x.identities.some((i) => i.connection === connection.name)) continue;
    if (x.email) byEmailIndex.set(x.email, x);
    if (x.username) usernames.add(x.username);
  }
  for (const raw of list) {
    const problems = validateImportUser(raw);
    if (problems.length > 0) {
      job.errors.push({ user: redact(raw), errors: problems });
      continue;
    }
    const u = raw as Record<string, unknown>;
    const email = (u.email as string).toLowerCase();
    const localId = typeof u.user_id === "string" ? u.user_id : randomHex(12);
    const userId = `auth0|${localId}`;
    const byEmail = byEmailIndex.get(email);
    if (byEmail && job.upsert) {
      const next: User = structuredClone(byEmail);
      for (const key of UPSERTABLE)
        if (u[key] !== undefined) (next as unknown as Record<string, unknown>)[key] = u[key];
      if (u.email_verified === undefined) next.email_verified = byEmail.email_verified;
      if (u.custom_password_hash !== undefined) {
        const current = state.passwords.get(byEmail.user_id);
        if (current?.kind !== "custom") {
          job.errors.push({
            user: redact(raw),
            errors: [
              {
                code: "CONFLICT",
                message: "A custom_password_hash was provided, but the user already has password hash defined",
                path: "custom_password_hash",
              },
            ],
          });
          continue;
        }
        state.passwords.set(byEmail.user_id, {
          kind: "custom",
          spec: structuredClone(u.custom_password_hash) as Record<string, unknown>,
        });
      }
      next.updated_at = nowIso();
      state.saveUser(next);
      byEmailIndex.set(email, next);
      updated++;
      continue;
    }
    const conflict =
      (byEmail && { code: "CONFLICT_EMAIL", path: "email" }) ||
      (state.users.has(userId) && { code: "CONFLICT", path: "user_id" }) ||
      (typeof u.username === "string" &&
        usernames.has(u.username) && { code: "CONFLICT_USERNAME", path: "username" }) ||
      undefined;
    if (conflict) {
      job.errors.push({
        user: redact(raw),
        errors: [{ ...conflict, message: "The user already exist and upsert parameter is false" }],
      });
      continue;
    }
    const now = nowIso();
    const user: User = {
      user_id: userId,
      email,
      email_verified: u.email_verified === true,
      ...(typeof u.username === "string" ? { username: u.username } : {}),
      ...(typeof u.phone_number === "string"
        ? { phone_number: u.phone_number, phone_verified: u.phone_verified === true }
        : {}),
      ...(typeof u.given_name === "string" ? { given_name: u.given_name } : {}),
      ...(typeof u.family_name === "string" ? { family_name: u.family_name } : {}),
      name: typeof u.name === "string" ? u.name : email,
      nickname: typeof u.nickname === "string" ? u.nickname : email.split("@")[0]!,
      ...(typeof u.picture === "string" ? { picture: u.picture } : {}),
      ...(u.blocked === true ? { blocked: true } : {}),
      app_metadata: isPlainObject(u.app_metadata) ? structuredClone(u.app_metadata) : {},
      user_metadata: isPlainObject(u.user_metadata) ? structuredClone(u.user_metadata) : {},
      identities: [{ connection: connection.name, provider: "auth0", user_id: localId, isSocial: false }],
      created_at: now,
      updated_at: now,
      logins_count: 0,
    };
    state.saveUser(user);
    byEmailIndex.set(email, user);
    if (user.username) usernames.add(user.username);
    const password: StoredPassword | undefined =
      typeof u.password_hash === "string"
        ? { kind: "bcrypt", hash: u.password_hash }
        : u.custom_password_hash !== undefined
          ? { kind: "custom", spec: structuredClone(u.custom_password_hash) as Record<string, unknown> }
          : undefined;
    if (password) state.passwords.set(userId, password);
    inserted++;
  }
  job.summary = { total: list.length, inserted, updated, failed: job.errors.length };
  job.status = "completed";
  job.endedAt = Date.now();
  job.users = undefined; // the file is not kept once processed
}

export function registerImportJobRoutes(router: Router): void {
  router.add("POST", "/jobs/users-imports", "other", ({ state, body }) => {
    if (!(body instanceof MultipartBody))
      throw badRequest("Must provide 'users' file as multipart part", "invalid_body");
    if (body.byteLength > MAX_IMPORT_PAYLOAD_BYTES) {
      throw new ApiError(413, `Payload content length greater than maximum allowed: ${MAX_IMPORT_PAYLOAD_BYTES}`);
    }
    const file =
      body.files.users ??
      (body.fields.users !== undefined ? { filename: "users.json", content: body.fields.users } : undefined);
    if (!file) throw badRequest("Must provide 'users' file as multipart part", "invalid_body");
    if (file.content.trim() === "") throw badRequest("Users file must not be empty", "invalid_body");
    const connectionId = body.fields.connection_id;
    if (connectionId === undefined) throw badRequest("Must provide 'connection_id' as multipart part", "invalid_body");
    if (!CONNECTION_ID.test(connectionId)) {
      throw badRequest(
        `Payload validation error: 'String does not match pattern ^con_[A-Za-z0-9]{16}$: ${connectionId}' on property connection_id.`,
        "invalid_body",
      );
    }
    const connection = state.connections.get(connectionId);
    if (!connection) throw badRequest("The connection does not exist", "inexistent_connection");
    if (!isDatabase(connection)) throw badRequest("Connection must be a database connection", "invalid_body");
    const upsert = booleanField(body.fields, "upsert", false);
    const sendEmail = booleanField(body.fields, "send_completion_email", true);
    const store = state.importJobs;
    if (store.running().length >= MAX_CONCURRENT_IMPORT_JOBS) {
      const e = tooManyRequests({});
      throw new ApiError(
        429,
        `There are already ${MAX_CONCURRENT_IMPORT_JOBS} user import jobs pending or running for this tenant; wait until one completes.`,
        "too_many_requests",
        e.headers,
      );
    }
    let users: unknown;
    try {
      users = JSON.parse(file.content);
    } catch {
      users = undefined; // the job fails as a whole, as Auth0's does for an unreadable file
    }
    const count = Array.isArray(users) ? users.length : 0;
    const job: ImportJob = {
      createdMs: Date.now(),
      id: `job_${randomAlnum(16)}`,
      connection_id: connectionId,
      ...(body.fields.external_id !== undefined ? { external_id: body.fields.external_id } : {}),
      upsert,
      send_completion_email: sendEmail,
      created_at: nowIso(),
      status: "pending",
      // Pending for a moment, then processing for the rest of its duration.
      startedAt: Date.now() + Math.min(store.timing.baseMs, 50),
      durationMs: store.timing.baseMs + count * store.timing.perUserMs,
      users,
      errors: [],
    };
    store.jobs.set(job.id, job);
    job.timer = setTimeout(() => {
      job.timer = undefined;
      if (store.jobs.get(job.id) === job) runJob(state, job);
    }, job.durationMs);
    job.timer.unref?.();
    return { status: 202, body: jobJson(job) };
  });

  router.add("GET", "/jobs/:id", "other", ({ state, params }) => {
    const job = state.importJobs.jobs.get(params.id!);
    if (!job) throw new ApiError(404, "Job not found", "inexistent_job");
    refresh(job);
    return { status: 200, body: jobJson(job) };
  });

  router.add("GET", "/jobs/:id/errors", "other", ({ state, params }) => {
    const job = state.importJobs.jobs.get(params.id!);
    if (!job) throw new ApiError(404, "The job does not exist", "inexistent_job");
    refresh(job);
    if (job.status === "failed") {
      const { status, type, created_at, id, connection_id, status_details } = jobJson(job) as Record<string, unknown>;
      return { status: 200, body: { status, type, created_at, id, connection_id, status_details } };
    }
    if (job.status !== "completed" || job.errors.length === 0) return { status: 204 };
    return { status: 200, body: job.errors };
  });
}
