/**
 * CPU cost of reading organizations' mappings on two paths that touch many of them:
 *
 *   tenant: `serve`'s tenant checks (checkTenant) over N organizations (default 10,000), most on the
 *           default mapping, one in ten on one of a few applied documents; the first run after
 *           start-up and a periodic re-run.
 *   hook:   the post-login decision (decidePostLogin) for a linked user of an organization with an
 *           applied mapping, CPU per call.
 *
 * Usage: npx tsx bench/mapping-cache.ts [tenant|hook|all] [--orgs N] [--calls N]
 * CPU time (user + system) of this process, not wall time: the emulator answers in this process too,
 * a handful of calls per tenant check.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { openDatabase, type Db } from "../src/directory/database.js";
import { onboardOrganizationOp } from "../src/admin/onboarding.js";
import { createOrganization } from "../src/directory/organizations.js";
import { saveMappingVersion } from "../src/directory/mappings.js";
import { createUser } from "../src/directory/users.js";
import { changeBy } from "../src/directory/write-context.js";
import { parseMapping } from "../src/mapping/index.js";
import { startEmulator } from "../src/emulator/index.js";
import { checkTenant } from "../src/sync/tenant-checks.js";
import { decidePostLogin } from "../src/sync/post-login.js";
import { runSync, writeSync } from "../src/directory/store-op.js";
import { sqliteStore } from "../src/directory/sql.js";
import { connectionOf } from "../src/directory/statements.js";

const args = process.argv.slice(2);
const flag = (name: string, fallback: number): number => {
  const i = args.indexOf(name);
  return i >= 0 ? Number(args[i + 1]) : fallback;
};
const mode = args.find((a) => !a.startsWith("--") && !/^\d+$/.test(a)) ?? "all";
const orgCount = flag("--orgs", 10_000);
const calls = flag("--calls", 20_000);
const operator = { type: "operator" as const, id: "bench" };
const DB_CONNECTION = "Username-Password-Authentication";
const ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";

const cpuMs = (): number => {
  const { user, system } = process.cpuUsage();
  return (user + system) / 1000;
};

function mappingVariant(i: number) {
  return parseMapping({
    connection: { name: DB_CONNECTION, type: "database" },
    userModel: "isolated",
    profile: { email: "userName" },
    app_metadata: { keys: { department: `${ENTERPRISE}:department`, cost_center: `${ENTERPRISE}:costCenter` } },
    roles: { rules: [{ when: { group: `Eng-Admins-${i}` }, grant: ["admin"] }], default: ["member"] },
  });
}

async function tenant(db: Db): Promise<void> {
  const t0 = Date.now();
  db.transaction((tx) => {
    for (let i = 0; i < orgCount; i++) {
      const org = runSync(tx, createOrganization({ slug: `org-${i}`, connection: DB_CONNECTION }, changeBy(operator)));
      if (i % 10 === 0) writeSync(tx, saveMappingVersion(org.id, mappingVariant(i % 5), { actor: operator }));
    }
  });
  console.log(`seeded ${orgCount} organizations in ${Date.now() - t0} ms`);
  const emulator = await startEmulator({ domain: "bench.eu.auth0.com", clientId: "c", clientSecret: "s" });
  const options = {
    auth0: {
      domain: "bench.eu.auth0.com",
      clientId: "c",
      clientSecret: "s",
      managementUrl: emulator.url,
    } as Parameters<typeof checkTenant>[0]["auth0"],
    store: sqliteStore(connectionOf(db)),
    publicUrl: "http://127.0.0.1:9",
    hookSecret: undefined,
    timeoutMs: 2000,
  };
  for (const label of ["first check", "re-check", "re-check"]) {
    const c0 = cpuMs();
    const w0 = Date.now();
    const report = await checkTenant(options);
    console.log(
      `tenant ${label}: ${(cpuMs() - c0).toFixed(0)} ms CPU, ${Date.now() - w0} ms wall, ${report.checks.length} checks, ok=${report.ok}`,
    );
  }
  await emulator.close();
}

async function hook(db: Db): Promise<void> {
  const store = sqliteStore(connectionOf(db));
  const onboarded = writeSync(
    db,
    onboardOrganizationOp({ slug: "hook-org", connection: DB_CONNECTION }, changeBy(operator)),
  );
  writeSync(db, saveMappingVersion(onboarded.organization.id, mappingVariant(0), { actor: operator }));
  const ctx = {
    ...changeBy(operator),
    organizationId: onboarded.organization.id,
    directoryId: onboarded.directory.id,
  };
  const users = 200;
  db.transaction((tx) => {
    for (let i = 0; i < users; i++)
      runSync(
        tx,
        createUser(ctx, {
          schemas: ["urn:ietf:params:scim:schemas:core:2.0:User", ENTERPRISE],
          userName: `u${i}@bench.example.com`,
          active: true,
          [ENTERPRISE]: { department: "Research" },
        } as unknown as Parameters<typeof createUser>[1]),
      );
  });
  const event = (i: number) => ({
    user: { user_id: `auth0|u${i % users}`, email: `u${i % users}@bench.example.com` },
    organization: { name: "hook-org" },
    connection: { name: DB_CONNECTION, strategy: "auth0" },
  });
  // First logins link each user (one write each); the measured calls are later logins.
  for (let i = 0; i < users; i++) await decidePostLogin(store, event(i));
  for (let i = 0; i < 2000; i++) await decidePostLogin(store, event(i));
  const c0 = cpuMs();
  let allowed = 0;
  for (let i = 0; i < calls; i++) if ((await decidePostLogin(store, event(i))).decision === "allow") allowed++;
  const used = cpuMs() - c0;
  console.log(`hook: ${((used * 1000) / calls).toFixed(1)} µs CPU per call over ${calls} calls (${allowed} allowed)`);
}

const dir = mkdtempSync(join(tmpdir(), "scim-bridge-mapping-bench-"));
try {
  const handle = openDatabase(`sqlite:${join(dir, "bridge.db")}`, { durability: "normal" });
  if (mode === "tenant" || mode === "all") await tenant(handle.db);
  if (mode === "hook" || mode === "all") await hook(handle.db);
  handle.close();
} finally {
  rmSync(dir, { recursive: true, force: true });
}
