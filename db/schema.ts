/**
 * The bridge's SQLite schema (drizzle). Table and column names are dialect-neutral on purpose so that the
 * PostgreSQL schema (db/schema.pg.ts) mirrors it column for column; a change here needs the same change
 * there and `npm run db:generate` (test/postgres/schema-parity.test.ts fails until both agree):
 * - ids are text (uuid or prefixed random ids), never autoincrement except for append-only logs;
 * - timestamps are integer epoch milliseconds (bigint on PostgreSQL);
 * - JSON documents are text holding JSON (text on PostgreSQL too, so both return the same string).
 *
 * Every tenant-owned row carries directory_id or organization_id, and every query filters on it
 * (docs/design.md, invariant 5).
 */
import { sql } from "drizzle-orm";
import { index, integer, primaryKey, real, sqliteTable, text, uniqueIndex } from "drizzle-orm/sqlite-core";

/** One customer: an Auth0 Organization. */
export const organizations = sqliteTable(
  "organizations",
  {
    id: text("id").primaryKey(),
    /** Auth0 organization `name`: lowercase letters, digits, `-`, `_`. */
    slug: text("slug").notNull(),
    displayName: text("display_name").notNull(),
    /** "isolated" | "shared" (docs/design.md, "Concepts"). */
    userModel: text("user_model").notNull(),
    /** Auth0 connection name the organization's users live in. */
    connection: text("connection").notNull(),
    /** Auth0 organization id (org_…) once created or adopted by the sync engine. */
    auth0OrgId: text("auth0_org_id"),
    /** Active mapping version (mapping_versions.version); null until one is applied. */
    activeMappingVersion: integer("active_mapping_version"),
    createdAt: integer("created_at").notNull(),
    updatedAt: integer("updated_at").notNull(),
  },
  (t) => [uniqueIndex("organizations_slug_uq").on(t.slug)],
);

/** One SCIM client (IdP) pushing into an organization. */
export const directories = sqliteTable(
  "directories",
  {
    id: text("id").primaryKey(),
    organizationId: text("organization_id")
      .notNull()
      .references(() => organizations.id, { onDelete: "cascade" }),
    name: text("name").notNull(),
    createdAt: integer("created_at").notNull(),
    /**
     * Live (not deleted) users and groups, kept in the same transaction as every SCIM write so that a
     * list's totalResults costs O(1) instead of a count over the whole directory (RFC 7644 §3.4.2).
     */
    userCount: integer("user_count").notNull().default(0),
    groupCount: integer("group_count").notNull().default(0),
    /** Moves with every write of the directory's users or groups: cached page anchors are valid only while it stands still. */
    generation: integer("generation").notNull().default(0),
  },
  (t) => [index("directories_org_idx").on(t.organizationId)],
);

/** SCIM bearer tokens: SHA-256 of the secret only, at most two active per directory (enforced in code). */
export const scimTokens = sqliteTable(
  "scim_tokens",
  {
    id: text("id").primaryKey(),
    directoryId: text("directory_id")
      .notNull()
      .references(() => directories.id, { onDelete: "cascade" }),
    /** hex SHA-256 of the raw token. */
    tokenHash: text("token_hash").notNull(),
    /** Last four characters, so that people can tell tokens apart without the secret. */
    hint: text("hint").notNull(),
    createdAt: integer("created_at").notNull(),
    expiresAt: integer("expires_at"),
    revokedAt: integer("revoked_at"),
    lastUsedAt: integer("last_used_at"),
  },
  (t) => [uniqueIndex("scim_tokens_hash_uq").on(t.tokenHash), index("scim_tokens_dir_idx").on(t.directoryId)],
);

/**
 * SCIM users as the IdP pushed them (source of truth). `resource` holds the whole SCIM document
 * except id and meta; the other columns are extracted copies for filtering, sorting and uniqueness.
 * A DELETE sets deleted_at (a tombstone the sync engine needs to deprovision); SCIM then answers 404.
 */
