/**
 * The tenant checks over many organizations: parsed mappings are reused between checks, yet a
 * problem in one organization's mapping among many is reported (report, /readyz problems, log), and
 * a mapping applied between two checks is what the next check sees.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { createOrganization } from "../../src/directory/organizations.js";
import { saveMappingVersion } from "../../src/directory/mappings.js";
import type { SqlStore } from "../../src/directory/sql.js";
import { changeBy } from "../../src/directory/write-context.js";
import { parseMapping } from "../../src/mapping/index.js";
import { startEmulator, type RunningEmulator } from "../../src/emulator/index.js";
import {
  checkTenant,
  monitorTenant,
  readinessProblems,
  type TenantCheckOptions,
} from "../../src/sync/tenant-checks.js";
import { openTestStores } from "../support/test-dialect.js";

const domain = "acme-test.eu.auth0.com";
const operator = { type: "operator" as const, id: "test" };
let emulator: RunningEmulator;
let opened: Awaited<ReturnType<typeof openTestStores>> | undefined;
/** The store of the test's database (this run's dialect), where the operator applies mappings. */
let store: SqlStore;

beforeAll(async () => {
  emulator = await startEmulator({
    domain,
    clientId: "bridge-client",
    clientSecret: "right-secret",
    connections: [{ name: "acme-entra", strategy: "waad", options: { set_user_root_attributes: "on_first_login" } }],
  });
});
afterAll(async () => {
  await emulator?.close();
});
afterEach(async () => {
  await opened?.close();
  opened = undefined;
});

const mapping = (type: "database" | "enterprise") =>
  parseMapping({ connection: { name: "acme-entra", type }, userModel: "isolated", profile: { email: "userName" } });

/** 60 organizations on one enterprise connection: most on the default mapping, every tenth on one applied document. */
async function manyOrganizations(): Promise<TenantCheckOptions> {
  opened = await openTestStores();
  store = opened.stores[0]!;
  // One unit: sixty organizations one round trip each would only slow the PostgreSQL run down.
  await store.write(function* () {
    for (let i = 0; i < 60; i++) {
      yield* createOrganization({ slug: `org-${i}`, connection: "acme-entra" }, changeBy(operator));
      if (i % 10 === 0) yield* saveMappingVersion(`org-${i}`, mapping("enterprise"), { actor: operator });
    }
  });
  return {
    auth0: { domain, clientId: "bridge-client", clientSecret: "right-secret", managementUrl: emulator.url },
    store,
    publicUrl: "http://127.0.0.1:9",
    hookSecret: undefined,
    timeoutMs: 5000,
  } as TenantCheckOptions;
}

const connectionCheck = async (options: TenantCheckOptions) => {
  const report = await checkTenant(options);
  return { report, check: report.checks.find((c) => c.id === "connection:acme-entra")! };
};

describe("tenant checks over many organizations", { timeout: 60_000 }, () => {
  it("report a mapping at odds with its connection in one organization among many, and see it fixed and broken again", async () => {
    const options = await manyOrganizations();
    const clean = await connectionCheck(options);
    expect(clean.check.status).toBe("ok");
    expect(readinessProblems(clean.report)).toEqual([]);

    // org-37 applies a mapping typed database on the enterprise connection between two checks.
    await store.write(saveMappingVersion("org-37", mapping("database"), { actor: operator }));
    const broken = await connectionCheck(options);
    expect(broken.check).toMatchObject({
      status: "fail",
      summary: expect.stringMatching(/org-37's mapping says connection type "database" but its strategy is "waad"/),
      fix: "set connection.type: enterprise in org-37's mapping",
    });
    expect(broken.check.summary).not.toMatch(/org-(?!37)\d+'s mapping/);
    expect(readinessProblems(broken.report)).toEqual([
      expect.stringMatching(/^auth0: connection "acme-entra".*org-37/),
    ]);

    // Fixed there; then the same document, shared by many organizations, is applied to org-20 too.
    await store.write(saveMappingVersion("org-37", mapping("enterprise"), { actor: operator }));
    expect((await connectionCheck(options)).check.status).toBe("ok");
    await store.write(saveMappingVersion("org-20", mapping("database"), { actor: operator }));
    const again = await connectionCheck(options);
    expect(again.check.status).toBe("fail");
    expect(again.check.summary).toMatch(/org-20's mapping says connection type "database"/);
    expect(again.check.summary).not.toMatch(/org-37's mapping/);
  });

  it("serve's monitor logs the organization's problem at error from its first check", async () => {
    const options = await manyOrganizations();
    await store.write(saveMappingVersion("org-5", mapping("database"), { actor: operator }));
    const logged: { level: string; entry: object; msg: string }[] = [];
    const log = {
      info: (entry: object, msg: string) => logged.push({ level: "info", entry, msg }),
      warn: (entry: object, msg: string) => logged.push({ level: "warn", entry, msg }),
      error: (entry: object, msg: string) => logged.push({ level: "error", entry, msg }),
    };
    const monitor = monitorTenant({ ...options, log });
    try {
      const first = await monitor.first;
      expect(readinessProblems(first)).toEqual([expect.stringMatching(/org-5's mapping says connection type/)]);
      expect(logged).toContainEqual({
        level: "error",
        entry: expect.objectContaining({
          check: "connection:acme-entra",
          fix: "set connection.type: enterprise in org-5's mapping",
        }),
        msg: expect.stringMatching(/Auth0 tenant check failed: .*org-5's mapping says connection type "database"/),
      });
    } finally {
      monitor.stop();
    }
  });
});
