import { existsSync } from "node:fs";
import { join, resolve } from "node:path";
import newman from "newman";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { packageRoot } from "../../src/paths.js";
import { createTestBridge, type TestBridge } from "../helpers/scim.js";

/**
 * The Okta SPEC test and Microsoft's SCIM suite, unmodified, run with newman against a bridge on
 * 127.0.0.1. The collections are third-party files kept out of the repository: SCIM_CONFORMANCE_DIR
 * names the folder holding okta-spec.postman_collection.json and microsoft-scim.postman_collection.json.
 */
const conformanceDir = resolve(packageRoot, process.env.SCIM_CONFORMANCE_DIR ?? "../shared/conformance");
const okta = join(conformanceDir, "okta-spec.postman_collection.json");
const microsoft = join(conformanceDir, "microsoft-scim.postman_collection.json");

const microsoftFolders = [
  "Endpoint tests",
  "User tests",
  "Group tests",
  "ComplexAttribute tests",
  "User tests with garbage",
  "Group tests with garbage",
  "Teardown garbage",
  "Get all groups",
];

/** The five assertions that are artefacts of the Microsoft suite itself. */
const microsoftArtefacts = [
  "Endpoint tests / Get ServiceProviderConfig / Status code is 200",
  "Endpoint tests / Get ServiceProviderConfig / Pach supported is true",
  "Group tests / Get group by id / Body contians user",
  "Group tests with garbage / Group patch add member / Status code is 204",
  "Group tests with garbage / Group patch add member2 / Status code is 204",
];

/**
 * Of those, the bridge still fails only the two bare-string member adds: it answers them 400
 * invalidValue ("string id 1" names no member). The /serviceConfiguration alias and storing the
 * suite's member `displayName` as `display` make the other three pass.
 */
const microsoftExpectedFailures = microsoftArtefacts.slice(3);

function run(collection: string, envVar: Record<string, string>, folder?: string[]) {
  return new Promise<{ failures: string[]; assertions: number; requests: number }>((done, fail) => {
    newman.run(
      {
        collection,
        envVar: Object.entries(envVar).map(([key, value]) => ({ key, value })),
        folder,
        reporters: [],
        timeoutRequest: 10_000,
      },
      (err, summary) => {
        if (err) return fail(err);
        done({
          failures: summary.run.failures.map((f) =>
            [f.parent?.name, f.source?.name, f.error.test ?? `${f.at}: ${f.error.message}`].filter(Boolean).join(" / "),
          ),
          assertions: summary.run.stats.assertions.total,
          requests: summary.run.stats.requests.total,
        });
      },
    );
  });
}

const missing = [okta, microsoft].filter((file) => !existsSync(file));
const present = missing.length === 0;
const skipReason = `skipped: conformance collections not found in ${conformanceDir} (set SCIM_CONFORMANCE_DIR; CI has them)`;

describe.skipIf(!present)("SCIM conformance suites (newman)", () => {
  let bridge: TestBridge;
  beforeAll(async () => {
    bridge = await createTestBridge();
  });
  afterAll(async () => bridge.close());

  it("passes Okta's SCIM 2.0 SPEC test, every assertion", async () => {
    const dir = bridge.newDirectory();
    // Okta's guide ("Test your SCIM API") asks for at least one user before the run.
    await dir.scim
      .post("/Users", {
        schemas: ["urn:ietf:params:scim:schemas:core:2.0:User"],
        userName: "seed.user@example.com",
        name: { givenName: "Seed", familyName: "User" },
        emails: [{ value: "seed.user@example.com", type: "work", primary: true }],
        active: true,
      })
      .expect(201);
    const result = await run(okta, { SCIMBaseURL: dir.baseUrl, auth: `Bearer ${dir.token}` });
    expect(result.failures).toEqual([]);
    expect(result.assertions).toBe(52);
  });

  it("passes Microsoft's SCIM suite except the bare-string member adds it lists as its own artefacts", async () => {
    const dir = bridge.newDirectory();
    const url = new URL(dir.baseUrl);
    const result = await run(
      microsoft,
      {
        Protocol: url.protocol.replace(":", ""),
        Server: url.host,
        Port: "",
        Api: url.pathname.replace(/^\/+|\/+$/g, ""),
        token: dir.token,
      },
      microsoftFolders,
    );
    expect(result.assertions).toBe(105);
    expect(result.failures.every((f) => microsoftArtefacts.includes(f))).toBe(true);
    expect(result.failures).toEqual(microsoftExpectedFailures);
  });
});

if (!present) {
  if (process.env.CI === "true") {
    // Under CI a lost suite is a failure, never a silent skip.
    it("SCIM conformance suites: the collections are present (CI must run them)", () => {
      expect(
        missing,
        `conformance collections missing under CI; set SCIM_CONFORMANCE_DIR (looked in ${conformanceDir})`,
      ).toEqual([]);
    });
  } else {
    console.warn(`SCIM conformance suites ${skipReason}`);
    it.skip(`SCIM conformance suites: ${skipReason}`, () => {});
  }
}
