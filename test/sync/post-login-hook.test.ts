/**
 * POST /hooks/auth0/post-login over HTTP (docs/design.md, "Data flow"): the signature is checked, the
 * decision comes from directory truth and holds, and answering it costs no Auth0 call.
 */
import { randomBytes } from "node:crypto";
import type { RequestHandler } from "express";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { placeHold } from "../../src/directory/holds.js";
import { changeBy } from "../../src/directory/write-context.js";
import { saveMappingVersion } from "../../src/directory/mappings.js";
import { postLoginHookRouter, signPostLoginBody } from "../../src/http/post-login-hook.js";
import { parseMapping } from "../../src/mapping/index.js";
import { createTestBridge, type TestBridge } from "../helpers/scim.js";
import { startSyncHarness, type SyncHarness } from "../helpers/sync-harness.js";
import { linkedAuth0Id, slugOf, sqlValue } from "../helpers/sync-store.js";

const HOOK = "/hooks/auth0/post-login";
const DB_CONNECTION = "Username-Password-Authentication";
const ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
const operator = { type: "operator" as const, id: "test" };

let bridge: TestBridge;
let sync: SyncHarness;
let secret: string;
let organizationSlug: string;

beforeEach(async () => {
  secret = randomBytes(32).toString("hex");
  // The router needs the bridge's database, which exists only once the bridge does.
  let hook: RequestHandler | undefined;
  bridge = await createTestBridge({
    extraRouters: [{ path: HOOK, router: (req, res, next) => hook!(req, res, next) }],
  });
  hook = postLoginHookRouter(bridge.store, secret);
  organizationSlug = await slugOf(bridge.store, bridge.organizationId);
  await bridge.store.write(
    saveMappingVersion(
      bridge.organizationId,
      parseMapping({
        connection: { name: DB_CONNECTION, type: "database" },
        userModel: "isolated",
        profile: { email: "userName" },
        app_metadata: { keys: { department: `${ENTERPRISE}:department`, cost_center: `${ENTERPRISE}:costCenter` } },
        roles: { rules: [{ when: { group: "Eng-Admins" }, grant: ["admin"] }], default: ["member"] },
      }),
      { actor: operator },
    ),
  );
  sync = await startSyncHarness(bridge.store);
});
afterEach(async () => {
  await sync.close();
  await bridge.close();
});

const slug = () => organizationSlug;
/** The Auth0 Organization the bridge created for the organization (Auth0 sends its id in the event). */
const auth0OrgId = () => sync.emulator.state.organizationByName(organizationSlug)?.id;
const linkedId = (userId: string) => linkedAuth0Id(bridge.store, userId);

/** A provisioned, synced user: Auth0 has created it, and the bridge knows its Auth0 id. */
async function syncedUser(userName: string, department = "Research"): Promise<{ id: string; auth0UserId: string }> {
  const res = await bridge.scim
    .post("/Users", {
      schemas: ["urn:ietf:params:scim:schemas:core:2.0:User", ENTERPRISE],
      userName,
      active: true,
      [ENTERPRISE]: { department },
    })
    .expect(201);
  await sync.drain();
  const auth0UserId = await linkedId(res.body.id as string);
  expect(auth0UserId, "the worker linked the Auth0 user").toBeTruthy();
  return { id: res.body.id as string, auth0UserId: auth0UserId! };
}

function loginEvent(
  user: { user_id: string; email?: string },
  connection = DB_CONNECTION,
  organization: object | null = { id: auth0OrgId(), name: slug() },
) {
  return {
    user: { ...user, email_verified: true, blocked: false, app_metadata: {}, identities: [] },
    ...(organization ? { organization } : {}),
    connection: { name: connection, strategy: "auth0" },
    transaction: { id: "tx_test" },
  };
}

