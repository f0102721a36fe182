/**
 * Okta's SCIM 2.0 SPEC test and Microsoft's SCIM suite, unmodified, against a bridge whose store is
 * PostgreSQL: the same expectations as test/conformance on SQLite.
 */
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { onboardOrganization } from "../../src/admin/onboarding.js";
import { createBridge, type Bridge } from "../../src/bridge.js";
import { loadConfig } from "../../src/config.js";
import { scimBaseUrl } from "../../src/directory/directories.js";
import { changeBy } from "../../src/directory/write-context.js";
import {
  conformanceDir,
  microsoft,
  microsoftExpectedFailures,
  microsoftFolders,
  microsoftVariables,
  missingCollections,
  okta,
  runCollection,
} from "../helpers/conformance.js";
import { freshDatabase, postgresUnavailable, type TestDatabase } from "../support/postgres.js";

if (missingCollections.length > 0 && process.env.CI === "true")
  throw new Error(`conformance collections missing under CI (looked in ${conformanceDir})`);

describe.skipIf(postgresUnavailable || missingCollections.length > 0)("SCIM conformance suites on PostgreSQL", () => {
  let database: TestDatabase;
  let bridge: Bridge;
  let server: Server;
  let origin: string;
  const directory = async (slug: string) => {
    const onboarded = await onboardOrganization(bridge.store, { slug }, changeBy({ type: "operator", id: "test" }));
    return { baseUrl: scimBaseUrl(origin, onboarded.directory.id), token: onboarded.token.token };
  };

  beforeAll(async () => {
    database = await freshDatabase();
    server = createServer();
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    bridge = await createBridge(loadConfig({ LOG_LEVEL: "silent" }), {
      databaseUrl: database.url,
      publicUrl: origin,
      log: pino({ level: "silent" }),
      // The worker never runs here: nothing listens at this address.
      auth0: {
        domain: "tenant.example.auth0.com",
        clientId: "scim-bridge-test",
        clientSecret: "test-secret",
        managementUrl: "http://127.0.0.1:9",
      },
      defaultMetrics: false,
    });
    server.on("request", bridge.app);
  });
  afterAll(async () => {
    await new Promise((r) => server?.close(r));
    await bridge?.close();
    await database?.drop();
  });

  it("passes Okta's SCIM 2.0 SPEC test, every assertion", async () => {
    const dir = await directory("okta-spec");
    // Okta's guide ("Test your SCIM API") asks for at least one user before the run.
    const seeded = await fetch(`${dir.baseUrl}/Users`, {
      method: "POST",
      headers: { authorization: `Bearer ${dir.token}`, "content-type": "application/scim+json" },
      body: JSON.stringify({
        schemas: ["urn:ietf:params:scim:schemas:core:2.0:User"],
        userName: "seed.user@example.com",
        name: { givenName: "Seed", familyName: "User" },
        emails: [{ value: "seed.user@example.com", type: "work", primary: true }],
        active: true,
      }),
    });
    expect(seeded.status).toBe(201);
    const result = await runCollection(okta, { SCIMBaseURL: dir.baseUrl, auth: `Bearer ${dir.token}` });
    expect(result.failures).toEqual([]);
    expect(result.assertions).toBe(52);
  });

  it("passes Microsoft's SCIM suite except the bare-string member adds it lists as its own artefacts", async () => {
    const dir = await directory("microsoft-suite");
    const result = await runCollection(microsoft, microsoftVariables(dir.baseUrl, dir.token), microsoftFolders);
    expect(result.assertions).toBe(105);
    expect(result.failures).toEqual(microsoftExpectedFailures);
  });
});
