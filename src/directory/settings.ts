/**
 * What the bridge records about its own deployment (bridge_settings): the Auth0 tenant a database
 * is linked to, the type of each Auth0 connection as the tenant reported it, and when periodic work
 * is next due.
 */
import { isNotNull, like } from "drizzle-orm";
import { bridgeSettings, organizations } from "../../db/schema.js";
import type { ConnectionType } from "../mapping/defaults.js";
import type { DbOrTx } from "./database.js";
import { prepared } from "./statements.js";

const tenantKey = "auth0.tenant";
const connectionKey = (name: string): string => `auth0.connection:${name}`;

/** The in-process emulator of `npm start`: its ids are worthless anywhere else. */
export const sandboxTenant = "sandbox";

/** Auth0's default database connection, which every new tenant has. */
const defaultDatabaseConnection = "Username-Password-Authentication";

function read<T>(db: DbOrTx, key: string): T | undefined {
  // A cached statement: a connection's type is read for every mapping default (each login, each job).
  const value = prepared(db, "SELECT value FROM bridge_settings WHERE key = ?").pluck().get(key) as string | undefined;
  return value === undefined ? undefined : (JSON.parse(value) as T);
}

function write(db: DbOrTx, key: string, value: unknown, now = Date.now()): void {
  const text = JSON.stringify(value);
  db.insert(bridgeSettings)
    .values({ key, value: text, updatedAt: now })
    .onConflictDoUpdate({ target: bridgeSettings.key, set: { value: text, updatedAt: now } })
    .run();
}

const driftDueKey = "schedule.drift.next_at";

/**
 * Takes the drift scan that is due at `now`, at most once per period across every process on this
 * database: when the stored due time has passed (or none is stored yet, or it lies further ahead
 * than one period, after the interval was shortened), moves it to `now + periodMs` with a
 * compare-and-set on the old value, so of several instances checking at once exactly one sees its
 * update change a row. Returns true when the caller took a due scan and must enqueue it in the
 * same transaction. The first check of a new database only schedules the first scan a period out.
 */
export function takeDueDriftScan(tx: DbOrTx, now: number, periodMs: number): boolean {
  const stored = prepared(tx, "SELECT value FROM bridge_settings WHERE key = ?").pluck().get(driftDueKey) as
    string | undefined;
  const next = JSON.stringify(now + periodMs);
  if (stored === undefined) {
    prepared(
      tx,
      "INSERT INTO bridge_settings (key, value, updated_at) VALUES (?, ?, ?) ON CONFLICT (key) DO NOTHING",
    ).run(driftDueKey, next, now);
    return false;
  }
  const due = JSON.parse(stored) as number;
  if (due > now && due <= now + periodMs) return false;
  const moved = prepared(tx, "UPDATE bridge_settings SET value = ?, updated_at = ? WHERE key = ? AND value = ?").run(
    next,
    now,
    driftDueKey,
    stored,
  ).changes;
  // A due time beyond one period (the interval was shortened) is only pulled in, not a scan.
  return moved === 1 && due <= now;
}

export interface TenantLink {
  /** AUTH0_DOMAIN of the tenant, or "sandbox". */
  tenant: string;
  linkedAt: number;
}

export function linkedTenant(db: DbOrTx): TenantLink | undefined {
  return read<TenantLink>(db, tenantKey);
}

export function recordTenantLink(db: DbOrTx, tenant: string, now = Date.now()): void {
  const current = linkedTenant(db);
  if (current?.tenant === tenant) return;
  write(db, tenantKey, { tenant, linkedAt: now } satisfies TenantLink, now);
}

/**
 * Why the sandbox must not use this database, or undefined when it may. A database linked to a
 * real tenant holds that tenant's organization and user ids; the sandbox would replace them with
 * ids of its throwaway tenant, and deactivations would then "succeed" against users that do not exist.
 */
export function sandboxRefusal(db: DbOrTx): string | undefined {
  const link = linkedTenant(db);
  if (link && link.tenant !== sandboxTenant) {
    return `this database is linked to the Auth0 tenant ${link.tenant} (by \`scim-bridge serve\`); the sandbox would overwrite its Auth0 ids. Use the sandbox's own database (unset DATABASE_URL) or another file.`;
  }
  if (!link) {
    const linkedOrg = db
      .select({ slug: organizations.slug })
      .from(organizations)
      .where(isNotNull(organizations.auth0OrgId))
      .get();
    if (linkedOrg) {
      return `organization "${linkedOrg.slug}" in this database is linked to an Auth0 tenant the database does not name; the sandbox would overwrite its Auth0 ids. Use the sandbox's own database (unset DATABASE_URL) or another file.`;
    }
  }
  return undefined;
}

export interface KnownConnection {
  name: string;
  /** Auth0's `strategy`: "auth0" for database connections, "okta", "samlp", "waad", "oidc", … */
  strategy: string;
  type: ConnectionType;
  /** options.set_user_root_attributes of an enterprise connection (Auth0's default "on_each_login"). */
  setUserRootAttributes?: string;
  checkedAt: number;
}

export function recordConnection(db: DbOrTx, c: KnownConnection): void {
  write(db, connectionKey(c.name), c, c.checkedAt);
}

export function knownConnection(db: DbOrTx, name: string): KnownConnection | undefined {
  return read<KnownConnection>(db, connectionKey(name));
}

export function knownConnections(db: DbOrTx): KnownConnection[] {
  return db
    .select({ value: bridgeSettings.value })
    .from(bridgeSettings)
    .where(like(bridgeSettings.key, "auth0.connection:%"))
    .all()
    .map((r) => JSON.parse(r.value) as KnownConnection);
}

/**
 * The connection's type as last seen in the tenant; before the bridge has looked, Auth0's default
 * database connection is a database and any other name counts as one too (the former behaviour),
 * until `serve` or `doctor` reads the tenant.
 */
export function connectionTypeOf(db: DbOrTx, name: string): { type: ConnectionType; known: boolean } {
  const known = knownConnection(db, name);
  if (known) return { type: known.type, known: true };
  return { type: "database", known: name === defaultDatabaseConnection };
}
