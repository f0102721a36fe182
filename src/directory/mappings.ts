/**
 * Versioned mapping storage per organization (docs/design.md, "Concepts"): every version is kept with
 * who saved it and when; organizations.active_mapping_version names the active one. Applying and
 * rolling back are one transaction each, with an audit entry and a background "organization"
 * reconcile job, so the whole organization converges to the newly active mapping.
 */
import { and, desc, eq, max } from "drizzle-orm";
import { mappingVersions, organizations } from "../../db/schema.js";
import { notFound } from "../errors.js";
import { defaultMapping, parseMapping, type MappingDocument, type UserModel } from "../mapping/index.js";
import { enqueueJob, Lane } from "./outbox.js";
import { recordAudit, type Actor } from "./audit.js";
import { getOrganization, type OrganizationRow } from "./organizations.js";
import type { DbOrTx } from "./database.js";
import { connectionTypeOf } from "./settings.js";

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
  const org = getOrganization(db, idOrSlug);
  if (!org) throw notFound(`organization "${idOrSlug}" not found`);
  return org;
}

function readVersion(db: DbOrTx, organizationId: string, version: number): MappingDocument | undefined {
  const row = db
    .select({ document: mappingVersions.document })
    .from(mappingVersions)
    .where(and(eq(mappingVersions.organizationId, organizationId), eq(mappingVersions.version, version)))
    .get();
  // Re-validated on read: the stored JSON is the parsed document, so this only fails if the schema moved on.
  return row ? parseMapping(JSON.parse(row.document)) : undefined;
}

/** The organization's active mapping (the default one if none was applied); null if the organization does not exist. */
export function getActiveMapping(db: DbOrTx, idOrSlug: string): ActiveMapping | null {
  const org = getOrganization(db, idOrSlug);
  if (!org) return null;
  const version = org.activeMappingVersion;
  const document = version === null ? undefined : readVersion(db, org.id, version);
  if (version !== null && document) return { organizationId: org.id, version, document };
  return {
    organizationId: org.id,
    version: null,
    document: defaultMapping({
      connection: org.connection,
      userModel: org.userModel as UserModel,
      connectionType: connectionTypeOf(db, org.connection).type,
    }),
  };
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
): void {
  tx.update(organizations)
    .set({ activeMappingVersion: version, updatedAt: now })
    .where(eq(organizations.id, org.id))
    .run();
  recordAudit(tx, {
    actor,
    organizationId: org.id,
    action,
    targetType: "mapping",
    targetId: String(version),
    before: { activeVersion: org.activeMappingVersion },
    after,
    at: now,
  });
  // Level-triggered: "reconcile the organization"; the sync engine fans it out to every user.
  enqueueJob(tx, { organizationId: org.id, kind: "organization", subjectId: org.id, lane: Lane.background, now });
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
  now = Date.now(),
): SavedMapping {
  return db.transaction((tx) => {
    const org = requireOrganization(tx, idOrSlug);
    if (!readVersion(tx, org.id, version))
      throw notFound(`organization "${idOrSlug}" has no mapping version ${version}`);
    if (org.activeMappingVersion === version) return { organizationId: org.id, version, changed: false };
    activate(tx, org, version, actor, "mapping.activate", { activeVersion: version }, now);
    return { organizationId: org.id, version, changed: true };
  });
}
