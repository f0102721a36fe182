/**
 * Versioned mapping storage per organization (docs/design.md, "Concepts"): every version is kept with
 * who saved it and when; organizations.active_mapping_version names the active one. Applying and
 * rolling back are one transaction each, with an audit entry and a background "organization"
 * reconcile job, so the whole organization converges to the newly active mapping.
 */
import { createHash } from "node:crypto";
import type Database from "better-sqlite3";
import { and, desc, eq, max } from "drizzle-orm";
import { mappingVersions, organizations } from "../../db/schema.js";
import { notFound } from "../errors.js";
import {
  defaultMapping,
  parseMapping,
  type ConnectionType,
  type MappingDocument,
  type UserModel,
} from "../mapping/index.js";
import { enqueueJob, Lane } from "./outbox.js";
import { recordAudit, type Actor } from "./audit.js";
import { getOrganization, type OrganizationRow } from "./organizations.js";
import type { DbOrTx } from "./database.js";
import { connectionTypeOf } from "./settings.js";
import { connectionOf, prepared } from "./statements.js";
import { runSync } from "./store-op.js";

export interface ActiveMapping {
  organizationId: string;
  /** null: no mapping was ever applied; `document` is the default for the organization's user model and connection type. */
  version: number | null;
  document: MappingDocument;
}

export interface MappingVersionInfo {
  version: number;
  createdBy: string;
  createdAt: number;
  comment: string | null;
  active: boolean;
}

function requireOrganization(db: DbOrTx, idOrSlug: string): OrganizationRow {
  const org = runSync(db, getOrganization(idOrSlug));
  if (!org) throw notFound(`organization "${idOrSlug}" not found`);
  return org;
}

/**
 * Parsed stored versions, per connection, by organization and version. A stored version is never
 * rewritten (a change is a new version and a move of organizations.active_mapping_version), so the
 * version read from the organization row on every call is the whole freshness check: a mapping
 * applied by any process is seen at the next read. Only versions read outside a transaction are
 * kept, so a version that a rolled-back transaction wrote (and saw) never outlives it. Identical
 * documents (many organizations apply the same file) share one parsed copy, by content hash.
 * Documents handed out are frozen: every caller reads the same object.
 */
interface ParsedCache {
  byVersion: Map<string, MappingDocument>;
  byContent: Map<string, MappingDocument>;
}
const parsedCaches = new WeakMap<Database.Database, ParsedCache>();
/** Beyond this many entries the oldest go: memory stays bounded with any number of organizations. */
const maxParsed = 20_000;
/** Default mappings by connection, type and user model (pure, so shared across connections). */
const defaults = new Map<string, MappingDocument>();

function deepFreeze<T>(value: T): T {
  if (typeof value === "object" && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value)) deepFreeze(v);
  }
  return value;
}

function remember(map: Map<string, MappingDocument>, key: string, doc: MappingDocument): void {
  if (map.size >= maxParsed) map.delete(map.keys().next().value!);
  map.set(key, doc);
}

function cacheOf(db: DbOrTx): ParsedCache {
  const client = connectionOf(db);
  let cache = parsedCaches.get(client);
  if (!cache) {
    cache = { byVersion: new Map(), byContent: new Map() };
    parsedCaches.set(client, cache);
  }
  return cache;
}

function parseStored(cache: ParsedCache, text: string): MappingDocument {
  const hash = createHash("sha256").update(text).digest("base64");
  let doc = cache.byContent.get(hash);
  if (!doc) {
    // Re-validated on read: the stored JSON is the parsed document, so this only fails if the schema moved on.
    doc = deepFreeze(parseMapping(JSON.parse(text)));
    remember(cache.byContent, hash, doc);
  }
  return doc;
}

function readVersion(db: DbOrTx, organizationId: string, version: number): MappingDocument | undefined {
  const cache = cacheOf(db);
  const key = `${organizationId}\u0000${version}`;
  const cached = cache.byVersion.get(key);
  if (cached) return cached;
  const text = prepared(db, "SELECT document FROM mapping_versions WHERE organization_id = ? AND version = ?")
    .pluck()
    .get(organizationId, version) as string | undefined;
  if (text === undefined) return undefined;
  const doc = parseStored(cache, text);
  if (!connectionOf(db).inTransaction) remember(cache.byVersion, key, doc);
  return doc;
}

type TypeOf = (connection: string) => ConnectionType;

function defaultFor(typeOf: TypeOf, org: Pick<OrganizationRow, "connection" | "userModel">): MappingDocument {
  const type = typeOf(org.connection);
  const key = `${org.connection}\u0000${type}\u0000${org.userModel}`;
  let doc = defaults.get(key);
  if (!doc) {
    doc = deepFreeze(
      defaultMapping({ connection: org.connection, userModel: org.userModel as UserModel, connectionType: type }),
    );
    remember(defaults, key, doc);
  }
  return doc;
}

type MappedOrganization = Pick<OrganizationRow, "id" | "slug" | "connection" | "userModel" | "activeMappingVersion">;

function activeOf(db: DbOrTx, org: MappedOrganization, typeOf: TypeOf): ActiveMapping {
  const version = org.activeMappingVersion;
  const document = version === null ? undefined : readVersion(db, org.id, version);
  if (version !== null && document) return { organizationId: org.id, version, document };
  return { organizationId: org.id, version: null, document: defaultFor(typeOf, org) };
}

const organizationColumns =
  "SELECT id, slug, connection, user_model AS userModel, active_mapping_version AS activeMappingVersion FROM organizations";

/**
 * The organization's active mapping (the default one if none was applied); null if the organization
 * does not exist. The document is shared and frozen: copy it to change it.
 */
