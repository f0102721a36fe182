/**
 * Holds (docs/design.md, "Concepts"), end to end through the admin API, the SCIM API, the sync engine and the Auth0
 * emulator: a customer admin's block beats a later `active: true` from the IdP; releasing it restores
 * what the IdP says; every step leaves its audit entry with the actor and the request id.
 */
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { auth0User, patchActive, scimUser, startAdminBridge, type AdminBridge } from "./bridge.js";

let t: AdminBridge;
beforeEach(async () => {
  t = await startAdminBridge();
});
afterEach(async () => {
  await t.close();
});

async function provision(email: string): Promise<string> {
  const res = await t.bridge.scim.post("/Users", scimUser(email)).expect(201);
  await t.sync.drain();
  expect(auth0User(t.sync, email).blocked ?? false).toBe(false);
  return res.body.id as string;
}

/** Management API calls that unblocked a user (the only user of these tests' tenant). */
const unblockCalls = () =>
  t.sync.emulator
    .calls()
    .filter(
      (c) =>
        c.method === "PATCH" &&
        c.path.startsWith("/api/v2/users/") &&
        (c.body as { blocked?: unknown } | undefined)?.blocked === false,
    );

const usersPath = () => `/organizations/${t.bridge.organizationId}/users`;

async function listed(userId: string) {
  const res = await t.orgAdmin("get", `${usersPath()}/${userId}`).expect(200);
  return res.body.user as {
    held: boolean;
    active: boolean;
    sync: { auth0UserId: string | null; applied: { blocked: boolean | null } | null; pendingJob: unknown };
  };
}

async function auditOf(userId: string) {
  const res = await t
    .orgAdmin("get", `/organizations/${t.bridge.organizationId}/audit?targetId=${userId}&limit=50`)
    .expect(200);
  return (
    res.body.entries as {
      action: string;
      actor: { type: string; id: string };
      requestId: string | null;
      before: unknown;
      after: unknown;
    }[]
  ).reverse();
}

