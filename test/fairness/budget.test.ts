import { exec } from "../../src/directory/store-op.js";
import { EventEmitter } from "node:events";
import { request as httpRequest, type ClientRequest, type IncomingMessage } from "node:http";
import type { Request, Response } from "express";
import { afterEach, describe, expect, it } from "vitest";
import { createWriteQueue } from "../../src/directory/write-queue.js";
import { loadConfig } from "../../src/config.js";
import { isBridgeError } from "../../src/errors.js";
import { loopBudget } from "../../src/http/rate-limit.js";
import { metered, meteredWrites, type LoopMeter } from "../../src/scim/cost.js";
import { createTestBridge, type TestBridge } from "../helpers/scim.js";

/**
 * What one directory may take of the process: a share of the event loop's time (charged with what
 * its requests took, refused 429 with Retry-After once spent while others are served), and a time
 * budget per request (answered 503 with Retry-After, and nothing written, once spent). Nothing here
 * asserts a duration: shares are made tiny or budgets short so the outcome does not depend on the
 * machine's speed.
 */
let bridge: TestBridge | undefined;
afterEach(async () => {
  await bridge?.close();
  bridge = undefined;
});

const patchOp = (Operations: unknown[]) => ({ schemas: ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], Operations });
const manyOps = patchOp(
  Array.from({ length: 1000 }, (_, i) => ({ op: "replace", path: i % 2 ? "title" : "name.givenName", value: `v${i}` })),
);

