import { randomBytes } from "node:crypto";
import { eq } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { scimRequestLog as logTable } from "../../db/schema.js";
import { createMetrics, type Metrics } from "../../src/http/metrics.js";
import { unauthenticatedLimitDefaults } from "../../src/http/rate-limit.js";
import { scimRequestLog, type ScimRequestLogMiddleware } from "../../src/http/scim-request-log.js";
import { createTestBridge, type TestBridge } from "../helpers/scim.js";

/**
 * Unauthenticated floods: throttled per client address and directory (never per presented secret),
 * counted in /metrics, and kept out of the directory's SCIM request log.
 */
let bridge: TestBridge;
let recorder: ScimRequestLogMiddleware;
let metrics: Metrics;
beforeAll(async () => {
  metrics = createMetrics({ defaultMetrics: false });
  let r: ScimRequestLogMiddleware | undefined;
  bridge = await createTestBridge({
    scimMiddleware: [(req, res, next) => r!(req, res, next)],
    onUnauthenticated: (outcome) => metrics.unauthenticatedRequests.inc({ outcome }),
  });
  recorder = r = scimRequestLog(bridge.bookkeeping);
});
afterAll(async () => bridge.close());

const counted = async (outcome: string) =>
  (await metrics.unauthenticatedRequests.get()).values.find((v) => v.labels.outcome === outcome)?.value ?? 0;

describe("a flood of random tokens", () => {
  it("is answered 401 up to the burst, then 429 with Retry-After; the log stays empty", async () => {
    const { burst } = unauthenticatedLimitDefaults;
    const statuses: number[] = [];
    const started = Date.now();
    for (let i = 0; i < burst + 30; i++) {
      const res = await bridge.http
        .get(`${bridge.basePath}/Users`)
        .set("Authorization", `Bearer ${randomBytes(24).toString("base64url")}`);
      statuses.push(res.status);
      if (res.status === 429) {
        expect(res.body.schemas).toEqual(["urn:ietf:params:scim:api:messages:2.0:Error"]);
        expect(Number(res.headers["retry-after"])).toBeGreaterThanOrEqual(1);
      }
    }
    // The bucket refills at its rate while the flood runs (seconds on a loaded machine): each second
    // of it may let one more failure through as 401, and no more.
    const refills = Math.ceil(((Date.now() - started) / 1000) * unauthenticatedLimitDefaults.ratePerSecond) + 1;
    expect(statuses.slice(0, burst).every((s) => s === 401)).toBe(true);
    expect(statuses.filter((s) => s === 401).length).toBeLessThanOrEqual(burst + refills);
    expect(statuses.filter((s) => s === 429).length).toBeGreaterThanOrEqual(30 - refills);
    expect(await counted("rejected")).toBe(statuses.filter((s) => s === 401).length);
    expect(await counted("limited")).toBe(statuses.filter((s) => s === 429).length);

    await recorder.flush();
    expect(bridge.db.select().from(logTable).where(eq(logTable.directoryId, bridge.directoryId)).all()).toEqual([]);
  });

  it("does not lock out the directory's own IdP on the same address, and its requests are logged", async () => {
    await bridge.scim.get("/Users").expect(200);
    await recorder.flush();
    const rows = bridge.db.select().from(logTable).where(eq(logTable.directoryId, bridge.directoryId)).all();
    expect(rows.map((r) => [r.method, r.path, r.status])).toEqual([["GET", "/Users", 200]]);
  });

  it("keeps another directory's failures in their own bucket", async () => {
    const other = await bridge.newDirectory();
    const res = await bridge.http.get(`${other.basePath}/Users`).set("Authorization", "Bearer wrong");
    expect(res.status).toBe(401);
  });

  it("answers missing credentials the same way, without parsing the body", async () => {
    const target = await bridge.newDirectory();
    for (let i = 0; i < unauthenticatedLimitDefaults.burst; i++) {
      await bridge.http
        .post(`${target.basePath}/Users`)
        .set("Content-Type", "application/scim+json")
        .send("{not json")
        .expect(401);
    }
    await bridge.http
      .post(`${target.basePath}/Users`)
      .set("Content-Type", "application/scim+json")
      .send("{not json")
      .expect(429);
  });
});
