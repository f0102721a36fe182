/**
 * What the bridge records about its own deployment (bridge_settings): the Auth0 tenant a database
 * is linked to, the type of each Auth0 connection as the tenant reported it, and when periodic work
 * is next due.
 */
import type { ConnectionType } from "../mapping/defaults.js";
import { exec, many, one, type StoreOp } from "./store-op.js";

const tenantKey = "auth0.tenant";
const connectionKeyPrefix = "auth0.connection:";
const connectionKey = (name: string): string => `${connectionKeyPrefix}${name}`;

/** The in-process emulator of `npm start`: its ids are worthless anywhere else. */
export const sandboxTenant = "sandbox";

/** Auth0's default database connection, which every new tenant has. */
const defaultDatabaseConnection = "Username-Password-Authentication";

// One fixed text: a connection's type is read for every mapping default (each login, each job).
const readSetting = "SELECT value FROM bridge_settings WHERE key = ?";

function* read<T>(key: string): StoreOp<T | undefined> {
  const row = yield* one<{ value: string }>(readSetting, [key]);
  return row === undefined ? undefined : (JSON.parse(row.value) as T);
}

function* write(key: string, value: unknown, now = Date.now()): StoreOp<void> {
  yield* exec(
    `INSERT INTO bridge_settings (key, value, updated_at) VALUES (?, ?, ?)
     ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at`,
    [key, JSON.stringify(value), now],
  );
}

const driftDueKey = "schedule.drift.next_at";

/**
 * Takes the drift scan that is due at `now`, at most once per period across every process on this
 * database: when the stored due time has passed (or none is stored yet, or it lies further ahead
 * than one period, after the interval was shortened), moves it to `now + periodMs` with a
 * compare-and-set on the old value, so of several instances checking at once exactly one sees its
 * update change a row (on PostgreSQL the loser's UPDATE waits for the winner's commit, then finds
 * the value changed). Returns true when the caller took a due scan and must enqueue it in the
 * same transaction. The first check of a new database only schedules the first scan a period out.
 */
export function* takeDueDriftScan(now: number, periodMs: number): StoreOp<boolean> {
  const stored = (yield* one<{ value: string }>(readSetting, [driftDueKey]))?.value;
  const next = JSON.stringify(now + periodMs);
  if (stored === undefined) {
    yield* exec("INSERT INTO bridge_settings (key, value, updated_at) VALUES (?, ?, ?) ON CONFLICT (key) DO NOTHING", [
      driftDueKey,
      next,
      now,
    ]);
    return false;
  }
  const due = JSON.parse(stored) as number;
  if (due > now && due <= now + periodMs) return false;
  const moved = yield* exec("UPDATE bridge_settings SET value = ?, updated_at = ? WHERE key = ? AND value = ?", [
    next,
    now,
    driftDueKey,
    stored,
  ]);
  // A due time beyond one period (the interval was shortened) is only pulled in, not a scan.
  return moved === 1 && due <= now;
}

export interface TenantLink {
  /** AUTH0_DOMAIN of the tenant, or "sandbox". */
  tenant: string;
  linkedAt: number;
}

export function* linkedTenant(): StoreOp<TenantLink | undefined> {
  return yield* read<TenantLink>(tenantKey);
}

/** Links the database to `tenant`; an existing link to the same tenant keeps its time. */
export function* recordTenantLink(tenant: string, now = Date.now()): StoreOp<void> {
  const current = yield* linkedTenant();
  if (current?.tenant === tenant) return;
  yield* write(tenantKey, { tenant, linkedAt: now } satisfies TenantLink, now);
}

/**
 * Why the sandbox must not use this database, or undefined when it may. A database linked to a
 * real tenant holds that tenant's organization and user ids; the sandbox would replace them with
 * ids of its throwaway tenant, and deactivations would then "succeed" against users that do not exist.
 */
export function* sandboxRefusal(): StoreOp<string | undefined> {
  const link = yield* linkedTenant();
  if (link && link.tenant !== sandboxTenant) {
    return `this database is linked to the Auth0 tenant ${link.tenant} (by \`scim-bridge serve\`); the sandbox would overwrite its Auth0 ids. Use the sandbox's own database (unset DATABASE_URL) or another file.`;
  }
  if (!link) {
    const linkedOrg = yield* one<{ slug: string }>(
      "SELECT slug FROM organizations WHERE auth0_org_id IS NOT NULL ORDER BY slug LIMIT 1",
    );
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

export function* recordConnection(c: KnownConnection): StoreOp<void> {
  yield* write(connectionKey(c.name), c, c.checkedAt);
}

export function* knownConnection(name: string): StoreOp<KnownConnection | undefined> {
  return yield* read<KnownConnection>(connectionKey(name));
}

/** Every connection the bridge has seen in the tenant, by name. */
export function* knownConnections(): StoreOp<KnownConnection[]> {
  // A range on the key rather than LIKE: '_' is a LIKE wildcard, and the range uses the primary key.
  const rows = yield* many<{ value: string }>(
    "SELECT value FROM bridge_settings WHERE key >= ? AND key < ? ORDER BY key",
    ["auth0.connection:", "auth0.connection;"],
  );
  return rows.map((r) => JSON.parse(r.value) as KnownConnection);
}

/**
 * The connection's type as last seen in the tenant; before the bridge has looked, Auth0's default
 * database connection is a database and any other name counts as one too (the former behaviour),
 * until `serve` or `doctor` reads the tenant.
 */
export function* connectionTypeOf(name: string): StoreOp<{ type: ConnectionType; known: boolean }> {
  return connectionTypeFrom(name, (yield* one<{ value: string }>(readSetting, [connectionKey(name)]))?.value);
}

/** connectionTypeOf from the connection's setting as read (connectionSettingOf), undefined or null when none. */
export function connectionTypeFrom(
  name: string,
  setting: string | null | undefined,
): { type: ConnectionType; known: boolean } {
  if (setting != null) return { type: (JSON.parse(setting) as KnownConnection).type, known: true };
  return { type: "database", known: name === defaultDatabaseConnection };
}

/**
 * A scalar subquery of the setting of the connection named by the SQL expression `name` (null when
 * the bridge has not seen it), for a statement that loads an organization with what its default
 * mapping needs (connectionTypeFrom reads it), instead of a statement of its own.
 */
export const connectionSettingOf = (name: string): string =>
  `(SELECT value FROM bridge_settings WHERE key = '${connectionKeyPrefix}' || ${name})`;
