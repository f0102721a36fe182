/**
 * The bridge's PostgreSQL schema (drizzle pg-core): db/schema.ts table for table, with the same table,
 * column, constraint and index names, so that one store interface can run on either dialect and
 * test/postgres/schema-parity.test.ts can hold the two together. Type choices:
 * - epoch-millisecond timestamps, and counters that only grow, are bigint (SQLite integers are 64-bit);
 *   drizzle's "number" mode reads them back as JS numbers, as better-sqlite3 does;
 * - small counts and enums stay integer, booleans are boolean, SQLite's real is double precision;
 * - JSON documents stay text, so that both dialects store and return the very same string;
 * - append-only logs use an identity column where SQLite uses AUTOINCREMENT (ids never reused);
 * - text is `text COLLATE "C"` (drizzle pg-core has no collate option, hence the custom type): compared
 *   and ordered byte by byte, so by code point in UTF-8, as SQLite's BINARY collation does, whatever
 *   locale the database was created with. Keyset pages, sortBy and the filters' gt/lt/sw then order
 *   as on SQLite, and with one collation on every text column no comparison of two columns mixes
 *   collations (PostgreSQL documentation, "Collation Support").
 * What each table and column holds is documented in db/schema.ts only, to keep one description.
 * Migrations: `npm run db:generate` writes db/sqlite/ and db/pg/; never edit them by hand, except
 * custom ones (`drizzle-kit generate --custom`: db/pg/0002_credential_epochs.sql).
 */
import { sql } from "drizzle-orm";
import {
  bigint,
  boolean,
  doublePrecision,
  index,
  integer,
  pgTable,
  primaryKey,
  customType,
  uniqueIndex,
} from "drizzle-orm/pg-core";

const text = customType<{ data: string; driverData: string }>({ dataType: () => 'text COLLATE "C"' });

export const organizations = pgTable(
  "organizations",
  {
    id: text("id").primaryKey(),
    slug: text("slug").notNull(),
    displayName: text("display_name").notNull(),
    userModel: text("user_model").notNull(),
    connection: text("connection").notNull(),
    auth0OrgId: text("auth0_org_id"),
    activeMappingVersion: integer("active_mapping_version"),
    createdAt: bigint("created_at", { mode: "number" }).notNull(),
    updatedAt: bigint("updated_at", { mode: "number" }).notNull(),
  },
  (t) => [uniqueIndex("organizations_slug_uq").on(t.slug)],
);

export const directories = pgTable(
  "directories",
  {
    id: text("id").primaryKey(),
    organizationId: text("organization_id")
      .notNull()
      .references(() => organizations.id, { onDelete: "cascade" }),
    name: text("name").notNull(),
    createdAt: bigint("created_at", { mode: "number" }).notNull(),
    userCount: integer("user_count").notNull().default(0),
    groupCount: integer("group_count").notNull().default(0),
    generation: bigint("generation", { mode: "number" }).notNull().default(0),
  },
  (t) => [index("directories_org_idx").on(t.organizationId)],
);

export const scimTokens = pgTable(
  "scim_tokens",
  {
    id: text("id").primaryKey(),
    directoryId: text("directory_id")
      .notNull()
      .references(() => directories.id, { onDelete: "cascade" }),
    tokenHash: text("token_hash").notNull(),
    hint: text("hint").notNull(),
    createdAt: bigint("created_at", { mode: "number" }).notNull(),
    expiresAt: bigint("expires_at", { mode: "number" }),
    revokedAt: bigint("revoked_at", { mode: "number" }),
    lastUsedAt: bigint("last_used_at", { mode: "number" }),
  },
  (t) => [uniqueIndex("scim_tokens_hash_uq").on(t.tokenHash), index("scim_tokens_dir_idx").on(t.directoryId)],
);