export const users = sqliteTable(
  "users",
  {
    id: text("id").primaryKey(),
    directoryId: text("directory_id")
      .notNull()
      .references(() => directories.id, { onDelete: "cascade" }),
    userName: text("user_name").notNull(),
    /** lower(userName): RFC 7643 declares userName caseExact=false. */
    userNameLower: text("user_name_lower").notNull(),
    externalId: text("external_id"),
    displayName: text("display_name"),
    active: integer("active", { mode: "boolean" }).notNull(),
    resource: text("resource").notNull(),
    /** meta.version: bumped on every change; the ETag is W/"<version>". */
    version: integer("version").notNull(),
    createdAt: integer("created_at").notNull(),
    modifiedAt: integer("modified_at").notNull(),
    deletedAt: integer("deleted_at"),
  },
  (t) => [
    // Unique among live users only, so that a deleted userName can be created again.
    uniqueIndex("users_dir_username_uq")
      .on(t.directoryId, t.userNameLower)
      .where(sql`deleted_at IS NULL`),
    index("users_dir_external_idx").on(t.directoryId, t.externalId),
    index("users_dir_display_idx").on(t.directoryId, t.displayName),
    index("users_dir_modified_idx").on(t.directoryId, t.modifiedAt),
    // SCIM's default order (creation) over live users only: a page at OFFSET n skips n index entries
    // without reading a single row, since the index alone says which users are live.
    index("users_dir_live_created_idx")
      .on(t.directoryId, t.createdAt, t.id)
      .where(sql`deleted_at IS NULL`),
    // Keyset pages of the admin API and console: a range scan that stops after one page.
    index("users_dir_id_idx").on(t.directoryId, t.id),
  ],
);

/** emails[].value of each live user, lower-cased, so that `emails.value eq` and `emails[type eq "work"].value eq` run on an index. */
export const userEmails = sqliteTable(
  "user_emails",
  {
    userId: text("user_id")
      .notNull()
      .references(() => users.id, { onDelete: "cascade" }),
    directoryId: text("directory_id").notNull(),
    position: integer("position").notNull(),
    valueLower: text("value_lower").notNull(),
    type: text("type"),
    primary: integer("primary", { mode: "boolean" }).notNull().default(false),
  },
  (t) => [
    primaryKey({ columns: [t.userId, t.position] }),
    index("user_emails_dir_value_idx").on(t.directoryId, t.valueLower),
  ],
);

export const groups = sqliteTable(
  "groups",
  {
    id: text("id").primaryKey(),
    directoryId: text("directory_id")
      .notNull()
      .references(() => directories.id, { onDelete: "cascade" }),
    displayName: text("display_name").notNull(),
    displayNameLower: text("display_name_lower").notNull(),
    externalId: text("external_id"),
    /** SCIM document except id, meta and members (members are rows of group_members). */
    resource: text("resource").notNull(),
    version: integer("version").notNull(),
    memberCount: integer("member_count").notNull().default(0),
    createdAt: integer("created_at").notNull(),
    modifiedAt: integer("modified_at").notNull(),
    deletedAt: integer("deleted_at"),
  },
  (t) => [
    index("groups_dir_display_idx").on(t.directoryId, t.displayNameLower),
    index("groups_dir_external_idx").on(t.directoryId, t.externalId),
    index("groups_dir_modified_idx").on(t.directoryId, t.modifiedAt),
    index("groups_dir_live_created_idx")
      .on(t.directoryId, t.createdAt, t.id)
      .where(sql`deleted_at IS NULL`),
  ],
);

/** One row per membership, so that changing one member of a 50,000-member group costs O(1) rows. */
export const groupMembers = sqliteTable(
  "group_members",
  {
    groupId: text("group_id")
      .notNull()
      .references(() => groups.id, { onDelete: "cascade" }),
    memberId: text("member_id").notNull(),
    directoryId: text("directory_id").notNull(),
    /** "User" | "Group" */
    memberType: text("member_type").notNull(),
    display: text("display"),
    addedAt: integer("added_at").notNull(),
  },
  (t) => [primaryKey({ columns: [t.groupId, t.memberId] }), index("group_members_member_idx").on(t.memberId)],
);