/** Posts a body signed as the Action signs it (override the header to test refusals). */
function postHook(body: unknown, signature?: string | null) {
  const raw = typeof body === "string" ? body : JSON.stringify(body);
  const req = bridge.http.post(HOOK).set("content-type", "application/json");
  const header = signature === undefined ? signPostLoginBody(secret, raw) : signature;
  if (header !== null) req.set("x-scim-bridge-signature", header);
  return req.send(raw);
}

/** The hook's answer, asserting it made no Auth0 call. */
async function decide(body: unknown) {
  sync.emulator.clearCalls();
  const res = await postHook(body).expect(200);
  expect(sync.emulator.calls(), "the hook must not call Auth0").toEqual([]);
  return res.body as { decision: string; reason?: string; roles?: string[]; app_metadata?: Record<string, unknown> };
}

const patchActive = (active: boolean) => ({
  schemas: ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
  Operations: [{ op: "replace", path: "active", value: active }],
});

describe("signature", () => {
  const body = () => JSON.stringify(loginEvent({ user_id: "auth0|nobody", email: "nobody@example.com" }));
  const now = () => Math.floor(Date.now() / 1000);

  it.each([
    ["missing", () => null],
    ["signed with another secret", () => signPostLoginBody("not-the-secret", body())],
    ["stale (older than 300 s)", () => signPostLoginBody(secret, body(), now() - 301)],
    // Well past the 300 s tolerance: at +301 a request that took over a second under load landed inside it.
    ["from the future", () => signPostLoginBody(secret, body(), now() + 330)],
    ["for another body", () => signPostLoginBody(secret, body().replace("nobody@", "somebody@"))],
    ["garbled", () => "t=abc,v1=zz"],
  ])("refuses a %s signature with 401 in the admin error shape", async (_name, header) => {
    const res = await postHook(body(), header()).expect(401);
    expect(res.body).toMatchObject({
      error: "unauthorized",
      message: expect.stringContaining("x-scim-bridge-signature"),
    });
    expect(typeof res.body.requestId).toBe("string");
  });

  it("accepts a signature inside the allowed skew", async () => {
    const raw = body();
    await postHook(raw, signPostLoginBody(secret, raw, now() - 200)).expect(200);
  });
});

describe("malformed bodies", () => {
  it.each([
    ["not JSON", "{user:"],
    ["JSON without user.user_id", JSON.stringify({ user: { email: "a@b.c" } })],
    ["a JSON array", "[]"],
  ])("answers 400 for %s, even when signed", async (_name, raw) => {
    const res = await postHook(raw).expect(400);
    expect(res.body).toMatchObject({ error: "invalidSyntax", requestId: expect.any(String) });
  });
});

