/**
 * The mass-deprovision guard (docs/design.md, invariant 8) through the admin API: when the IdP
 * deactivates and deletes 30% of an organization within the window, the irreversible part (deleting
 * Auth0 users) pauses while the reversible part (blocking) goes ahead; an operator's approval lets the
 * deletions run. A smaller share earlier in the window goes through untouched.
 */
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { defaultMapping } from "../../src/mapping/index.js";
import { auth0User, patchActive, scimUser, startAdminBridge, type AdminBridge } from "./bridge.js";

let t: AdminBridge;
beforeEach(async () => {
  t = await startAdminBridge();
});
afterEach(async () => {
  await t.close();
});

const guardPolicy = { enabled: true, windowMinutes: 60, percent: 25, minUsers: 2 };
const emailOf = (i: number) => `person${i}@guard.example`;
const existsInAuth0 = (i: number) => t.sync.emulator.state.usersByEmail(emailOf(i)).length === 1;

describe("mass-deprovision guard", () => {
  it("pauses deletions when 30% of the organization goes within the window, lets blocks through, and runs the deletions once approved", async () => {
    const org = `/organizations/${t.bridge.organizationId}`;
    const mapping = {
      ...defaultMapping({ connection: "Username-Password-Authentication", userModel: "isolated" }),
      policies: { massDeprovisionGuard: guardPolicy },
    };
    const applied = await t.operator("post", `${org}/mappings`).send({ mapping, comment: "guard at 25%" }).expect(200);
    expect(applied.body).toMatchObject({ version: 1, changed: true });

    const ids: string[] = [];
    for (let i = 0; i < 20; i++)
      ids.push((await t.bridge.scim.post("/Users", scimUser(emailOf(i))).expect(201)).body.id as string);
    await t.sync.drain();
    expect([...Array(20).keys()].every(existsInAuth0)).toBe(true);

    // 10% of the organization: above minUsers, below the 25% threshold, so the deletions simply run.
    for (const i of [0, 1]) await t.bridge.scim.delete(`/Users/${ids[i]}`).expect(204);
    await t.sync.drain();
    expect(existsInAuth0(0) || existsInAuth0(1)).toBe(false);
    expect((await t.operator("get", `${org}/guard`).expect(200)).body.paused).toBeNull();

    // Another 20% at once (worker stopped so that the guard sees the whole burst): 6 of 20 = 30%.
    await t.sync.engine.worker.stop();
    for (const i of [2, 3]) await t.bridge.scim.patch(`/Users/${ids[i]}`, patchActive(false)).expect(204);
    for (const i of [4, 5]) await t.bridge.scim.delete(`/Users/${ids[i]}`).expect(204);
    t.sync.engine.worker.start();
    await t.sync.drain();

    // Reversible operations went ahead: every one of them is blocked in Auth0.
    for (const i of [2, 3, 4, 5]) expect(auth0User(t.sync, emailOf(i)).blocked, emailOf(i)).toBe(true);
    // Irreversible ones wait: the deleted users still exist.
    expect(existsInAuth0(4) && existsInAuth0(5)).toBe(true);
    const paused = (await t.operator("get", "/guard").expect(200)).body.paused as {
      organization: { id: string };
      pause: { reason: string; state: string };
    }[];
    expect(paused).toHaveLength(1);
    expect(paused[0]!.organization.id).toBe(t.bridge.organizationId);
    expect(paused[0]!.pause.state).toBe("paused");
    expect(paused[0]!.pause.reason).toContain("6 of 20 users (30.0%)");
    const status = (await t.operator("get", `${org}/guard`).expect(200)).body;
    expect(status.policy).toEqual(guardPolicy);
    // A customer admin cannot approve its own organization's mass deletion.
    await t.orgAdmin("post", `${org}/guard/approve`).expect(403);

    const approve = await t.operator("post", `${org}/guard/approve`).expect(200);
    expect(approve.body.pause).toMatchObject({ state: "approved", decidedBy: "bootstrap" });
    await t.sync.drain();
    expect(existsInAuth0(4) || existsInAuth0(5)).toBe(false);
    // Deactivated users are blocked, not deleted; untouched users are untouched.
    expect(auth0User(t.sync, emailOf(2)).blocked).toBe(true);
    expect(auth0User(t.sync, emailOf(6)).blocked ?? false).toBe(false);
    expect((await t.operator("get", `${org}/guard`).expect(200)).body).toMatchObject({
      paused: null,
      history: [{ state: "approved" }],
    });
    await t.operator("post", `${org}/guard/approve`).expect(404);

    const trail = (
      await t.operator("get", `/audit?organization=${t.bridge.organizationId}&action=guard.&limit=10`).expect(200)
    ).body.entries as {
      action: string;
      actor: { type: string; id: string };
      requestId: string | null;
    }[];
    expect(trail.map((e) => `${e.actor.type} ${e.action}`)).toEqual(["operator guard.approve", "system guard.trip"]);
    expect(trail[0]!.requestId).toBe(approve.headers["x-request-id"]);
  });

  it("a rejection keeps the deletions undone while the users stay blocked", async () => {
    const org = `/organizations/${t.bridge.organizationId}`;
    const mapping = {
      ...defaultMapping({ connection: "Username-Password-Authentication", userModel: "isolated" }),
      policies: { massDeprovisionGuard: guardPolicy },
    };
    await t.operator("post", `${org}/mappings`).send({ mapping }).expect(200);
    const ids: string[] = [];
    for (let i = 0; i < 8; i++)
      ids.push((await t.bridge.scim.post("/Users", scimUser(emailOf(i))).expect(201)).body.id as string);
    await t.sync.drain();
    await t.sync.engine.worker.stop();
    for (const i of [0, 1, 2]) await t.bridge.scim.delete(`/Users/${ids[i]}`).expect(204);
    t.sync.engine.worker.start();
    await t.sync.drain();
    expect((await t.operator("get", `${org}/guard`).expect(200)).body.paused).not.toBeNull();

    await t.operator("post", `${org}/guard/reject`).expect(200);
    await t.sync.drain();
    for (const i of [0, 1, 2]) {
      expect(existsInAuth0(i), emailOf(i)).toBe(true);
      expect(auth0User(t.sync, emailOf(i)).blocked).toBe(true);
    }
  });
});
