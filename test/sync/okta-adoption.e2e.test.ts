/**
 * A real tenant's rules, end to end (real worker, gateway, node-auth0 and the strict emulator), with
 * an Okta connection that syncs root attributes at each login (Auth0's default):
 * - a user who signed in before the IdP pushed them, with a mixed-case email, is linked at push
 *   time (users-by-email is exact and case-sensitive), gets its roles, stays synced through a
 *   profile change (no PATCH of root attributes or email, which Auth0 refuses), and is blocked with
 *   its sessions revoked on deactivation;
 * - the same on a tenant that adopts the bridge with 1,000 live users and sessions, with the
 *   deactivation sent while the adoption backlog runs;
 * - a user who never signed in waits for the first login as a state of its own, not a failure.
 */
import { randomBytes } from "node:crypto";
import type { RequestHandler } from "express";
import { afterEach, describe, expect, it } from "vitest";
import { saveMappingVersion } from "../../src/directory/mappings.js";
import { postLoginHookRouter } from "../../src/http/post-login-hook.js";
import { parseMapping } from "../../src/mapping/index.js";
import { createTestBridge, type TestBridge } from "../helpers/scim.js";
import { startSyncHarness, type SyncHarness } from "../helpers/sync-harness.js";
import { linkedAuth0Id, slugOf as organizationSlug, sqlExec, sqlValue } from "../helpers/sync-store.js";

const CONNECTION = "acme-okta";
const ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
const SYNC = "urn:ietf:params:scim:schemas:extension:scim-bridge:1.0:User";
const deactivate = {
  schemas: ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
  Operations: [{ op: "replace", path: "active", value: false }],
};

let bridge: TestBridge | undefined;
let sync: SyncHarness | undefined;
let hookSecret = "";

afterEach(async () => {
  await sync?.close();
  await bridge?.close();
  sync = bridge = undefined;
});

async function start(
  options: { bridgeRateScale?: number; concurrency?: number } = {},
): Promise<{ bridge: TestBridge; sync: SyncHarness }> {
  hookSecret = randomBytes(32).toString("hex");
  let hook: RequestHandler | undefined;
  const b = await createTestBridge({
    extraRouters: [{ path: "/hooks/auth0/post-login", router: (req, res, next) => hook!(req, res, next) }],
  });
  hook = postLoginHookRouter(b.store, hookSecret);
  await sqlExec(b.store, "update organizations set connection = ? where id = ?", [CONNECTION, b.organizationId]);
  await b.store.write(
    saveMappingVersion(
      b.organizationId,
      parseMapping({
        connection: { name: CONNECTION, type: "enterprise" },
        userModel: "isolated",
        // given_name is mapped, but the connection syncs it from Okta at each login: never sent.
        profile: { email: "userName", given_name: "name.givenName" },
        app_metadata: { keys: { department: `${ENTERPRISE}:department` } },
        roles: { rules: [{ when: { group: "Eng-Admins" }, grant: ["admin"] }], default: ["member"] },
      }),
      { actor: { type: "operator", id: "test" } },
    ),
  );
  // The worker runs in a second bridge on the same database, as a second `serve` instance would.
  const s = await startSyncHarness(b.store, {
    connections: [{ name: CONNECTION, strategy: "okta" }],
    postLoginHook: { url: `${b.origin}/hooks/auth0/post-login`, secret: hookSecret },
    // Session and refresh-token deletion show after a delay, as on Auth0.
    asyncDelayMs: 200,
    ...options,
  });
  bridge = b;
  sync = s;
  return { bridge: b, sync: s };
}

const slugOf = (b: TestBridge) => organizationSlug(b.store, b.organizationId);
const linkedId = (b: TestBridge, userId: string) => linkedAuth0Id(b.store, userId);

function roleNames(s: SyncHarness, orgId: string, userId: string): string[] {
  return s.emulator.state
    .memberRolesOf(orgId, userId)
    .map((id) => s.emulator.state.roles.get(id)!.name)
    .sort();
}

const scimUser = (userName: string, givenName: string, department: string, active = true) => ({
  schemas: ["urn:ietf:params:scim:schemas:core:2.0:User", ENTERPRISE],
  userName,
  name: { givenName },
  emails: [{ value: userName, primary: true }],
  active,
  [ENTERPRISE]: { department },
});