describe("decisions", () => {
  it("allows a provisioned user with the mapping's roles and owned app_metadata, without calling Auth0", async () => {
    const user = await syncedUser("ada@example.com");
    const group = await bridge.scim
      .post("/Groups", {
        schemas: ["urn:ietf:params:scim:schemas:core:2.0:Group"],
        displayName: "Eng-Admins",
        members: [{ value: user.id }],
      })
      .expect(201);
    expect(group.status).toBe(201);
    await sync.drain();
    const answer = await decide(loginEvent({ user_id: user.auth0UserId, email: "ada@example.com" }));
    expect(answer).toEqual({ decision: "allow", roles: ["admin"], app_metadata: { department: "Research" } });
    // By the organization's name alone (the Action always sends both; the name is the slug).
    const byName = await decide(loginEvent({ user_id: user.auth0UserId }, DB_CONNECTION, { name: slug() }));
    expect(byName.decision).toBe("allow");
  });

  it("denies a deactivated user with a reason the user can understand, before Auth0 has blocked it", async () => {
    const user = await syncedUser("grace@example.com");
    await sync.engine.worker.stop();
    await bridge.scim.patch(`/Users/${user.id}`, patchActive(false)).expect(204);
    const answer = await decide(loginEvent({ user_id: user.auth0UserId, email: "grace@example.com" }));
    expect(answer.decision).toBe("deny");
    expect(answer.reason).toMatch(/deactivated/i);
    expect(answer.roles).toBeUndefined();
  });

  it("denies a held user, and the hold beats a later active:true from the IdP", async () => {
    const user = await syncedUser("held@example.com");
    await sync.engine.worker.stop();
    await bridge.store.write(
      placeHold(
        { organizationId: bridge.organizationId, userId: user.id, reason: "security review" },
        changeBy(operator),
      ),
    );
    await bridge.scim.patch(`/Users/${user.id}`, patchActive(true)).expect(204);
    const answer = await decide(loginEvent({ user_id: user.auth0UserId, email: "held@example.com" }));
    expect(answer.decision).toBe("deny");
    expect(answer.reason).toMatch(/blocked by your organization's administrator/i);
  });

  it("denies a user the IdP deleted, whether Auth0 still has it or not", async () => {
    const user = await syncedUser("leaver@example.com");
    await sync.engine.worker.stop();
    await bridge.scim.delete(`/Users/${user.id}`).expect(204);
    const answer = await decide(loginEvent({ user_id: user.auth0UserId, email: "leaver@example.com" }));
    expect(answer.decision).toBe("deny");
    expect(answer.reason).toMatch(/removed/i);
    // And once Auth0 has caught up (the Auth0 user is deleted), still a denial.
    sync.engine.worker.start();
    await sync.drain();
    expect(sync.emulator.state.users.has(user.auth0UserId)).toBe(false);
    expect((await decide(loginEvent({ user_id: user.auth0UserId, email: "leaver@example.com" }))).decision).toBe(
      "deny",
    );
  });

  it("denies an unknown user in an organization the bridge manages", async () => {
    await syncedUser("known@example.com");
    const answer = await decide(loginEvent({ user_id: "auth0|stranger", email: "stranger@example.com" }));
    expect(answer.decision).toBe("deny");
    expect(answer.reason).toMatch(/not provisioned/i);
  });

  it("allows logins to organizations the bridge does not manage, and logins without an organization", async () => {
    await syncedUser("visitor@example.com");
    const other = await decide(
      loginEvent({ user_id: "auth0|stranger", email: "visitor@example.com" }, DB_CONNECTION, {
        id: "org_notours",
        name: "someone-else",
      }),
    );
    expect(other).toEqual({ decision: "allow" });
    const none = await decide(
      loginEvent({ user_id: "auth0|stranger", email: "visitor@example.com" }, DB_CONNECTION, null),
    );
    expect(none).toEqual({ decision: "allow" });
  });

  it("denies another Auth0 account that only shares the email of a linked user", async () => {
    const user = await syncedUser("victim@example.com");
    const answer = await decide(
      loginEvent({ user_id: "google-oauth2|123", email: "victim@example.com" }, "google-oauth2"),
    );
    expect(answer.decision).toBe("deny");
    expect(await linkedId(user.id)).toBe(user.auth0UserId);
  });

  it("links a not-yet-linked user only through the mapping's connection", async () => {
    await sync.engine.worker.stop();
    const res = await bridge.scim
      .post("/Users", {
        schemas: ["urn:ietf:params:scim:schemas:core:2.0:User"],
        userName: "new@example.com",
        active: true,
      })
      .expect(201);
    const userId = res.body.id as string;
    const org = { name: slug() };
    const elsewhere = await decide(
      loginEvent({ user_id: "google-oauth2|999", email: "new@example.com" }, "google-oauth2", org),
    );
    expect(elsewhere.decision).toBe("deny");
    expect(await linkedId(userId)).toBeNull();

    const own = await decide(loginEvent({ user_id: "auth0|new", email: "NEW@example.com" }, DB_CONNECTION, org));
    expect(own).toMatchObject({ decision: "allow", roles: ["member"] });
    expect(await linkedId(userId)).toBe("auth0|new");
    const queued = await sqlValue<number>(
      bridge.store,
      "select count(*) from jobs where subject_id = ? and state = 'pending'",
      [userId],
    );
    expect(queued, "the link enqueues a reconcile").toBe(1);
  });
});
