import { eq } from "drizzle-orm";
import type { RequestHandler } from "express";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { organizations } from "../../db/schema.js";
import { postLoginHookRouter, signPostLoginBody } from "../../src/http/post-login-hook.js";
import { sqliteStore } from "../../src/directory/sql.js";
import { connectionOf } from "../../src/directory/statements.js";
import { costLimits, QueryBudget } from "../../src/scim/cost.js";
import { scimLimits } from "../../src/scim/limits.js";
import { createTestBridge, type ScimClient, type TestBridge } from "../helpers/scim.js";
import { storedUser, writeFootprint } from "../helpers/store.js";
import { seedUsers } from "./seed.js";

/**
 * No tenant can hurt another. Nothing here is timed (the machine is shared): each test asserts a
 * bound or an order that holds however slow the machine is. The figures (p99 of another tenant's
 * GET and of the post-login hook under load) are in `npm run bench -- fairness`.
 */
const secret = "fairness-hook-secret";
const patchOp = (Operations: unknown[]) => ({ schemas: ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], Operations });
const bigDirectory = 8_000;

let bridge: TestBridge;
let clock = 1_000_000;
let other: { scim: ScimClient; directoryId: string };
let otherUserId: string;
let slug: string;
let seeded: string[];

beforeAll(async () => {
  // The hook needs the bridge's database, which exists only once the bridge does.
  let hook: RequestHandler | undefined;
  bridge = await createTestBridge({
    extraRouters: [{ path: "/hooks/auth0/post-login", router: (req, res, next) => hook!(req, res, next) }],
    queryBudget: new QueryBudget({ now: () => clock }),
  });
  hook = postLoginHookRouter(sqliteStore(connectionOf(bridge.db)), secret);
  seeded = seedUsers(bridge.sqlite, bridge.directoryId, bigDirectory);
  other = await bridge.newDirectory();
  otherUserId = (await other.scim.post("/Users", { userName: "b@other.example" }).expect(201)).body.id;
  slug = bridge.db
    .select({ slug: organizations.slug })
    .from(organizations)
    .where(eq(organizations.id, bridge.organizationId))
    .get()!.slug;
});
afterAll(async () => bridge.close());

const filterQuery = (filter: string) => `/Users?filter=${encodeURIComponent(filter)}`;

describe("reads are priced before they run", () => {
  it("refuses a filter too costly for the directory's size with 400 invalidFilter naming what to filter on instead", async () => {
    for (const filter of [
      'title co "x"',
      Array.from({ length: 100 }, (_, i) => `userName ew "q${i}"`).join(" or "),
      'not (userName eq "a") and title sw "T"',
    ]) {
      const res = await bridge.scim.get(filterQuery(filter)).expect(400);
      expect(res.body.scimType).toBe("invalidFilter");
      expect(res.body.detail).toMatch(/too complex for a directory of 8000 users/);
      expect(res.body.detail).toMatch(/userName/);
    }
  });

  it("answers indexed filters on the same directory, and the same costly filter on a small one", async () => {
    const res = await bridge.scim.get(filterQuery('userName eq "SEED17@fair.example" and title co "x"')).expect(200);
    expect(res.body.totalResults).toBe(0);
    expect(
      (await bridge.scim.get(filterQuery('emails.value eq "seed42@fair.example"')).expect(200)).body.Resources[0].id,
    ).toBe(seeded[42]);
    expect((await other.scim.get(filterQuery('title co "x"')).expect(200)).body.totalResults).toBe(0);
  });

  it("meters affordable scans per directory: once a directory's budget is spent it gets 429, others do not", async () => {
    clock += 60_000; // a full bucket
    const scan = filterQuery('userName co "nobody"'); // 2 × 8,000 units
    const perScan = 2 * bigDirectory;
    const affordable = Math.floor(costLimits.burstUnits / perScan);
    const statuses: number[] = [];
    for (let i = 0; i < affordable + 5; i++) statuses.push((await bridge.scim.get(scan)).status);
    expect(statuses.slice(0, affordable).every((s) => s === 200)).toBe(true);
    expect(statuses.slice(affordable)).toEqual([429, 429, 429, 429, 429]);
    const refused = await bridge.scim.get(scan).expect(429);
    expect(Number(refused.headers["retry-after"])).toBeGreaterThanOrEqual(1);
    // Indexed reads of the same directory and the other directory's scans are not affected.
    await bridge.scim.get(filterQuery('userName eq "seed1@fair.example"')).expect(200);
    await bridge.scim.get(`/Users/${seeded[1]}`).expect(200);
    await other.scim.get(filterQuery('userName co "nobody"')).expect(200);
    clock += 1_000; // one second refills unitsPerSecond
    await bridge.scim.get(scan).expect(200);
  });
});