/** The Auth0 Organization exists once the bridge has synced anything for the organization. */
async function ensureOrganization(b: TestBridge, s: SyncHarness): Promise<string> {
  await b.scim.post("/Users", scimUser("first.admin@acme.test", "First", "IT")).expect(201);
  await s.drain();
  return s.emulator.state.organizationByName(await slugOf(b))!.id;
}

/** Signs in through Okta before the bridge knows the user (no post-login hook installed yet). */
async function signInUnchecked(s: SyncHarness, email: string, orgId: string): Promise<string> {
  const res = await s.emulator.login({ connection: CONNECTION, email, organization: orgId });
  expect(res.decision).toBe("allow");
  if (res.decision !== "allow") throw new Error("login denied");
  return res.user.user_id;
}

async function syncState(b: TestBridge, id: string): Promise<Record<string, unknown>> {
  const res = await b.scim.get(`/Users/${id}?attributes=${SYNC}`).expect(200);
  return res.body[SYNC] as Record<string, unknown>;
}

/** Polls until the Auth0 user is blocked and holds no session or refresh token; returns the time taken. */
async function waitCutOff(s: SyncHarness, auth0UserId: string, sentAt: number, limitMs = 10_000): Promise<number> {
  for (;;) {
    if (s.emulator.state.users.get(auth0UserId)?.blocked === true && !s.emulator.state.hasActiveAccess(auth0UserId))
      return Date.now() - sentAt;
    if (Date.now() - sentAt > limitMs) throw new Error(`not blocked and signed out within ${limitMs} ms`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** Calls Auth0 refused because of connection rules (what a real tenant answers 400 to). */
const refusedCalls = (s: SyncHarness) => s.emulator.calls().filter((c) => c.status === 400 || c.status === 403);

describe("an Okta connection on a tenant with users who already signed in", () => {
  it("links a user who signed in before the push (mixed-case email) at push time, keeps it synced through a profile change, and cuts it off on deactivation", async () => {
    const { bridge: b, sync: s } = await start();
    const orgId = await ensureOrganization(b, s);
    s.emulator.setPostLoginHook(undefined);
    const auth0Id = await signInUnchecked(s, "Ann.Lee@Acme.test", orgId);
    expect(s.emulator.state.users.get(auth0Id)!.email, "Auth0 keeps the IdP's casing").toBe("Ann.Lee@Acme.test");
    expect(s.emulator.state.hasActiveAccess(auth0Id)).toBe(true);
    s.emulator.setPostLoginHook({ url: `${b.origin}/hooks/auth0/post-login`, secret: hookSecret });

    const pushed = await b.scim.post("/Users", scimUser("Ann.Lee@Acme.test", "Ann", "Research")).expect(201);
    const id = pushed.body.id as string;
    await b.scim
      .post("/Groups", {
        schemas: ["urn:ietf:params:scim:schemas:core:2.0:Group"],
        displayName: "Eng-Admins",
        members: [{ value: id }],
      })
      .expect(201);
    await s.drain();

    // Linked at push time, without waiting for a login.
    expect(await linkedId(b, id)).toBe(auth0Id);
    expect(roleNames(s, orgId, auth0Id)).toEqual(["admin"]);
    expect(s.emulator.state.users.get(auth0Id)!.app_metadata).toMatchObject({ department: "Research" });
    expect(await syncState(b, id)).toMatchObject({
      status: "synced",
      auth0UserId: auth0Id,
      member: true,
      blocked: false,
    });
    expect(s.emulator.state.users.size, "linked, never created").toBe(1);

    // A profile change: given_name is Okta's to write; the department lands in app_metadata.
    s.emulator.clearCalls();
    await b.scim
      .patch(`/Users/${id}`, {
        schemas: ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        Operations: [
          { op: "replace", path: "name.givenName", value: "Annie" },
          { op: "replace", path: `${ENTERPRISE}:department`, value: "Platform" },
        ],
      })
      .expect(204);
    await s.drain();
    expect(s.emulator.state.users.get(auth0Id)!.app_metadata).toMatchObject({ department: "Platform" });
    const patches = s.emulator.calls().filter((c) => c.method === "PATCH" && c.path.startsWith("/api/v2/users/"));
    expect(patches.length).toBeGreaterThan(0);
    for (const p of patches) expect(Object.keys(p.body as object).sort()).toEqual(["app_metadata"]);
    expect(refusedCalls(s)).toEqual([]);
    expect(await syncState(b, id)).toMatchObject({ status: "synced" });
    expect((await syncState(b, id)).lastError).toBeUndefined();

    // Deactivation: blocked, sessions and refresh tokens revoked.
    const sent = Date.now();
    await b.scim.patch(`/Users/${id}`, deactivate).expect(204);
    const latency = await waitCutOff(s, auth0Id, sent);
    console.log(`deactivation → blocked and signed out: ${latency} ms`);
    const denied = await s.emulator.login({ connection: CONNECTION, email: "Ann.Lee@Acme.test", organization: orgId });
    expect(denied.decision).toBe("deny");
    await s.drain();
    expect(refusedCalls(s)).toEqual([]);
  });

  it("shows a pushed user who never signed in as awaiting the first login, never failed, and links it at that login", async () => {
    const { bridge: b, sync: s } = await start();
    const orgId = await ensureOrganization(b, s);
    const pushed = await b.scim.post("/Users", scimUser("Bo.Chen@Acme.test", "Bo", "Sales")).expect(201);
    const id = pushed.body.id as string;
    await s.drain();
    expect(await syncState(b, id)).toMatchObject({ status: "awaitingFirstLogin" });
    expect((await syncState(b, id)).lastError).toBeUndefined();
    expect(await sqlValue(b.store, "select state from jobs where subject_id = ? order by id desc", [id])).toBe("done");

    const first = await s.emulator.login({ connection: CONNECTION, email: "Bo.Chen@Acme.test", organization: orgId });
    expect(first.decision).toBe("allow");
    await s.drain();
    expect(await syncState(b, id)).toMatchObject({ status: "synced" });
  });

  it("adopts a tenant with 1,000 live users and sessions: links them at push time and cuts one off during the backlog", async () => {
    const { bridge: b, sync: s } = await start({ bridgeRateScale: 20 });
    const orgId = await ensureOrganization(b, s);
    s.emulator.setPostLoginHook(undefined);
    const emails = Array.from({ length: 1_000 }, (_, i) => `User${i}.Live@Acme.test`);
    const auth0Ids = new Map<string, string>();
    for (const email of emails) auth0Ids.set(email, await signInUnchecked(s, email, orgId));
    s.emulator.setPostLoginHook({ url: `${b.origin}/hooks/auth0/post-login`, secret: hookSecret });

    // The IdP's initial push, a few requests at a time as Okta sends it; the worker catches up after.
    await s.engine.worker.stop();
    const ids = new Map<string, string>();
    for (let i = 0; i < emails.length; i += 10) {
      const batch = emails.slice(i, i + 10);
      const res = await Promise.all(batch.map((e) => b.scim.post("/Users", scimUser(e, "Live", "Ops")).expect(201)));
      res.forEach((r, j) => ids.set(batch[j]!, r.body.id as string));
    }
    // Deactivated while the adoption backlog still runs.
    const leaver = emails[777]!;
    const sent = Date.now();
    await b.scim.patch(`/Users/${ids.get(leaver)}`, deactivate).expect(204);
    s.engine.worker.start();
    const latency = await waitCutOff(s, auth0Ids.get(leaver)!, sent);
    const backlog = (await sqlValue<number>(
      b.store,
      "select count(*) from jobs where state in ('pending', 'running') and kind = 'user'",
    ))!;
    console.log(
      `deactivation during a 1,000-user adoption → blocked and signed out: ${latency} ms (${backlog} user jobs still queued)`,
    );
    expect(backlog, "the deactivation did not wait for the adoption backlog").toBeGreaterThan(500);

    await s.drain(240_000);
    for (const email of emails) {
      const id = ids.get(email)!;
      expect(await linkedId(b, id), email).toBe(auth0Ids.get(email));
    }
    for (const email of [emails[0]!, emails[500]!, emails[999]!]) {
      expect(roleNames(s, orgId, auth0Ids.get(email)!)).toEqual(["member"]);
      expect(await syncState(b, ids.get(email)!)).toMatchObject({ status: "synced", blocked: false });
      expect(s.emulator.state.hasActiveAccess(auth0Ids.get(email)!), "other users keep their sessions").toBe(true);
    }
    expect(s.emulator.state.users.get(auth0Ids.get(leaver)!)!.blocked).toBe(true);
    expect(s.emulator.state.users.size, "nobody created twice").toBe(1_000);
    expect(refusedCalls(s)).toEqual([]);
    const failed = await sqlValue(b.store, "select count(*) from user_sync where last_error is not null");
    expect(failed).toBe(0);
  }, 600_000);
});