export const users = pgTable(
  "users",
  {
    id: text("id").primaryKey(),
    directoryId: text("directory_id")
      .notNull()
      .references(() => directories.id, { onDelete: "cascade" }),
    userName: text("user_name").notNull(),
    userNameLower: text("user_name_lower").notNull(),
    externalId: text("external_id"),
    displayName: text("display_name"),
    active: boolean("active").notNull(),
    resource: text("resource").notNull(),
    version: integer("version").notNull(),
    createdAt: bigint("created_at", { mode: "number" }).notNull(),
    modifiedAt: bigint("modified_at", { mode: "number" }).notNull(),
    deletedAt: bigint("deleted_at", { mode: "number" }),
  },
  (t) => [
    uniqueIndex("users_dir_username_uq")
      .on(t.directoryId, t.userNameLower)
      .where(sql`deleted_at IS NULL`),
    index("users_dir_external_idx").on(t.directoryId, t.externalId),
    index("users_dir_display_idx").on(t.directoryId, t.displayName),
    index("users_dir_modified_idx").on(t.directoryId, t.modifiedAt),
    index("users_dir_live_created_idx")
      .on(t.directoryId, t.createdAt, t.id)
      .where(sql`deleted_at IS NULL`),
    index("users_dir_id_idx").on(t.directoryId, t.id),
  ],
);

export const userEmails = pgTable(
  "user_emails",
  {
    userId: text("user_id")
      .notNull()
      .references(() => users.id, { onDelete: "cascade" }),
    directoryId: text("directory_id").notNull(),
    position: integer("position").notNull(),
    valueLower: text("value_lower").notNull(),
    type: text("type"),
    primary: boolean("primary").notNull().default(false),
  },
  (t) => [
    primaryKey({ columns: [t.userId, t.position] }),
    index("user_emails_dir_value_idx").on(t.directoryId, t.valueLower),
  ],
);