/** A block placed by a customer admin or operator; it wins over the IdP until released (docs/design.md, "Concepts"). */
export const holds = sqliteTable(
  "holds",
  {
    id: text("id").primaryKey(),
    organizationId: text("organization_id")
      .notNull()
      .references(() => organizations.id, { onDelete: "cascade" }),
    directoryId: text("directory_id").notNull(),
    userId: text("user_id").notNull(),
    reason: text("reason").notNull(),
    placedBy: text("placed_by").notNull(),
    placedAt: integer("placed_at").notNull(),
    releasedBy: text("released_by"),
    releasedAt: integer("released_at"),
  },
  (t) => [index("holds_user_idx").on(t.userId), index("holds_org_idx").on(t.organizationId)],
);

/** Per-user applied state: what the bridge last wrote to Auth0 successfully, and the last error. */
export const userSync = sqliteTable(
  "user_sync",
  {
    userId: text("user_id").primaryKey(),
    directoryId: text("directory_id").notNull(),
    organizationId: text("organization_id").notNull(),
    auth0UserId: text("auth0_user_id"),
    /** JSON of the applied Auth0 state (mapping's AppliedState). */
    applied: text("applied"),
    appliedAt: integer("applied_at"),
    lastError: text("last_error"),
    lastErrorAt: integer("last_error_at"),
  },
  // The post-login hook looks users up by Auth0 id on every login; without it, a scan of every user.
  (t) => [index("user_sync_auth0_user_idx").on(t.auth0UserId)],
);

/**
 * Durable, level-triggered jobs ("reconcile user U"). At most one pending job per key: enqueueing
 * again merges into it. A pending job whose key also has a running job waits (one job per key at a time).
 */
export const jobs = sqliteTable(
  "jobs",
  {
    id: integer("id").primaryKey({ autoIncrement: true }),
    organizationId: text("organization_id").notNull(),
    directoryId: text("directory_id"),
    /** "user" | "group" | "organization" | "drift" */
    kind: text("kind").notNull(),
    /** e.g. "user:<userId>"; jobs of one key run one at a time, in order. */
    key: text("key").notNull(),
    subjectId: text("subject_id").notNull(),
    /** 0 = deprovision, 1 = provision, 2 = background (lower runs first). */
    lane: integer("lane").notNull(),
    /** "pending" | "running" | "done" | "dead" */
    state: text("state").notNull(),
    /**
     * Failed runs so far: runs that ended in a retry or went dead. A run that succeeded, was handed
     * back, or was cut short by its instance's death does not count; an operator's retry resets it.
     */
    attempts: integer("attempts").notNull().default(0),
    /**
     * Claims of this job so far, never reset: identifies one run, so an outcome or lease renewal of a
     * run that was taken over (or handed back and claimed again) is refused.
     */
    leaseToken: integer("lease_token").notNull().default(0),
    runAfter: integer("run_after").notNull(),
    leaseOwner: text("lease_owner"),
    leaseExpiresAt: integer("lease_expires_at"),
    lastError: text("last_error"),
    /** When the first not-yet-applied change behind this job was acknowledged (deprovision latency). */
    firstEnqueuedAt: integer("first_enqueued_at").notNull(),
    createdAt: integer("created_at").notNull(),
    updatedAt: integer("updated_at").notNull(),
  },
  (t) => [
    uniqueIndex("jobs_pending_key_uq")
      .on(t.key)
      .where(sql`state = 'pending'`),
    index("jobs_claim_idx").on(t.state, t.lane, t.runAfter, t.id),
    // A claim reads due jobs in order and stops at its limit: it never walks the jobs that are not yet
    // due or that the other claim takes, however long the backlog (drift scans are claimed apart).
    // The state leads, though constant, so that SQLite prefers these to jobs_claim_idx without statistics.
    index("jobs_work_claim_idx")
      .on(t.state, t.lane, t.runAfter, t.id)
      .where(sql`state = 'pending' AND kind <> 'drift'`),
    index("jobs_drift_claim_idx")
      .on(t.state, t.runAfter, t.id)
      .where(sql`state = 'pending' AND kind = 'drift'`),
    index("jobs_org_state_idx").on(t.organizationId, t.state),
    // Claiming skips keys that already have a running job (one job per user at a time).
    index("jobs_key_state_idx").on(t.key, t.state),
  ],
);