describe("PATCH work is bounded by the request, not by what it asks for", () => {
  it("refuses 1,000 operations adding 25 emails each (25,000 values) before applying any, with nothing written", async () => {
    const id = seeded[100]!;
    const before = await writeFootprint(bridge.store);
    const operations = Array.from({ length: 1000 }, (_, i) => ({
      op: "add",
      path: "emails",
      value: Array.from({ length: 25 }, (_, j) => ({ value: `e${i}-${j}@fair.example` })),
    }));
    const res = await bridge.scim.patch(`/Users/${id}`, patchOp(operations)).expect(400);
    expect(res.body.scimType).toBe("invalidValue");
    expect(res.body.detail).toBe(`a PATCH may carry at most ${scimLimits.maxPatchValues} values across its operations`);
    expect(await writeFootprint(bridge.store)).toEqual(before);
  });

  it("names the attribute when operations would take it past its maximum, with nothing written", async () => {
    const id = seeded[103]!;
    const before = await writeFootprint(bridge.store);
    const operations = Array.from({ length: 5 }, (_, i) => ({
      op: "add",
      path: "emails",
      value: Array.from({ length: 25 }, (_, j) => ({ value: `f${i}-${j}@fair.example` })),
    }));
    const res = await bridge.scim.patch(`/Users/${id}`, patchOp(operations)).expect(400);
    expect(res.body.detail).toBe(`"emails" may hold at most ${scimLimits.maxValuesPerAttribute} values`);
    expect(await writeFootprint(bridge.store)).toEqual(before);
  });

  it("removes a list of the most values a PATCH may carry from a user holding the maximum, in one request", async () => {
    const id = seeded[101]!;
    const emails = Array.from({ length: scimLimits.maxValuesPerAttribute }, (_, i) => ({
      value: `keep${i}@fair.example`,
    }));
    await bridge.scim.put(`/Users/${id}`, { userName: "seed101@fair.example", emails }).expect(200);
    const listed = Array.from({ length: scimLimits.maxPatchValues }, (_, i) => ({
      value: `KEEP${i * 2}@FAIR.EXAMPLE`,
    }));
    await bridge.scim.patch(`/Users/${id}`, patchOp([{ op: "remove", path: "emails", value: listed }])).expect(204);
    const kept = ((await storedUser(bridge.store, id))!.document.emails as { value: string }[]).map((e) => e.value);
    expect(kept).toEqual(emails.filter((_, i) => i % 2 === 1).map((e) => e.value));
    // The example, 30,000 listed values, is refused whole.
    const huge = Array.from({ length: 30_000 }, (_, i) => ({ value: `x${i}@fair.example` }));
    const before = await writeFootprint(bridge.store);
    await bridge.scim.patch(`/Users/${id}`, patchOp([{ op: "remove", path: "emails", value: huge }])).expect(400);
    expect(await writeFootprint(bridge.store)).toEqual(before);
  });

  it("refuses a user created with more values than the maximum instead of failing in SQLite", async () => {
    const before = await writeFootprint(bridge.store);
    const emails = Array.from({ length: 6000 }, (_, i) => ({ value: `many${i}@fair.example` }));
    const res = await bridge.scim.post("/Users", { userName: "many@fair.example", emails }).expect(400);
    expect(res.body.detail).toMatch(/"emails" may hold at most/);
    expect(await writeFootprint(bridge.store)).toEqual(before);
  });

  it("refuses more than 1,000 operations in one PATCH with 400 tooMany", async () => {
    const operations = Array.from({ length: 1001 }, () => ({ op: "replace", path: "title", value: "x" }));
    expect((await bridge.scim.patch(`/Users/${seeded[102]}`, patchOp(operations)).expect(400)).body.scimType).toBe(
      "tooMany",
    );
  });
});

describe("the login path and other tenants while one tenant floods", () => {
  it("answers the hook and the other tenant while at most a budget's worth of the flood runs; the rest is refused at once", async () => {
    clock += 60_000;
    const dearest = `/Users?sortBy=title&count=${1000}`; // unindexed sort over 8,000 users: near the per-request maximum
    const flood = Array.from({ length: 40 }, () => bridge.scim.get(dearest).then((r) => r.status));
    const hookBody = JSON.stringify({
      user: { user_id: "auth0|nobody", email: "seed5@fair.example" },
      organization: { name: slug },
    });
    const hook = bridge.http
      .post("/hooks/auth0/post-login")
      .set("Content-Type", "application/json")
      .set("x-scim-bridge-signature", signPostLoginBody(secret, hookBody))
      .send(hookBody)
      .then((r) => r.status);
    const neighbour = other.scim.get(`/Users/${otherUserId}`).then((r) => r.status);
    const [floodStatuses, hookStatus, neighbourStatus] = await Promise.all([Promise.all(flood), hook, neighbour]);
    expect(hookStatus).toBe(200);
    expect(neighbourStatus).toBe(200);
    const ran = floodStatuses.filter((s) => s === 200).length;
    // The clock is frozen: exactly the burst's worth of the dearest request runs, all else is 429.
    const perRequest = bigDirectory * 18;
    expect(ran).toBe(Math.floor(costLimits.burstUnits / perRequest));
    expect(floodStatuses.filter((s) => s !== 200).every((s) => s === 429)).toBe(true);
  });
});
