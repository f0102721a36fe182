import { EventEmitter } from "node:events";
import { request as httpRequest, type ClientRequest, type IncomingMessage } from "node:http";
import { eq } from "drizzle-orm";
import type { Request, RequestHandler, Response } from "express";
import { afterEach, describe, expect, it } from "vitest";
import { organizations } from "../../db/schema.js";
import { postLoginHookRouter, signPostLoginBody } from "../../src/http/post-login-hook.js";
import { sqliteStore } from "../../src/directory/sql.js";
import { connectionOf } from "../../src/directory/statements.js";
import { concurrencyLimit, eventLoopLag } from "../../src/http/rate-limit.js";
import { scimLimits } from "../../src/scim/limits.js";
import { createTestBridge, type TestBridge } from "../helpers/scim.js";

/**
 * The per-directory concurrency limit: however many requests a directory sends at once, at most a
 * few of them are in the process, so another tenant's read and a login never queue behind a
 * directory's whole burst. Nothing is timed: the burst's requests are held in flight by sending
 * their bodies only when the test says so, and the assertions are counts and statuses.
 */
const secret = "concurrency-hook-secret";
const patchOp = (Operations: unknown[]) => ({ schemas: ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], Operations });
const burst = 30;

let bridge: TestBridge | undefined;
afterEach(async () => bridge?.close());

interface Held {
  req: ClientRequest;
  answer: Promise<{ status: number; retryAfter?: string; body: string }>;
}

/** Starts a PATCH whose headers are sent at once and whose body only on `req.end(body)`. */
function heldPatch(b: TestBridge, path: string, length: number): Held {
  const url = new URL(`${b.origin}${b.basePath}${path}`);
  const req = httpRequest(url, {
    method: "PATCH",
    agent: false,
    headers: { Authorization: `Bearer ${b.token}`, "Content-Type": "application/scim+json", "Content-Length": length },
  });
  const answer = new Promise<Held extends { answer: Promise<infer A> } ? A : never>((resolve, reject) => {
    req.on("response", (res: IncomingMessage) => {
      let text = "";
      res.setEncoding("utf8");
      res.on("data", (c: string) => (text += c));
      res.on("end", () =>
        resolve({ status: res.statusCode!, retryAfter: res.headers["retry-after"] as string | undefined, body: text }),
      );
    });
    // A request refused before its body was read may see its socket closed while still sending.
    req.on("error", reject);
  });
  req.flushHeaders();
  return { req, answer };
}

async function setUp(concurrency: number) {
  let hook: RequestHandler | undefined;
  const b = (bridge = await createTestBridge({
    // Shedding under load is tested on its own below: here the limit must not depend on the machine.
    scimRateLimit: { ratePerSecond: 10_000, burst: 10_000, concurrency, shedWhenBehind: false },
    // Nor on the request time budget: a loaded machine may keep the held burst waiting past it.
    env: { SCIM_REQUEST_BUDGET_MS: "600000" },
    extraRouters: [{ path: "/hooks/auth0/post-login", router: (req, res, next) => hook!(req, res, next) }],
  }));
  hook = postLoginHookRouter(sqliteStore(connectionOf(b.db)), secret);
  const slug = b.db
    .select({ slug: organizations.slug })
    .from(organizations)
    .where(eq(organizations.id, b.organizationId))
    .get()!.slug;
  const noisyUser = (await b.scim.post("/Users", { userName: "noisy@fair.example" }).expect(201)).body.id as string;
  const other = await b.newDirectory();
  const quietUser = (await other.scim.post("/Users", { userName: "quiet@fair.example" }).expect(201)).body.id as string;
  const hookBody = JSON.stringify({
    user: { user_id: "auth0|nobody", email: "quiet@fair.example" },
    organization: { name: slug },
  });
  const login = () =>
    b.http
      .post("/hooks/auth0/post-login")
      .set("Content-Type", "application/json")
      .set("x-scim-bridge-signature", signPostLoginBody(secret, hookBody))
      .send(hookBody);
  return { b, noisyUser, neighbour: () => other.scim.get(`/Users/${quietUser}`), login };
}

// The dearest PATCH the limits allow: adding and removing 50 emails, as many values as a PATCH may carry.
const emails = Array.from({ length: 50 }, (_, i) => ({ value: `churn${i}@fair.example` }));
const dearest = JSON.stringify(
  patchOp(
    Array.from({ length: scimLimits.maxPatchValues / emails.length }, (_, i) => ({
      op: i % 2 === 0 ? "add" : "remove",
      path: "emails",
      value: emails,
    })),
  ),
);