/** Append-only audit trail of every change by anyone. */
export const auditEntries = sqliteTable(
  "audit_entries",
  {
    id: integer("id").primaryKey({ autoIncrement: true }),
    at: integer("at").notNull(),
    /** "directory" | "operator" | "org_admin" | "system" */
    actorType: text("actor_type").notNull(),
    actorId: text("actor_id").notNull(),
    organizationId: text("organization_id"),
    directoryId: text("directory_id"),
    action: text("action").notNull(),
    targetType: text("target_type").notNull(),
    targetId: text("target_id"),
    /** JSON summaries, secrets removed. */
    before: text("before"),
    after: text("after"),
    requestId: text("request_id"),
  },
  (t) => [index("audit_org_at_idx").on(t.organizationId, t.at)],
);

/** Every version of every organization's mapping is kept; organizations.active_mapping_version names the active one. */
export const mappingVersions = sqliteTable(
  "mapping_versions",
  {
    organizationId: text("organization_id")
      .notNull()
      .references(() => organizations.id, { onDelete: "cascade" }),
    version: integer("version").notNull(),
    /** JSON of the validated mapping document. */
    document: text("document").notNull(),
    createdBy: text("created_by").notNull(),
    createdAt: integer("created_at").notNull(),
    comment: text("comment"),
  },
  (t) => [primaryKey({ columns: [t.organizationId, t.version] })],
);

/** Admin API tokens (operator: every organization; org_admin: one). Hashed, shown once. */
export const adminTokens = sqliteTable(
  "admin_tokens",
  {
    id: text("id").primaryKey(),
    tokenHash: text("token_hash").notNull(),
    hint: text("hint").notNull(),
    /** "operator" | "org_admin" */
    scope: text("scope").notNull(),
    organizationId: text("organization_id").references(() => organizations.id, { onDelete: "cascade" }),
    name: text("name").notNull(),
    createdAt: integer("created_at").notNull(),
    expiresAt: integer("expires_at"),
    revokedAt: integer("revoked_at"),
    lastUsedAt: integer("last_used_at"),
  },
  (t) => [uniqueIndex("admin_tokens_hash_uq").on(t.tokenHash)],
);

/** The last SCIM requests per directory, for customers debugging their IdP setup (trimmed in code). */
export const scimRequestLog = sqliteTable(
  "scim_request_log",
  {
    id: integer("id").primaryKey({ autoIncrement: true }),
    directoryId: text("directory_id").notNull(),
    at: integer("at").notNull(),
    method: text("method").notNull(),
    path: text("path").notNull(),
    status: integer("status").notNull(),
    scimType: text("scim_type"),
    detail: text("detail"),
    requestId: text("request_id"),
    durationMs: integer("duration_ms").notNull(),
  },
  (t) => [index("scim_request_log_dir_idx").on(t.directoryId, t.id)],
);