describe("holds", () => {
  it("a hold beats a later active:true from the IdP, and releasing it restores what the IdP says", async () => {
    const email = "grace@hold.example";
    const userId = await provision(email);
    const auth0Id = auth0User(t.sync, email).user_id;
    t.sync.emulator.clearCalls();

    const block = await t
      .orgAdmin("post", `${usersPath()}/${userId}/block`)
      .send({ reason: "laptop stolen" })
      .expect(201);
    await t.sync.drain();
    expect(auth0User(t.sync, email).blocked).toBe(true);
    expect(t.sync.emulator.state.hasActiveAccess(auth0Id)).toBe(false);
    expect(await listed(userId)).toMatchObject({
      held: true,
      active: true,
      sync: { auth0UserId: auth0Id, applied: { blocked: true }, pendingJob: null },
    });

    // The IdP turns the user off and on again: its later active:true must not undo the hold.
    await t.bridge.scim.patch(`/Users/${userId}`, patchActive(false)).expect(204);
    await t.bridge.scim.patch(`/Users/${userId}`, patchActive(true)).expect(204);
    await t.sync.drain();
    expect(auth0User(t.sync, email).blocked).toBe(true);
    expect(unblockCalls()).toEqual([]);
    expect(await listed(userId)).toMatchObject({ held: true, active: true, sync: { applied: { blocked: true } } });

    const release = await t
      .orgAdmin("post", `${usersPath()}/${userId}/unblock`)
      .send({ reason: "laptop found" })
      .expect(200);
    expect(release.body.released).toHaveLength(1);
    await t.sync.drain();
    // The IdP says active, so access comes back.
    expect(auth0User(t.sync, email).blocked).toBe(false);
    expect(unblockCalls()).toHaveLength(1);
    expect(await listed(userId)).toMatchObject({ held: false, active: true, sync: { applied: { blocked: false } } });

    const trail = await auditOf(userId);
    expect(trail.map((e) => `${e.actor.type} ${e.action}`)).toEqual([
      "directory user.create",
      "org_admin hold.place",
      "directory user.deactivate",
      "directory user.reactivate",
      "org_admin hold.release",
    ]);
    const placed = trail.find((e) => e.action === "hold.place")!;
    expect(placed.requestId).toBe(block.headers["x-request-id"]);
    expect(placed.after).toMatchObject({ held: true, reason: "laptop stolen" });
    const released = trail.find((e) => e.action === "hold.release")!;
    expect(released.requestId).toBe(release.headers["x-request-id"]);
    expect(released.before).toMatchObject({ held: true, holds: [{ reason: "laptop stolen" }] });
    expect(released.after).toEqual({ held: false, reason: "laptop found" });
    // The org-admin token acts under its own id, which the operator can tell apart from others.
    const me = await t.orgAdmin("get", "/me").expect(200);
    expect(placed.actor.id).toBe(me.body.tokenId);
  });

  it("releasing a hold while the IdP has the user deactivated leaves the user blocked", async () => {
    const email = "linus@hold.example";
    const userId = await provision(email);
    await t.operator("post", `${usersPath()}/${userId}/block`).send({ reason: "security review" }).expect(201);
    await t.bridge.scim.patch(`/Users/${userId}`, patchActive(false)).expect(204);
    await t.sync.drain();
    expect(auth0User(t.sync, email).blocked).toBe(true);

    await t.orgAdmin("post", `${usersPath()}/${userId}/unblock`).send({}).expect(200);
    await t.sync.drain();
    expect(auth0User(t.sync, email).blocked).toBe(true);
    expect(await listed(userId)).toMatchObject({ held: false, active: false, sync: { applied: { blocked: true } } });
    const trail = await auditOf(userId);
    expect(trail.map((e) => `${e.actor.type} ${e.action}`)).toEqual([
      "directory user.create",
      "operator hold.place",
      "directory user.deactivate",
      "org_admin hold.release",
    ]);
  });

  it("refuses a second hold and an unblock without a hold with 409, writing nothing", async () => {
    const userId = await provision("ada@hold.example");
    await t.orgAdmin("post", `${usersPath()}/${userId}/unblock`).send({}).expect(409);
    await t.orgAdmin("post", `${usersPath()}/${userId}/block`).send({ reason: "first" }).expect(201);
    const again = await t.orgAdmin("post", `${usersPath()}/${userId}/block`).send({ reason: "second" }).expect(409);
    expect(again.body.message).toContain("already blocked");
    const missing = await t.orgAdmin("post", `${usersPath()}/${userId}/block`).send({}).expect(400);
    expect(missing.body.message).toMatch(/^reason:/);
    expect((await auditOf(userId)).map((e) => e.action)).toEqual(["user.create", "hold.place"]);
  });

  it("force sign-out revokes the user's sessions now and is audited with the outcome", async () => {
    const email = "barbara@hold.example";
    const userId = await provision(email);
    const auth0Id = auth0User(t.sync, email).user_id;
    const org = (await t.orgAdmin("get", `/organizations/${t.bridge.organizationId}`).expect(200)).body
      .organization as { slug: string };
    const login = await t.sync.emulator.login({
      connection: "Username-Password-Authentication",
      email,
      organization: org.slug,
    });
    expect(login.decision).toBe("allow");
    expect(t.sync.emulator.state.hasActiveAccess(auth0Id)).toBe(true);

    const res = await t.orgAdmin("post", `${usersPath()}/${userId}/sign-out`).expect(200);
    expect(res.body).toEqual({ revoked: true, reason: null });
    expect(t.sync.emulator.state.hasActiveAccess(auth0Id)).toBe(false);
    expect(
      t.sync.emulator.state.revocations
        .filter((r) => r.user_id === auth0Id)
        .map((r) => r.kind)
        .sort(),
    ).toEqual(["refresh_token", "session"]);
    // Sign-out is not a block: the user stays unblocked.
    expect(auth0User(t.sync, email).blocked ?? false).toBe(false);
    const entry = (await auditOf(userId)).find((e) => e.action === "user.sign_out")!;
    expect(entry).toMatchObject({
      actor: { type: "org_admin" },
      after: { revoked: true },
      requestId: res.headers["x-request-id"],
    });
  });
});