export const groups = pgTable(
  "groups",
  {
    id: text("id").primaryKey(),
    directoryId: text("directory_id")
      .notNull()
      .references(() => directories.id, { onDelete: "cascade" }),
    displayName: text("display_name").notNull(),
    displayNameLower: text("display_name_lower").notNull(),
    externalId: text("external_id"),
    resource: text("resource").notNull(),
    version: integer("version").notNull(),
    memberCount: integer("member_count").notNull().default(0),
    createdAt: bigint("created_at", { mode: "number" }).notNull(),
    modifiedAt: bigint("modified_at", { mode: "number" }).notNull(),
    deletedAt: bigint("deleted_at", { mode: "number" }),
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

export const groupMembers = pgTable(
  "group_members",
  {
    groupId: text("group_id")
      .notNull()
      .references(() => groups.id, { onDelete: "cascade" }),
    memberId: text("member_id").notNull(),
    directoryId: text("directory_id").notNull(),
    memberType: text("member_type").notNull(),
    display: text("display"),
    addedAt: bigint("added_at", { mode: "number" }).notNull(),
  },
  (t) => [primaryKey({ columns: [t.groupId, t.memberId] }), index("group_members_member_idx").on(t.memberId)],
);

export const holds = pgTable(
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
    placedAt: bigint("placed_at", { mode: "number" }).notNull(),
    releasedBy: text("released_by"),
    releasedAt: bigint("released_at", { mode: "number" }),
  },
  (t) => [index("holds_user_idx").on(t.userId), index("holds_org_idx").on(t.organizationId)],
);

export const userSync = pgTable(
  "user_sync",
  {
    userId: text("user_id").primaryKey(),
    directoryId: text("directory_id").notNull(),
    organizationId: text("organization_id").notNull(),
    auth0UserId: text("auth0_user_id"),
    applied: text("applied"),
    appliedAt: bigint("applied_at", { mode: "number" }),
    lastError: text("last_error"),
    lastErrorAt: bigint("last_error_at", { mode: "number" }),
  },
  (t) => [index("user_sync_auth0_user_idx").on(t.auth0UserId)],
);

export const jobs = pgTable(
  "jobs",
  {
    id: bigint("id", { mode: "number" }).primaryKey().generatedByDefaultAsIdentity(),
    organizationId: text("organization_id").notNull(),
    directoryId: text("directory_id"),
    kind: text("kind").notNull(),
    key: text("key").notNull(),
    subjectId: text("subject_id").notNull(),
    lane: integer("lane").notNull(),
    state: text("state").notNull(),
    /** Failed runs so far (see db/schema.ts). */
    attempts: integer("attempts").notNull().default(0),
    /** Claims so far, never reset: the fencing token of a run (see db/schema.ts). */
    leaseToken: integer("lease_token").notNull().default(0),
    runAfter: bigint("run_after", { mode: "number" }).notNull(),
    leaseOwner: text("lease_owner"),
    leaseExpiresAt: bigint("lease_expires_at", { mode: "number" }),
    lastError: text("last_error"),
    firstEnqueuedAt: bigint("first_enqueued_at", { mode: "number" }).notNull(),
    createdAt: bigint("created_at", { mode: "number" }).notNull(),
    updatedAt: bigint("updated_at", { mode: "number" }).notNull(),
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
    index("jobs_key_state_idx").on(t.key, t.state),
  ],
);

export const auditEntries = pgTable(
  "audit_entries",
  {
    id: bigint("id", { mode: "number" }).primaryKey().generatedByDefaultAsIdentity(),
    at: bigint("at", { mode: "number" }).notNull(),
    actorType: text("actor_type").notNull(),
    actorId: text("actor_id").notNull(),
    organizationId: text("organization_id"),
    directoryId: text("directory_id"),
    action: text("action").notNull(),
    targetType: text("target_type").notNull(),
    targetId: text("target_id"),
    before: text("before"),
    after: text("after"),
    requestId: text("request_id"),
  },
  (t) => [index("audit_org_at_idx").on(t.organizationId, t.at)],
);

export const mappingVersions = pgTable(
  "mapping_versions",
  {
    organizationId: text("organization_id")
      .notNull()
      .references(() => organizations.id, { onDelete: "cascade" }),
    version: integer("version").notNull(),
    document: text("document").notNull(),
    createdBy: text("created_by").notNull(),
    createdAt: bigint("created_at", { mode: "number" }).notNull(),
    comment: text("comment"),
  },
  (t) => [primaryKey({ columns: [t.organizationId, t.version] })],
);

export const adminTokens = pgTable(
  "admin_tokens",
  {
    id: text("id").primaryKey(),
    tokenHash: text("token_hash").notNull(),
    hint: text("hint").notNull(),
    scope: text("scope").notNull(),
    organizationId: text("organization_id").references(() => organizations.id, { onDelete: "cascade" }),
    name: text("name").notNull(),
    createdAt: bigint("created_at", { mode: "number" }).notNull(),
    expiresAt: bigint("expires_at", { mode: "number" }),
    revokedAt: bigint("revoked_at", { mode: "number" }),
    lastUsedAt: bigint("last_used_at", { mode: "number" }),
  },
  (t) => [uniqueIndex("admin_tokens_hash_uq").on(t.tokenHash)],
);

export const scimRequestLog = pgTable(
  "scim_request_log",
  {
    id: bigint("id", { mode: "number" }).primaryKey().generatedByDefaultAsIdentity(),
    directoryId: text("directory_id").notNull(),
    at: bigint("at", { mode: "number" }).notNull(),
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

export const guardPauses = pgTable(
  "guard_pauses",
  {
    id: text("id").primaryKey(),
    organizationId: text("organization_id")
      .notNull()
      .references(() => organizations.id, { onDelete: "cascade" }),
    trippedAt: bigint("tripped_at", { mode: "number" }).notNull(),
    reason: text("reason").notNull(),
    state: text("state").notNull(),
    decidedBy: text("decided_by"),
    decidedAt: bigint("decided_at", { mode: "number" }),
  },
  (t) => [index("guard_pauses_org_idx").on(t.organizationId, t.state)],
);

export const rateBuckets = pgTable(
  "rate_buckets",
  {
    tenant: text("tenant").notNull(),
    name: text("name").notNull(),
    capacity: doublePrecision("capacity").notNull(),
    tokens: doublePrecision("tokens").notNull(),
    updatedAt: bigint("updated_at", { mode: "number" }).notNull(),
    pausedUntil: bigint("paused_until", { mode: "number" }).notNull().default(0),
  },
  (t) => [primaryKey({ columns: [t.tenant, t.name] })],
);

export const bridgeSettings = pgTable("bridge_settings", {
  key: text("key").primaryKey(),
  value: text("value").notNull(),
  updatedAt: bigint("updated_at", { mode: "number" }).notNull(),
});

export const credentialEpochs = pgTable("credential_epochs", {
  name: text("name").primaryKey(),
  epoch: bigint("epoch", { mode: "number" }).notNull(),
});

export const setupLinks = pgTable(
  "setup_links",
  {
    id: text("id").primaryKey(),
    tokenHash: text("token_hash").notNull(),
    organizationId: text("organization_id")
      .notNull()
      .references(() => organizations.id, { onDelete: "cascade" }),
    createdBy: text("created_by").notNull(),
    createdAt: bigint("created_at", { mode: "number" }).notNull(),
    expiresAt: bigint("expires_at", { mode: "number" }).notNull(),
    revokedAt: bigint("revoked_at", { mode: "number" }),
    lastUsedAt: bigint("last_used_at", { mode: "number" }),
  },
  (t) => [uniqueIndex("setup_links_hash_uq").on(t.tokenHash), index("setup_links_org_idx").on(t.organizationId)],
);

export const consoleSessions = pgTable(
  "console_sessions",
  {
    idHash: text("id_hash").primaryKey(),
    principal: text("principal").notNull(),
    csrfToken: text("csrf_token").notNull(),
    createdAt: bigint("created_at", { mode: "number" }).notNull(),
    lastSeenAt: bigint("last_seen_at", { mode: "number" }).notNull(),
    expiresAt: bigint("expires_at", { mode: "number" }).notNull(),
  },
  (t) => [index("console_sessions_expires_idx").on(t.expiresAt)],
);

export const userImports = pgTable(
  "user_imports",
  {
    id: text("id").primaryKey(),
    organizationId: text("organization_id")
      .notNull()
      .references(() => organizations.id, { onDelete: "cascade" }),
    directoryId: text("directory_id").notNull(),
    fileSha256: text("file_sha256").notNull(),
    fileName: text("file_name").notNull(),
    format: text("format").notNull(),
    upsert: boolean("upsert").notNull(),
    connection: text("connection").notNull(),
    state: text("state").notNull(),
    records: integer("records").notNull(),
    chunks: integer("chunks").notNull(),
    lastError: text("last_error"),
    createdBy: text("created_by").notNull(),
    createdAt: bigint("created_at", { mode: "number" }).notNull(),
    updatedAt: bigint("updated_at", { mode: "number" }).notNull(),
    /** Last sign of life of a run of this import (see db/schema.ts). */
    heartbeatAt: bigint("heartbeat_at", { mode: "number" }),
  },
  (t) => [
    index("user_imports_org_idx").on(t.organizationId, t.createdAt),
    index("user_imports_file_idx").on(t.organizationId, t.fileSha256),
  ],
);

export const userImportChunks = pgTable(
  "user_import_chunks",
  {
    importId: text("import_id")
      .notNull()
      .references(() => userImports.id, { onDelete: "cascade" }),
    chunk: integer("chunk").notNull(),
    firstRecord: integer("first_record").notNull(),
    lastRecord: integer("last_record").notNull(),
    users: integer("users").notNull(),
    bytes: integer("bytes").notNull(),
    state: text("state").notNull(),
    attempts: integer("attempts").notNull().default(0),
    jobId: text("job_id"),
    inserted: integer("inserted"),
    updated: integer("updated"),
    failed: integer("failed"),
    errors: text("errors"),
    submittedAt: bigint("submitted_at", { mode: "number" }),
    completedAt: bigint("completed_at", { mode: "number" }),
  },
  (t) => [primaryKey({ columns: [t.importId, t.chunk] })],
);

export const migratedUsers = pgTable(
  "migrated_users",
  {
    userId: text("user_id")
      .primaryKey()
      .references(() => users.id, { onDelete: "cascade" }),
    directoryId: text("directory_id").notNull(),
    importId: text("import_id").notNull(),
    emailLower: text("email_lower").notNull(),
    externalId: text("external_id"),
    claimedAt: bigint("claimed_at", { mode: "number" }),
  },
  (t) => [
    index("migrated_users_email_idx").on(t.directoryId, t.emailLower),
    index("migrated_users_external_idx").on(t.directoryId, t.externalId),
  ],
);