/** Mass-deprovision guard: irreversible operations paused per organization until an operator decides. */
export const guardPauses = sqliteTable(
  "guard_pauses",
  {
    id: text("id").primaryKey(),
    organizationId: text("organization_id")
      .notNull()
      .references(() => organizations.id, { onDelete: "cascade" }),
    trippedAt: integer("tripped_at").notNull(),
    reason: text("reason").notNull(),
    /** "paused" | "approved" | "rejected" */
    state: text("state").notNull(),
    decidedBy: text("decided_by"),
    decidedAt: integer("decided_at"),
  },
  (t) => [index("guard_pauses_org_idx").on(t.organizationId, t.state)],
);

/**
 * The Auth0 tenant's rate-limit buckets as the bridge's limiter estimates them, shared by every
 * process that calls the same tenant (`serve` and a CLI `reconcile`), so that together they stay in
 * the tenant's budget and keep its deprovisioning reserve. Rows are small and updated in short
 * IMMEDIATE transactions; the same table on PostgreSQL (SELECT … FOR UPDATE) serves several instances.
 */
export const rateBuckets = sqliteTable(
  "rate_buckets",
  {
    /** The Auth0 tenant's domain: two tenants never share a budget. */
    tenant: text("tenant").notNull(),
    /** Bucket name from the plan's published table, e.g. "global", "orgMembersWrite". */
    name: text("name").notNull(),
    capacity: real("capacity").notNull(),
    tokens: real("tokens").notNull(),
    updatedAt: integer("updated_at").notNull(),
    /** Epoch ms before which nobody calls endpoints of this bucket (after a 429). */
    pausedUntil: integer("paused_until").notNull().default(0),
  },
  (t) => [primaryKey({ columns: [t.tenant, t.name] })],
);

/**
 * Facts the bridge records about its own deployment, one row per key: which Auth0 tenant this
 * database is linked to (so the sandbox never rewrites a live database), and what it learnt of
 * the tenant's connections (their type decides the default mapping).
 */
export const bridgeSettings = sqliteTable("bridge_settings", {
  key: text("key").primaryKey(),
  /** JSON. */
  value: text("value").notNull(),
  updatedAt: integer("updated_at").notNull(),
});

/**
 * Counters that move whenever stored credentials change: triggers (created when the database is
 * opened) bump `scim_tokens` on every revocation, expiry change or deletion of a SCIM token, cascades
 * included. A process that caches token checks reads the counter on each request and drops its cache
 * when it moved, so a revocation by any process takes effect on the next request.
 */
export const credentialEpochs = sqliteTable("credential_epochs", {
  name: text("name").primaryKey(),
  epoch: integer("epoch").notNull(),
});

/**
 * Self-service setup links: a bearer capability for one organization's directory setup, given to a
 * customer's IT admin who has no account. Only the SHA-256 of the token is kept; a link works until it
 * expires or is revoked, and every use is audited.
 */
export const setupLinks = sqliteTable(
  "setup_links",
  {
    id: text("id").primaryKey(),
    tokenHash: text("token_hash").notNull(),
    organizationId: text("organization_id")
      .notNull()
      .references(() => organizations.id, { onDelete: "cascade" }),
    createdBy: text("created_by").notNull(),
    createdAt: integer("created_at").notNull(),
    expiresAt: integer("expires_at").notNull(),
    revokedAt: integer("revoked_at"),
    lastUsedAt: integer("last_used_at"),
  },
  (t) => [uniqueIndex("setup_links_hash_uq").on(t.tokenHash), index("setup_links_org_idx").on(t.organizationId)],
);

/**
 * Web console sessions, kept server-side so that sign-out (and revoking a setup link) ends them at
 * once. The cookie carries a random id; only its SHA-256 is stored. `principal` is JSON: who the
 * session speaks for (operator, one organization's admin, or one setup link).
 */
export const consoleSessions = sqliteTable(
  "console_sessions",
  {
    idHash: text("id_hash").primaryKey(),
    principal: text("principal").notNull(),
    csrfToken: text("csrf_token").notNull(),
    createdAt: integer("created_at").notNull(),
    lastSeenAt: integer("last_seen_at").notNull(),
    expiresAt: integer("expires_at").notNull(),
  },
  (t) => [index("console_sessions_expires_idx").on(t.expiresAt)],
);