describe("a directory's share of the event loop", () => {
  const clock = { now: 1_000_000 };
  const request = (key: string) => ({ key }) as unknown as Request;
  const response = () => new EventEmitter() as unknown as Response;
  const budget = () =>
    loopBudget({
      msPerSecond: 100,
      burstMs: 200,
      keyOf: (req) => (req as unknown as { key: string }).key,
      now: () => clock.now,
    });
  const gate = (b: ReturnType<typeof budget>, key: string) => {
    let outcome: unknown = "pending";
    b.gate(request(key), response(), (err?: unknown) => (outcome = err));
    return outcome as { kind: string; retryAfter: number; message: string } | undefined;
  };
  const charge = (b: ReturnType<typeof budget>, key: string, ms: number) =>
    b.charge(request(key), response(), { ms, deadline: Infinity, budgetMs: 1 });

  it("refuses a directory that spent its share while another is served, until its bucket refills", () => {
    const b = budget();
    expect(gate(b, "quiet")).toBeUndefined();
    expect(gate(b, "noisy")).toBeUndefined();
    charge(b, "noisy", 450); // 200 in the bucket: 250 in debt
    expect(gate(b, "quiet")).toBeUndefined();
    const refused = gate(b, "noisy");
    expect(refused).toMatchObject({
      kind: "rateLimited",
      message: expect.stringMatching(/share of the server's time/),
    });
    // 250 ms of debt at 100 ms per second: 3 whole seconds.
    expect(refused!.retryAfter).toBe(3);
    clock.now += 2_000;
    expect(gate(b, "quiet")).toBeUndefined();
    expect(gate(b, "noisy")).toMatchObject({ kind: "rateLimited", retryAfter: 1 });
    clock.now += 1_000;
    expect(gate(b, "quiet")).toBeUndefined();
    expect(gate(b, "noisy")).toBeUndefined();
  });

  it("never refuses a directory alone in the process, and keeps no debt from that time", () => {
    const b = budget();
    clock.now += 10_000;
    for (let i = 0; i < 50; i++) {
      expect(gate(b, "alone")).toBeUndefined();
      charge(b, "alone", 100);
    }
    // Another directory arrives: the one that was alone is not 4.8 s in debt, it is merely at the bottom
    // of its bucket, and from now on what it takes counts.
    expect(gate(b, "newcomer")).toBeUndefined();
    clock.now += 10;
    expect(gate(b, "alone")).toBeUndefined();
    charge(b, "alone", 100);
    expect(gate(b, "alone")).toMatchObject({ kind: "rateLimited", retryAfter: 1 });
    expect(gate(b, "newcomer")).toBeUndefined();
  });

  it("is charged with what the SCIM requests took, and refuses the directory with a SCIM 429 while the other is served", async () => {
    // 1 ms per second with a 200 ms burst: enough for the other directory's few requests even on a
    // loaded machine (the meter counts elapsed time), not for 200 PATCHes of 1,000 operations (each
    // several ms on any machine).
    const b = (bridge = await createTestBridge({
      scimRateLimit: { ratePerSecond: 10_000, burst: 10_000, loop: { msPerSecond: 1, burstMs: 200 } },
    }));
    const noisyUser = (await b.scim.post("/Users", { userName: "noisy@share.example" }).expect(201)).body.id as string;
    const quiet = await b.newDirectory();
    const quietUser = (await quiet.scim.post("/Users", { userName: "q@share.example" }).expect(201)).body.id as string;
    const statuses: number[] = [];
    for (let i = 0; i < 200 && !statuses.includes(429); i++) {
      // The other directory is active (it is served within the last second of each PATCH).
      if (i % 10 === 0) await quiet.scim.get(`/Users/${quietUser}`).expect(200);
      const res = await b.scim.patch(`/Users/${noisyUser}`, manyOps);
      statuses.push(res.status);
      if (res.status === 429) {
        expect(res.body).toMatchObject({
          schemas: ["urn:ietf:params:scim:api:messages:2.0:Error"],
          status: "429",
          detail: expect.stringMatching(/share of the server's time/),
        });
        expect(res.body.scimType).toBeUndefined();
        expect(Number(res.headers["retry-after"])).toBeGreaterThanOrEqual(1);
      }
    }
    expect(statuses).toContain(429);
    expect(statuses.filter((s) => s !== 204 && s !== 429)).toEqual([]);
    // The other directory is still served.
    await quiet.scim.get(`/Users/${quietUser}`).expect(200);
  });

  it("lets a directory alone send the dearest requests back to back", async () => {
    const b = (bridge = await createTestBridge({ env: { SCIM_LOOP_MS_PER_SECOND: "1" } }));
    const user = (await b.scim.post("/Users", { userName: "alone@share.example" }).expect(201)).body.id as string;
    for (let i = 0; i < 5; i++) await b.scim.patch(`/Users/${user}`, manyOps).expect(204);
  });
});

/** Starts a request whose headers go at once and whose body only on `req.end(body)`. */
function held(b: TestBridge, method: string, path: string, length: number) {
  const req: ClientRequest = httpRequest(new URL(`${b.origin}${b.basePath}${path}`), {
    method,
    agent: false,
    headers: { Authorization: `Bearer ${b.token}`, "Content-Type": "application/scim+json", "Content-Length": length },
  });
  const answer = new Promise<{ status: number; retryAfter?: string; body: string }>((resolve, reject) => {
    req.on("response", (res: IncomingMessage) => {
      let text = "";
      res.setEncoding("utf8");
      res.on("data", (c: string) => (text += c));
      res.on("end", () =>
        resolve({ status: res.statusCode!, retryAfter: res.headers["retry-after"] as string | undefined, body: text }),
      );
    });
    req.on("error", reject);
  });
  req.flushHeaders();
  return { req, answer };
}

describe("a SCIM request's time budget", () => {
  it("answers a request still waiting for its directory's turn 503 without running it, and one whose body came too late the same", async () => {
    const b = (bridge = await createTestBridge({
      env: { SCIM_REQUEST_BUDGET_MS: "300" },
      scimRateLimit: { ratePerSecond: 10_000, burst: 10_000, concurrency: 1, shedWhenBehind: false },
    }));
    const first = JSON.stringify({ userName: "first@budget.example" });
    const second = JSON.stringify({ userName: "second@budget.example" });
    // The first holds the directory's one slot: its body is not sent yet.
    const holder = held(b, "POST", "/Users", Buffer.byteLength(first));
    await new Promise((r) => setTimeout(r, 50));
    const waiter = held(b, "POST", "/Users", Buffer.byteLength(second));
    waiter.req.end(second);
    const waited = await waiter.answer;
    expect(waited.status).toBe(503);
    expect(Number(waited.retryAfter)).toBeGreaterThanOrEqual(1);
    expect(JSON.parse(waited.body)).toMatchObject({
      schemas: ["urn:ietf:params:scim:api:messages:2.0:Error"],
      status: "503",
      detail: expect.stringMatching(/within its 0.3 s budget and was not applied/),
    });
    expect(JSON.parse(waited.body).scimType).toBeUndefined();
    // The holder's body arrives after its own budget is spent: not applied either.
    holder.req.end(first);
    expect((await holder.answer).status).toBe(503);
    const found = await b.scim.get(
      `/Users?filter=${encodeURIComponent('userName sw "first@" or userName sw "second@"')}`,
    );
    expect(found.body.totalResults).toBe(0);
    // The directory is served again.
    await b.scim.post("/Users", JSON.parse(second)).expect(201);
  });

  it("rolls back a write that ran past its request's deadline, and commits one within it", async () => {
    const b = (bridge = await createTestBridge());
    b.sqlite.exec("CREATE TABLE budget_probe (x INTEGER)");
    const writes = meteredWrites(createWriteQueue(b.store));
    const meter = (ms: number): LoopMeter => ({ ms: 0, deadline: performance.now() + ms, budgetMs: ms });
    const late = meter(20);
    const attempt = metered(late, () =>
      writes.run(
        (function* () {
          yield* exec("INSERT INTO budget_probe VALUES (1)");
          while (performance.now() <= late.deadline); // the write itself outlasts the budget
        })(),
      ),
    );
    const error = await attempt.then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(isBridgeError(error) && error.status).toBe(503);
    expect(isBridgeError(error) && error.retryAfter).toBe(1);
    expect(b.sqlite.prepare("SELECT count(*) AS n FROM budget_probe").get()).toEqual({ n: 0 });
    // A request already past its deadline when its write's turn comes does not run it at all.
    const expired = { ms: 0, deadline: performance.now() - 1, budgetMs: 1 };
    let ran = false;
    await expect(
      metered(expired, () =>
        writes.run(
          (function* () {
            ran = true;
            yield* exec("SELECT 1");
          })(),
        ),
      ),
    ).rejects.toMatchObject({ kind: "unavailable" });
    expect(ran).toBe(false);
    const timely = meter(60_000);
    await metered(timely, () => writes.run(exec("INSERT INTO budget_probe VALUES (2)")));
    expect(b.sqlite.prepare("SELECT x FROM budget_probe").all()).toEqual([{ x: 2 }]);
    // The write's time was charged to its request.
    expect(timely.ms).toBeGreaterThan(0);
  });
});

describe("their configuration", () => {
  it("defaults to a quarter of the event loop per directory and 5 s per request, and takes other values or 0", () => {
    expect(loadConfig({}).scimLoopBudget).toEqual({ msPerSecond: 250, burstMs: 1000 });
    expect(loadConfig({}).scimRequestBudgetMs).toBe(5000);
    expect(loadConfig({ SCIM_LOOP_MS_PER_SECOND: "100" }).scimLoopBudget).toEqual({ msPerSecond: 100, burstMs: 400 });
    expect(loadConfig({ SCIM_LOOP_MS_PER_SECOND: "0" }).scimLoopBudget).toBeUndefined();
    expect(loadConfig({ SCIM_REQUEST_BUDGET_MS: "2000" }).scimRequestBudgetMs).toBe(2000);
  });

  it("refuses settings that cannot work, naming the variable", () => {
    expect(() => loadConfig({ SCIM_LOOP_MS_PER_SECOND: "2000" })).toThrow(/SCIM_LOOP_MS_PER_SECOND/);
    expect(() => loadConfig({ SCIM_LOOP_MS_PER_SECOND: "a lot" })).toThrow(/SCIM_LOOP_MS_PER_SECOND/);
    expect(() => loadConfig({ SCIM_REQUEST_BUDGET_MS: "5" })).toThrow(/SCIM_REQUEST_BUDGET_MS/);
  });
});
