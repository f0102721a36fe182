/**
 * Versioned mapping storage per organization (docs/design.md, "Concepts"): every version is kept with
 * who saved it and when; organizations.active_mapping_version names the active one. Applying and
 * rolling back are one transaction each, with an audit entry and a background "organization"
 * reconcile job, so the whole organization converges to the newly active mapping.
 */
import { createHash } from "node:crypto";
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
import { getOrganization, organizationColumns, type OrganizationRow } from "./organizations.js";
import { connectionTypeOf } from "./settings.js";
import type { SqlStore } from "./sql.js";
import { exec, forUpdate, many, one, type StoreOp } from "./store-op.js";

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

function* requireOrganization(idOrSlug: string, lock = false): StoreOp<OrganizationRow> {
  const org = lock
    ? yield* one<OrganizationRow>(
        `SELECT ${organizationColumns} FROM organizations WHERE id = ? OR slug = ? ${yield* forUpdate()}`,
        [idOrSlug, idOrSlug],
      )
    : yield* getOrganization(idOrSlug);
  if (!org) throw notFound(`organization "${idOrSlug}" not found`);
  return org;
}

/**
 * Parsed stored versions, by organization and version, for one database. A stored version is never
 * rewritten (a change is a new version and a move of organizations.active_mapping_version), so the
 * version read from the organization row on every call is the whole freshness check: a mapping
 * applied by any process is seen at the next read. Only versions read outside a write transaction
 * are kept (`keep`), so a version that a rolled-back transaction wrote (and saw) never outlives it.
 * Identical documents (many organizations apply the same file) share one parsed copy, by content
 * hash; that part is pure, so shared by every database. Documents handed out are frozen: every
 * caller reads the same object.
 */
export interface MappingCache {
  byVersion: Map<string, MappingDocument>;
  /** False inside a write transaction: what it reads may yet be rolled back. */
  keep: boolean;
}
/** Parsed documents by content hash (pure, so shared across databases). */
const byContent = new Map<string, MappingDocument>();
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

function parseStored(text: string): MappingDocument {
  const hash = createHash("sha256").update(text).digest("base64");
  let doc = byContent.get(hash);
  if (!doc) {
    // Re-validated on read: the stored JSON is the parsed document, so this only fails if the schema moved on.
    doc = deepFreeze(parseMapping(JSON.parse(text)));
    remember(byContent, hash, doc);
  }
  return doc;
}

function* readVersion(
  organizationId: string,
  version: number,
  cache: MappingCache | null = null,
): StoreOp<MappingDocument | undefined> {
  const key = `${organizationId}\u0000${version}`;
  const cached = cache?.byVersion.get(key);
  if (cached) return cached;
  const row = yield* one<{ document: string }>(
    "SELECT document FROM mapping_versions WHERE organization_id = ? AND version = ?",
    [organizationId, version],
  );
  if (row === undefined) return undefined;
  const doc = parseStored(row.document);
  if (cache?.keep) remember(cache.byVersion, key, doc);
  return doc;
}

type TypeOf = (connection: string) => StoreOp<ConnectionType>;