/**
 * A bulk migration of legacy users into Auth0 through user import jobs. The file itself is never
 * stored (it holds password hashes): a resumed import reads the same file again, recognised by its
 * SHA-256, and rebuilds each chunk from record numbers.
 */
export const userImports = sqliteTable(
  "user_imports",
  {
    id: text("id").primaryKey(),
    organizationId: text("organization_id")
      .notNull()
      .references(() => organizations.id, { onDelete: "cascade" }),
    directoryId: text("directory_id").notNull(),
    /** SHA-256 of the file as read: a rerun with the same file resumes this import. */
    fileSha256: text("file_sha256").notNull(),
    fileName: text("file_name").notNull(),
    /** "jsonl" | "json" | "csv" */
    format: text("format").notNull(),
    upsert: integer("upsert", { mode: "boolean" }).notNull(),
    connection: text("connection").notNull(),
    /** "running" | "done" | "failed" */
    state: text("state").notNull(),
    records: integer("records").notNull(),
    chunks: integer("chunks").notNull(),
    lastError: text("last_error"),
    createdBy: text("created_by").notNull(),
    createdAt: integer("created_at").notNull(),
    updatedAt: integer("updated_at").notNull(),
    /**
     * Last sign of life of a run of this import (epoch ms, the running instance's clock), written
     * every IMPORT_HEARTBEAT_MS while it runs; a running import silent for IMPORT_STALE_MS is taken
     * as abandoned (src/sync/import/store.ts). NULL before the first run of this release: updated_at stands in.
     */
    heartbeatAt: integer("heartbeat_at"),
  },
  (t) => [
    index("user_imports_org_idx").on(t.organizationId, t.createdAt),
    index("user_imports_file_idx").on(t.organizationId, t.fileSha256),
  ],
);

/**
 * One Auth0 import job's worth of records. state: pending → submitting (written before the POST, so
 * a crash after it is detected) → submitted (job id known) → completed → linked; or failed.
 */
export const userImportChunks = sqliteTable(
  "user_import_chunks",
  {
    importId: text("import_id")
      .notNull()
      .references(() => userImports.id, { onDelete: "cascade" }),
    chunk: integer("chunk").notNull(),
    /** Record numbers (1-based, in file order) this chunk covers, inclusive. */
    firstRecord: integer("first_record").notNull(),
    lastRecord: integer("last_record").notNull(),
    users: integer("users").notNull(),
    bytes: integer("bytes").notNull(),
    state: text("state").notNull(),
    /** How many times the chunk was POSTed (more than one only after a crash or a lost answer). */
    attempts: integer("attempts").notNull().default(0),
    jobId: text("job_id"),
    inserted: integer("inserted"),
    updated: integer("updated"),
    failed: integer("failed"),
    /** JSON [{record, email, field, code, message}] mapped back from the job's error report; no secrets. */
    errors: text("errors"),
    submittedAt: integer("submitted_at"),
    completedAt: integer("completed_at"),
  },
  (t) => [primaryKey({ columns: [t.importId, t.chunk] })],
);

/**
 * Directory users created by a migration and not yet claimed by an IdP push: a SCIM create of the
 * same person (by externalId, else email) in the directory takes this user over instead of making a
 * second one.
 */
export const migratedUsers = sqliteTable(
  "migrated_users",
  {
    userId: text("user_id")
      .primaryKey()
      .references(() => users.id, { onDelete: "cascade" }),
    directoryId: text("directory_id").notNull(),
    importId: text("import_id").notNull(),
    emailLower: text("email_lower").notNull(),
    externalId: text("external_id"),
    claimedAt: integer("claimed_at"),
  },
  (t) => [
    index("migrated_users_email_idx").on(t.directoryId, t.emailLower),
    index("migrated_users_external_idx").on(t.directoryId, t.externalId),
  ],
);
