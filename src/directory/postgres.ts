import { join } from "node:path";
import { drizzle } from "drizzle-orm/node-postgres";
import { migrate } from "drizzle-orm/node-postgres/migrator";
import pg from "pg";
import { isPostgresUrl } from "../config.js";
import { packageRoot } from "../paths.js";

/** drizzle-kit's PostgreSQL migrations (db/pg/, generated from db/schema.pg.ts). */
export const postgresMigrationsFolder = join(packageRoot, "db", "pg");

export { isPostgresUrl };

/** The oldest server the migrations run on: scim_fold lowers text with the builtin pg_c_utf8 collation (PostgreSQL 17). */
export const minimumServerVersion = 170000;

/** Why a server of this version (server_version_num, e.g. 160004) cannot hold the store, or undefined when it can. */
export function serverVersionRefusal(versionNum: number, version: string): string | undefined {
  if (versionNum >= minimumServerVersion) return undefined;
  return `PostgreSQL 17 or later is required (this server is ${version}): case-insensitive matching uses the builtin pg_c_utf8 collation, which PostgreSQL 17 introduced`;
}

/**
 * Applies pending PostgreSQL migrations, safe when several instances start at once. drizzle's
 * migrator takes no lock: two runs both read "nothing applied yet" and the second fails on objects
 * the first created. So each run first takes a session-level advisory lock (PostgreSQL
 * documentation, "Advisory Locks") on one dedicated connection and migrates through that same
 * connection; the others wait, then find every migration applied and do nothing. The lock ends with
 * the session, so a run that dies mid-way never leaves it held.
 */
export async function migratePostgres(url: string): Promise<void> {
  const client = new pg.Client({
    connectionString: url,
    // node-postgres waits forever for a connection by default; a wrong host should fail, not hang.
    connectionTimeoutMillis: 10_000,
    application_name: "scim-bridge migrate",
  });
  // A session the server ends (a restart, pg_terminate_backend) fails the query under way, which
  // migrate reports; the client's error event without a listener would crash the process instead.
  client.on("error", () => undefined);
  await client.connect();
  try {
    const { rows } = await client.query<{ num: string; version: string }>(
      "SELECT current_setting('server_version_num') AS num, current_setting('server_version') AS version",
    );
    const refusal = serverVersionRefusal(Number(rows[0]!.num), rows[0]!.version);
    if (refusal) throw new Error(refusal);
    await client.query("SELECT pg_advisory_lock(hashtextextended('scim-bridge migrations', 0))");
    await migrate(drizzle({ client }), { migrationsFolder: postgresMigrationsFolder });
  } finally {
    // Ending the session releases the lock, whether or not the migration succeeded.
    await client.end();
  }
}