describe("a directory's burst of the dearest writes", () => {
  it("admits exactly the limit, makes the rest wait their turn, and answers the login and the other tenant meanwhile", async () => {
    const { b, noisyUser, neighbour, login } = await setUp(2);
    const held = Array.from({ length: burst }, () => heldPatch(b, `/Users/${noisyUser}`, Buffer.byteLength(dearest)));
    const answered: { status: number }[] = [];
    for (const h of held)
      void h.answer.then(
        (a) => answered.push(a),
        () => answered.push({ status: 0 }),
      );
    // While the burst is held open, the login and the other tenant are answered, and none of the burst is refused.
    expect((await login()).status).toBe(200);
    expect((await neighbour()).status).toBe(200);
    expect(answered).toEqual([]);
    for (const h of held) h.req.end(dearest);
    const all = await Promise.all(held.map((h) => h.answer));
    expect(all.map((a) => a.status)).toEqual(held.map(() => 204));
    // The slots are free again: the next request runs.
    await b.scim.patch(`/Users/${noisyUser}`, JSON.parse(dearest)).expect(204);
  });

  it("without the limit, every request of the burst is admitted and waits in the process (what the limit prevents)", async () => {
    const { b, noisyUser } = await setUp(1_000);
    const held = Array.from({ length: burst }, () => heldPatch(b, `/Users/${noisyUser}`, Buffer.byteLength(dearest)));
    for (const h of held) h.req.end(dearest);
    const all = await Promise.all(held.map((h) => h.answer));
    expect(all.every((a) => a.status === 204)).toBe(true);
  });

  it("never refuses a directory that sends its requests one after another", async () => {
    bridge = await createTestBridge({
      scimRateLimit: { ratePerSecond: 10_000, burst: 10_000, concurrency: 1, shedWhenBehind: false },
    });
    for (let i = 0; i < 20; i++) await bridge.scim.post("/Users", { userName: `one${i}@fair.example` }).expect(201);
  });
});

describe("while the event loop is behind", () => {
  it("holds every directory to one request at a time, and lifts that when it has caught up", () => {
    let behind = false;
    const limit = concurrencyLimit(
      4,
      (req) => (req as unknown as { key: string }).key,
      () => behind,
      2,
    );
    const admit = (key: string) => {
      const res = new EventEmitter();
      let outcome: unknown = "waiting";
      limit({ key } as unknown as Request, res as unknown as Response, (err?: unknown) => (outcome = err));
      return {
        outcome: () => outcome as { kind?: string; message?: string } | undefined | "waiting",
        finish: () => res.emit("finish"),
      };
    };
    const a1 = admit("a");
    expect(a1.outcome()).toBeUndefined();
    behind = true;
    const a2 = admit("a");
    expect(a2.outcome()).toBe("waiting");
    // Another directory still gets its one.
    expect(admit("b").outcome()).toBeUndefined();
    const a3 = admit("a");
    // Beyond the waiting room: refused with a reason.
    expect(admit("a").outcome()).toMatchObject({
      kind: "rateLimited",
      message: expect.stringMatching(/one request at a time per directory/),
    });
    a1.finish();
    expect(a2.outcome()).toBeUndefined();
    expect(a3.outcome()).toBe("waiting");
    behind = false;
    a2.finish();
    expect(a3.outcome()).toBeUndefined();
    const more = [admit("a"), admit("a"), admit("a")];
    expect(more.map((m) => m.outcome())).toEqual([undefined, undefined, undefined]);
    expect(admit("a").outcome()).toBe("waiting");
    expect(admit("a").outcome()).toBe("waiting");
    expect(admit("a").outcome()).toMatchObject({ message: expect.stringMatching(/at most 4 at a time/) });
  });

  it("is told by a timer that fires late", async () => {
    const lag = eventLoopLag(20, 5, 10_000);
    try {
      await new Promise((r) => setTimeout(r, 30));
      const until = Date.now() + 100;
      while (Date.now() < until); // hold the event loop for 100 ms
      await new Promise((r) => setTimeout(r, 30));
      expect(lag.overloaded()).toBe(true);
    } finally {
      lag.stop();
    }
  });
});