export function getActiveMapping(db: DbOrTx, idOrSlug: string): ActiveMapping | null {
  // A cached statement: the post-login hook and the worker read this for every login and job.
  const org = prepared(db, `${organizationColumns} WHERE id = ? OR slug = ?`).get(idOrSlug, idOrSlug) as
    MappedOrganization | undefined;
  return org ? activeOf(db, org, (name) => runSync(db, connectionTypeOf(name)).type) : null;
}

/** Every organization's active mapping, by slug: one query, and each distinct stored document parsed once. */
export function listActiveMappings(db: DbOrTx): (ActiveMapping & { slug: string })[] {
  const orgs = prepared(db, `${organizationColumns} ORDER BY slug`).all() as MappedOrganization[];
  // Thousands of organizations share a handful of connections: each one's type is read once.
  const types = new Map<string, ConnectionType>();
  const typeOf: TypeOf = (name) => {
    let type = types.get(name);
    if (type === undefined) types.set(name, (type = runSync(db, connectionTypeOf(name)).type));
    return type;
  };
  return orgs.map((o) => ({ slug: o.slug, ...activeOf(db, o, typeOf) }));
}

export function getMappingVersion(db: DbOrTx, idOrSlug: string, version: number): MappingDocument {
  const org = requireOrganization(db, idOrSlug);
  const document = readVersion(db, org.id, version);
  if (!document) throw notFound(`organization "${idOrSlug}" has no mapping version ${version}`);
  return document;
}

export function listMappingVersions(db: DbOrTx, idOrSlug: string): MappingVersionInfo[] {
  const org = requireOrganization(db, idOrSlug);
  return db
    .select({
      version: mappingVersions.version,
      createdBy: mappingVersions.createdBy,
      createdAt: mappingVersions.createdAt,
      comment: mappingVersions.comment,
    })
    .from(mappingVersions)
    .where(eq(mappingVersions.organizationId, org.id))
    .orderBy(desc(mappingVersions.version))
    .all()
    .map((v) => ({ ...v, active: v.version === org.activeMappingVersion }));
}

export interface SaveOptions {
  actor: Actor;
  comment?: string | null;
  now?: number;
  /** The admin request that made the change, for its audit entry. */
  requestId?: string | null;
}

export interface SavedMapping {
  organizationId: string;
  version: number;
  /** false: that version was already active (same document), so nothing was written or re-reconciled. */
  changed: boolean;
}

const actorName = (a: Actor): string => `${a.type}:${a.id}`;

function activate(
  tx: DbOrTx,
  org: OrganizationRow,
  version: number,
  actor: Actor,
  action: string,
  after: object,
  now: number,
  requestId: string | null,
): void {
  tx.update(organizations)
    .set({ activeMappingVersion: version, updatedAt: now })
    .where(eq(organizations.id, org.id))
    .run();
  runSync(
    tx,
    recordAudit({
      actor,
      organizationId: org.id,
      action,
      targetType: "mapping",
      targetId: String(version),
      before: { activeVersion: org.activeMappingVersion },
      after,
      requestId,
      at: now,
    }),
  );
  // Level-triggered: "reconcile the organization"; the sync engine fans it out to every user.
  runSync(
    tx,
    enqueueJob({ organizationId: org.id, kind: "organization", subjectId: org.id, lane: Lane.background, now }),
  );
}

/** Stores `doc` as the organization's next version and makes it active (one transaction). */
export function saveMappingVersion(
  db: DbOrTx,
  idOrSlug: string,
  doc: MappingDocument,
  options: SaveOptions,
): SavedMapping {
  const document = parseMapping(doc);
  const text = JSON.stringify(document);
  const now = options.now ?? Date.now();
  return db.transaction((tx) => {
    const org = requireOrganization(tx, idOrSlug);
    if (org.activeMappingVersion !== null) {
      const active = tx
        .select({ document: mappingVersions.document })
        .from(mappingVersions)
        .where(and(eq(mappingVersions.organizationId, org.id), eq(mappingVersions.version, org.activeMappingVersion)))
        .get();
      if (active?.document === text)
        return { organizationId: org.id, version: org.activeMappingVersion, changed: false };
    }
    const latest = tx
      .select({ v: max(mappingVersions.version) })
      .from(mappingVersions)
      .where(eq(mappingVersions.organizationId, org.id))
      .get();
    const version = (latest?.v ?? 0) + 1;
    tx.insert(mappingVersions)
      .values({
        organizationId: org.id,
        version,
        document: text,
        createdBy: actorName(options.actor),
        createdAt: now,
        comment: options.comment ?? null,
      })
      .run();
    activate(
      tx,
      org,
      version,
      options.actor,
      "mapping.apply",
      { activeVersion: version, comment: options.comment ?? null },
      now,
      options.requestId ?? null,
    );
    return { organizationId: org.id, version, changed: true };
  });
}

/** Rollback: makes an earlier (kept) version active again. */
export function activateMappingVersion(
  db: DbOrTx,
  idOrSlug: string,
  version: number,
  actor: Actor,
  options: { now?: number; requestId?: string | null } = {},
): SavedMapping {
  const now = options.now ?? Date.now();
  return db.transaction((tx) => {
    const org = requireOrganization(tx, idOrSlug);
    if (!readVersion(tx, org.id, version))
      throw notFound(`organization "${idOrSlug}" has no mapping version ${version}`);
    if (org.activeMappingVersion === version) return { organizationId: org.id, version, changed: false };
    activate(tx, org, version, actor, "mapping.activate", { activeVersion: version }, now, options.requestId ?? null);
    return { organizationId: org.id, version, changed: true };
  });
}