function* defaultFor(
  typeOf: TypeOf | ConnectionType,
  org: Pick<OrganizationRow, "connection" | "userModel">,
): StoreOp<MappingDocument> {
  const type = typeof typeOf === "string" ? typeOf : yield* typeOf(org.connection);
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

/** `typeOf`: how to learn the connection's type, or the type itself when it was read already. */
function* activeOf(
  org: MappedOrganization,
  typeOf: TypeOf | ConnectionType,
  cache: MappingCache | null,
): StoreOp<ActiveMapping> {
  const version = org.activeMappingVersion;
  const document = version === null ? undefined : yield* readVersion(org.id, version, cache);
  if (version !== null && document) return { organizationId: org.id, version, document };
  return { organizationId: org.id, version: null, document: yield* defaultFor(typeOf, org) };
}

function* typeOfConnection(name: string): StoreOp<ConnectionType> {
  return (yield* connectionTypeOf(name)).type;
}

const mappedOrganizationColumns = `SELECT id, slug, connection, user_model AS "userModel",
  active_mapping_version AS "activeMappingVersion" FROM organizations`;

/**
 * The organization's active mapping (the default one if none was applied); null if the organization
 * does not exist. The document is shared and frozen: copy it to change it. `cache` keeps parsed
 * versions of this database between calls (readActiveMapping passes its store's).
 */
export function* activeMapping(idOrSlug: string, cache: MappingCache | null = null): StoreOp<ActiveMapping | null> {
  // One fixed text: the post-login hook and the worker read this for every login and job.
  const org = yield* one<MappedOrganization>(`${mappedOrganizationColumns} WHERE id = ? OR slug = ?`, [
    idOrSlug,
    idOrSlug,
  ]);
  return org ? yield* activeOf(org, typeOfConnection, cache) : null;
}

/**
 * The active mapping of an organization already read (inputs, the login hook), without reading its
 * row again: the worker and the login hook load the organization with the user, and with it the
 * type of its connection (`connectionType`), which the default mapping depends on.
 */
export function* mappingOfOrganization(
  org: MappedOrganization,
  cache: MappingCache | null = null,
  connectionType?: ConnectionType,
): StoreOp<ActiveMapping> {
  return yield* activeOf(org, connectionType ?? typeOfConnection, cache);
}

/**
 * The store's cache of parsed versions. `keep`: whether what a unit reads may be remembered, true
 * for a read unit (committed rows) and false inside a write unit (its rows may yet be rolled back).
 * A stored version never changes once committed, so the cache is safe per process with several
 * instances.
 */
export function mappingCacheOf(store: SqlStore, keep: boolean): MappingCache {
  let byVersion = storeCaches.get(store);
  if (!byVersion) storeCaches.set(store, (byVersion = new Map()));
  return { byVersion, keep };
}
const storeCaches = new WeakMap<SqlStore, Map<string, MappingDocument>>();

/** The organization's active mapping in a read unit of its own, with the store's cache. */
export function readActiveMapping(store: SqlStore, idOrSlug: string): Promise<ActiveMapping | null> {
  return store.read(activeMapping(idOrSlug, mappingCacheOf(store, true)));
}

/** Every organization's active mapping in a read unit of its own, with the store's cache. */
export function readActiveMappings(store: SqlStore): Promise<(ActiveMapping & { slug: string })[]> {
  return store.read(activeMappings(mappingCacheOf(store, true)));
}

/** Every organization's active mapping, by slug: one query, and each distinct stored document parsed once. */
export function* activeMappings(cache: MappingCache | null = null): StoreOp<(ActiveMapping & { slug: string })[]> {
  const orgs = yield* many<MappedOrganization>(`${mappedOrganizationColumns} ORDER BY slug`);
  // Thousands of organizations share a handful of connections: each one's type is read once.
  const types = new Map<string, ConnectionType>();
  const typeOf: TypeOf = function* (name) {
    let type = types.get(name);
    if (type === undefined) types.set(name, (type = yield* typeOfConnection(name)));
    return type;
  };
  const result: (ActiveMapping & { slug: string })[] = [];
  for (const o of orgs) result.push({ slug: o.slug, ...(yield* activeOf(o, typeOf, cache)) });
  return result;
}

export function* getMappingVersion(idOrSlug: string, version: number): StoreOp<MappingDocument> {
  const org = yield* requireOrganization(idOrSlug);
  const document = yield* readVersion(org.id, version);
  if (!document) throw notFound(`organization "${idOrSlug}" has no mapping version ${version}`);
  return document;
}

export function* listMappingVersions(idOrSlug: string): StoreOp<MappingVersionInfo[]> {
  const org = yield* requireOrganization(idOrSlug);
  const rows = yield* many<Omit<MappingVersionInfo, "active">>(
    `SELECT version, created_by AS "createdBy", created_at AS "createdAt", comment
     FROM mapping_versions WHERE organization_id = ? ORDER BY version DESC`,
    [org.id],
  );
  return rows.map((v) => ({ ...v, active: v.version === org.activeMappingVersion }));
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

function* activate(
  org: OrganizationRow,
  version: number,
  actor: Actor,
  action: string,
  after: object,
  now: number,
  requestId: string | null,
): StoreOp<void> {
  yield* exec("UPDATE organizations SET active_mapping_version = ?, updated_at = ? WHERE id = ?", [
    version,
    now,
    org.id,
  ]);
  yield* recordAudit({
    actor,
    organizationId: org.id,
    action,
    targetType: "mapping",
    targetId: String(version),
    before: { activeVersion: org.activeMappingVersion },
    after,
    requestId,
    at: now,
  });
  // Level-triggered: "reconcile the organization"; the sync engine fans it out to every user.
  yield* enqueueJob({ organizationId: org.id, kind: "organization", subjectId: org.id, lane: Lane.background, now });
}

/**
 * Stores `doc` as the organization's next version and makes it active (one transaction). The
 * organization row is read FOR UPDATE on PostgreSQL: saves and activations of one organization run
 * one after the other, so concurrent saves get consecutive versions and exactly one ends active
 * (the primary key on (organization_id, version) backs this up).
 */
export function* saveMappingVersion(
  idOrSlug: string,
  doc: MappingDocument,
  options: SaveOptions,
): StoreOp<SavedMapping> {
  const document = parseMapping(doc);
  const text = JSON.stringify(document);
  const now = options.now ?? Date.now();
  const org = yield* requireOrganization(idOrSlug, true);
  if (org.activeMappingVersion !== null) {
    const active = yield* one<{ document: string }>(
      "SELECT document FROM mapping_versions WHERE organization_id = ? AND version = ?",
      [org.id, org.activeMappingVersion],
    );
    if (active?.document === text) return { organizationId: org.id, version: org.activeMappingVersion, changed: false };
  }
  const latest = yield* one<{ v: number | null }>(
    "SELECT max(version) AS v FROM mapping_versions WHERE organization_id = ?",
    [org.id],
  );
  const version = (latest?.v ?? 0) + 1;
  yield* exec(
    `INSERT INTO mapping_versions (organization_id, version, document, created_by, created_at, comment)
     VALUES (?, ?, ?, ?, ?, ?)`,
    [org.id, version, text, actorName(options.actor), now, options.comment ?? null],
  );
  yield* activate(
    org,
    version,
    options.actor,
    "mapping.apply",
    { activeVersion: version, comment: options.comment ?? null },
    now,
    options.requestId ?? null,
  );
  return { organizationId: org.id, version, changed: true };
}

/** Rollback: makes an earlier (kept) version active again (the organization row locked as in saveMappingVersion). */
export function* activateMappingVersion(
  idOrSlug: string,
  version: number,
  actor: Actor,
  options: { now?: number; requestId?: string | null } = {},
): StoreOp<SavedMapping> {
  const now = options.now ?? Date.now();
  const org = yield* requireOrganization(idOrSlug, true);
  if (!(yield* readVersion(org.id, version)))
    throw notFound(`organization "${idOrSlug}" has no mapping version ${version}`);
  if (org.activeMappingVersion === version) return { organizationId: org.id, version, changed: false };
  yield* activate(org, version, actor, "mapping.activate", { activeVersion: version }, now, options.requestId ?? null);
  return { organizationId: org.id, version, changed: true };
}
