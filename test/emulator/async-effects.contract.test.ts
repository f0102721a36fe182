/**
 * Asynchronous effects and plan-gated endpoints, through node-auth0 v7.
 * Sources: Auth0 docs "Remove Members from Organizations" (removal "takes approximately 5–10
 * seconds"), "Manage User Sessions with Auth0 Management API" and "Manage Refresh Tokens with
 * Auth0 Management API" (deletes are asynchronous; the endpoints are "available to customers on
 * Enterprise plans").
 */
import { Management } from "auth0";
import { afterEach, describe, expect, it } from "vitest";
import type { EmulatorOptions, Plan } from "../../src/emulator/index.js";
import { createDbUser, expectApiError, http, startHarness, uniqueEmail, type Harness } from "./helpers.js";

const DELAY = 800;
let h: Harness | undefined;
afterEach(async () => {
  await h?.emulator.close();
  h = undefined;
});

async function start(options: EmulatorOptions = {}): Promise<{ h: Harness; orgId: string }> {
  h = await startHarness({
    asyncDelayMs: DELAY,
    connections: [{ name: "acme-okta", strategy: "okta", id: "con_okta" }],
    ...options,
  });
  const org = await h.client.organizations.create({
    name: "acme",
    enabled_connections: [{ connection_id: "con_okta", assign_membership_on_login: true }],
  });
  return { h, orgId: org.id! };
}

async function signIn(harness: Harness, email = uniqueEmail("sso")): Promise<{ userId: string; sessionId: string }> {
  const result = await harness.emulator.login({ connection: "acme-okta", email, organization: "acme" });
  if (result.decision !== "allow") throw new Error(result.reason);
  return { userId: result.user.user_id, sessionId: result.session_id };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe("asynchronous effects (asyncDelayMs)", () => {
  it("member removal answers 204 at once but shows in the API and the state only after the delay; the member's roles go with it", async () => {
    const { h, orgId } = await start();
    const userId = await createDbUser(h.client);
    const role = await h.client.roles.create({ name: "admin" });
    await h.client.organizations.members.create(orgId, { members: [userId] });
    await h.client.organizations.members.roles.assign(orgId, userId, { roles: [role.id!] });
    await h.client.organizations.members.delete(orgId, { members: [userId] });
    expect(h.emulator.state.membersOf(orgId)).toEqual([userId]);
    expect((await h.client.organizations.members.list(orgId, { take: 10 })).data.map((m) => m.user_id)).toEqual([
      userId,
    ]);
    await sleep(DELAY + 50);
    expect(h.emulator.state.membersOf(orgId)).toEqual([]);
    expect(h.emulator.state.memberRolesOf(orgId, userId)).toEqual([]);
    expect((await h.client.organizations.members.list(orgId, { take: 10 })).data).toEqual([]);
  });

  it("a member added again before the removal shows stays a member", async () => {
    const { h, orgId } = await start();
    const userId = await createDbUser(h.client);
    await h.client.organizations.members.create(orgId, { members: [userId] });
    await h.client.organizations.members.delete(orgId, { members: [userId] });
    await h.client.organizations.members.create(orgId, { members: [userId] });
    await sleep(DELAY + 50);
    expect(h.emulator.state.membersOf(orgId)).toEqual([userId]);
  });

  it("revoke-access answers 202; the sessions and refresh tokens it covered disappear after the delay, a session opened meanwhile survives", async () => {
    const { h } = await start();
    const email = uniqueEmail("sso");
    const { userId, sessionId } = await signIn(h, email);
    await h.client.users.revokeAccess(userId, {});
    expect(h.emulator.state.hasActiveAccess(userId)).toBe(true);
    expect(h.emulator.state.revocations).toEqual([]);
    expect((await h.client.users.sessions.list(userId)).data.map((s) => s.id)).toEqual([sessionId]);
    const later = await signIn(h, email);
    await sleep(DELAY + 50);
    expect(h.emulator.state.sessionsOf(userId).map((s) => s.id)).toEqual([later.sessionId]);
    expect(h.emulator.state.revocations.map((r) => r.kind).sort()).toEqual(["refresh_token", "session"]);
    expect(h.emulator.state.revocations.every((r) => r.via === "POST /users/{id}/revoke-access")).toBe(true);
  });

  it("DELETE sessions and DELETE refresh-tokens are delayed alike; setAsyncDelay(0) and PUT /__emulator/async-delay make them immediate", async () => {
    const { h } = await start();
    const { userId } = await signIn(h);
    await h.client.users.sessions.delete(userId);
    await h.client.users.refreshToken.delete(userId);
    expect(h.emulator.state.hasActiveAccess(userId)).toBe(true);
    await sleep(DELAY + 50);
    expect(h.emulator.state.hasActiveAccess(userId)).toBe(false);

    h.emulator.setAsyncDelay(0);
    const second = await signIn(h);
    await h.client.users.revokeAccess(second.userId, {});
    expect(h.emulator.state.hasActiveAccess(second.userId)).toBe(false);

    expect((await http(h.emulator, "PUT", "/__emulator/async-delay", { ms: 10_000 })).status).toBe(204);
    expect((await http(h.emulator, "PUT", "/__emulator/async-delay", { ms: -1 })).status).toBe(400);
    const third = await signIn(h);
    await h.client.users.revokeAccess(third.userId, {});
    await sleep(100);
    expect(h.emulator.state.hasActiveAccess(third.userId)).toBe(true);
  });

  it("the default (0) applies at once, as tests not about timing expect", async () => {
    h = await startHarness({ connections: [{ name: "acme-okta", strategy: "okta", id: "con_okta" }] });
    const org = await h.client.organizations.create({
      name: "acme",
      enabled_connections: [{ connection_id: "con_okta", assign_membership_on_login: true }],
    });
    const { userId } = await signIn(h);
    await h.client.organizations.members.delete(org.id!, { members: [userId] });
    await h.client.users.revokeAccess(userId, {});
    expect(h.emulator.state.membersOf(org.id!)).toEqual([]);
    expect(h.emulator.state.hasActiveAccess(userId)).toBe(false);
  });

  it("refuses a negative delay at start", async () => {
    await expect(startHarness({ asyncDelayMs: -5 })).rejects.toThrow(/asyncDelayMs/);
  });
});

describe("plan-gated endpoints: session and refresh-token management is Enterprise-only", () => {
  it.each<Plan>(["free", "essentials"])(
    "%s: every session / refresh-token endpoint answers 403 operation_not_supported and revokes nothing",
    async (plan) => {
      h = await startHarness({ plan });
      const id = await createDbUser(h.client);
      const calls = [
        () => h!.client.users.sessions.list(id),
        () => h!.client.users.sessions.delete(id),
        () => h!.client.users.refreshToken.list(id),
        () => h!.client.users.refreshToken.delete(id),
        () => h!.client.users.revokeAccess(id, {}),
        () => h!.client.sessions.get("any"),
        () => h!.client.sessions.delete("any"),
        () => h!.client.sessions.revoke("any"),
      ];
      for (const call of calls) {
        const err = await expectApiError(call(), Management.ForbiddenError, 403, "operation_not_supported");
        expect((err.body as { message: string }).message).toMatch(/Enterprise plans/);
      }
      expect(h.emulator.state.revocations).toEqual([]);
    },
  );
});
