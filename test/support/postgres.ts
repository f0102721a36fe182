/**
 * PostgreSQL for test files of the "postgres" vitest project: the server the global setup started
 * (test/support/postgres-global-setup.ts), and a fresh, empty database on it per caller.
 */
import { randomBytes } from "node:crypto";
import pg from "pg";
import { inject } from "vitest";

/** Why PostgreSQL tests cannot run here ("" when they can); for `describe.skipIf`. Never set under CI. */
export const postgresUnavailable: string = inject("postgresUnavailable");

export interface TestDatabase {
  /** postgres:// URL of the new database. */
  url: string;
  /** Drops the database, ending any session still connected to it. */
  drop(): Promise<void>;
}

async function withAdmin<T>(fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: inject("postgresAdminUrl"), connectionTimeoutMillis: 10_000 });
  // The query under way reports a lost session; an error event without a listener would crash the run.
  client.on("error", () => undefined);
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

/**
 * Creates an empty database (no migrations applied) with a random name, on the shared server.
 * `icuLocale`: the database's default collation is that ICU locale's (for instance "en-US", where
 * "a" < "B"), instead of the server's default, which may well be C already. `template`: a copy of
 * that database (which nothing may be connected to) instead of an empty one.
 */
export async function freshDatabase(options: { icuLocale?: string; template?: string } = {}): Promise<TestDatabase> {
  const admin = inject("postgresAdminUrl");
  if (!admin) throw new Error(`PostgreSQL is unavailable: ${postgresUnavailable}`);
  const name = `scim_test_${randomBytes(6).toString("hex")}`;
  const locale = options.icuLocale
    ? ` TEMPLATE template0 ENCODING 'UTF8' LOCALE 'C' LOCALE_PROVIDER icu ICU_LOCALE '${options.icuLocale.replace(/[^A-Za-z0-9-]/g, "")}'`
    : options.template
      ? ` TEMPLATE ${options.template.replace(/[^A-Za-z0-9_]/g, "")}`
      : "";
  await withAdmin((c) => c.query(`CREATE DATABASE ${name}${locale}`));
  const url = new URL(admin);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    drop: () => withAdmin((c) => c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`)).then(() => undefined),
  };
}

/** Runs `fn` with one connection to `url`, closed afterwards. */
export async function withClient<T>(url: string, fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 10_000 });
  client.on("error", () => undefined);
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}
