/**
 * What a real tenant answers, and how the bridge carries on (real worker, gateway and node-auth0
 * against the strict emulator): plan-gated revocation, a 409 on role assignment, a connection whose
 * sync setting changed behind the bridge's back, invitation tickets, and dead jobs superseded by a
 * later success.
 */
import { randomBytes } from "node:crypto";
import { afterEach, describe, expect, it } from "vitest";
import { createManagementClient } from "../../src/auth0/client.js";
import type { Auth0Gateway } from "../../src/auth0/gateway.js";
import { saveMappingVersion } from "../../src/directory/mappings.js";
import { parseMapping } from "../../src/mapping/index.js";
import { Lane } from "../../src/directory/outbox.js";
import { createTestBridge, type TestBridge } from "../helpers/scim.js";
import { applyDatabaseMapping, startSyncHarness, type SyncHarness } from "../helpers/sync-harness.js";
import { sqlExec, sqlRow, sqlRows, sqlValue } from "../helpers/sync-store.js";

const ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
const SYNC = "urn:ietf:params:scim:schemas:extension:scim-bridge:1.0:User";
const deadJobs = async (b: TestBridge) =>
  await sqlValue<number>(b.store, "select count(*) from jobs where state = 'dead'");
const patchOp = (Operations: unknown[]) => ({ schemas: ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], Operations });
const deactivate = patchOp([{ op: "replace", path: "active", value: false }]);

let bridge: TestBridge | undefined;
let sync: SyncHarness | undefined;
afterEach(async () => {
  await sync?.close();
  await bridge?.close();
  sync = bridge = undefined;
});

async function push(b: TestBridge, userName: string, department = "Research"): Promise<string> {
  const res = await b.scim
    .post("/Users", {
      schemas: ["urn:ietf:params:scim:schemas:core:2.0:User", ENTERPRISE],
      userName,
      name: { givenName: "Ann" },
      active: true,
      [ENTERPRISE]: { department },
    })
    .expect(201);
  return res.body.id as string;
}
const state = async (b: TestBridge, id: string) =>
  (await b.scim.get(`/Users/${id}?attributes=${SYNC}`).expect(200)).body[SYNC] as Record<string, unknown>;

describe("a tenant's refusals", () => {
  it("on a plan without session revocation: blocks, says revocation is not available on this plan, and runs the rest of the deprovisioning", async () => {
    bridge = await createTestBridge();
    await applyDatabaseMapping(bridge.store, bridge.organizationId, {
      roles: { rules: [], default: ["member"] },
      policies: { deactivation: { block: "always", revokeSessions: "always", removeRoles: true } },
    });
    sync = await startSyncHarness(bridge.store, { plan: "essentials" });
    const id = await push(bridge, "ann@example.com");
    await sync.drain();
    const auth0Id = sync.emulator.state.usersByEmail("ann@example.com")[0]!.user_id;
    const orgId = [...sync.emulator.state.organizations.values()][0]!.id;
    expect(sync.emulator.state.memberRolesOf(orgId, auth0Id)).toHaveLength(1);

    await bridge.scim.patch(`/Users/${id}`, deactivate).expect(204);
    await sync.drain();
    expect(sync.emulator.state.users.get(auth0Id)!.blocked).toBe(true);
    // The plan went on after the refused revocation: the roles were removed too.
    expect(sync.emulator.state.memberRolesOf(orgId, auth0Id)).toEqual([]);
    const s = await state(bridge, id);
    expect(s.lastError).toMatch(/not available on this plan/);
    expect(await deadJobs(bridge)).toBe(0);
    expect(sync.emulator.calls().some((c) => c.path.endsWith("/revoke-access") && c.status === 403)).toBe(true);
  });

  it("counts a 409 on role assignment as done", async () => {
    bridge = await createTestBridge();
    await applyDatabaseMapping(bridge.store, bridge.organizationId, { roles: { rules: [], default: ["member"] } });
    sync = await startSyncHarness(bridge.store);
    sync.emulator.setFaults({
      errors: [
        {
          path: "/api/v2/organizations/*/members/*/roles",
          method: "POST",
          status: 409,
          errorCode: "conflict",
          message: "The member already has the role",
        },
      ],
    });
    const id = await push(bridge, "bo@example.com");
    await sync.drain();
    expect(await state(bridge, id)).toMatchObject({ status: "synced", roles: ["member"] });
    expect(await deadJobs(bridge)).toBe(0);
  });

  it("re-reads a connection whose sync setting changed behind its back and plans again instead of failing the job", async () => {
    bridge = await createTestBridge();
    await sqlExec(bridge.store, "update organizations set connection = ? where id = ?", [
      "acme-okta",
      bridge.organizationId,
    ]);
    await bridge.store.write(
      saveMappingVersion(
        bridge.organizationId,
        parseMapping({
          connection: { name: "acme-okta", type: "enterprise" },
          userModel: "isolated",
          profile: { email: "userName", given_name: "name.givenName" },
          app_metadata: { keys: { department: `${ENTERPRISE}:department` } },
          roles: { rules: [], default: ["member"] },
        }),
        { actor: { type: "operator", id: "test" } },
      ),
    );
    sync = await startSyncHarness(bridge.store, {
      connections: [{ name: "acme-okta", strategy: "okta", options: { set_user_root_attributes: "on_first_login" } }],
    });
    // The Organization, then a user who signed in before the push.
    await push(bridge, "first@acme.test");
    await sync.drain();
    const orgId = [...sync.emulator.state.organizations.values()][0]!.id;
    const login = await sync.emulator.login({ connection: "acme-okta", email: "Cy@Acme.test", organization: orgId });
    expect(login.decision).toBe("allow");
    const id = await push(bridge, "Cy@Acme.test");
    await sync.drain();
    const auth0Id = sync.emulator.state.usersByEmail("Cy@Acme.test")[0]!.user_id;
    // on_first_login: the bridge may write given_name.
    expect(sync.emulator.state.users.get(auth0Id)!.given_name).toBe("Ann");

    // An administrator turns "sync user profile attributes at each login" back on.
    const admin = createManagementClient({
      domain: "tenant.example.auth0.com",
      clientId: "admin",
      clientSecret: "admin",
      managementUrl: sync.emulator.url,
    });
    const connectionId = sync.emulator.state.connectionByName("acme-okta")!.id;
    await admin.connections.update(connectionId, { options: { set_user_root_attributes: "on_each_login" } });

    await bridge.scim
      .patch(
        `/Users/${id}`,
        patchOp([
          { op: "replace", path: "name.givenName", value: "Cyrus" },
          { op: "replace", path: `${ENTERPRISE}:department`, value: "Ops" },
        ]),
      )
      .expect(204);
    await sync.drain();
    expect(
      sync.emulator.calls().some((c) => c.status === 400 && c.method === "PATCH"),
      "the stale setting cost one refused call",
    ).toBe(true);
    expect(sync.emulator.state.users.get(auth0Id)!.app_metadata).toMatchObject({ department: "Ops" });
    expect(await state(bridge, id)).toMatchObject({ status: "synced" });
    expect(await deadJobs(bridge)).toBe(0);
  });

  it("invitation tickets mark the email verified and return to the configured application", async () => {
    bridge = await createTestBridge();
    sync = await startSyncHarness(bridge.store, { start: false });
    const gw = new (sync.engine.gateway.constructor as typeof Auth0Gateway)(
      createManagementClient({
        domain: "tenant.example.auth0.com",
        clientId: "bridge",
        clientSecret: "s",
        managementUrl: sync.emulator.url,
      }),
      sync.engine.limiter,
      {},
      { invitationClientId: "app_client_123" },
    );
    const user = await gw.createUser(
      {
        connection: "Username-Password-Authentication",
        email: "dee@example.com",
        password: `x${randomBytes(16).toString("hex")}A!`,
      },
      Lane.provision,
    );
    await gw.passwordChangeTicket(user.user_id, undefined, Lane.provision);
    const call = sync.emulator.calls().find((c) => c.path === "/api/v2/tickets/password-change")!;
    expect(call.body).toMatchObject({
      user_id: user.user_id,
      mark_email_as_verified: true,
      client_id: "app_client_123",
    });
    expect(sync.emulator.state.tickets.at(-1)!.mark_email_as_verified).toBe(true);
  });

  it("a revoke-access for a user Auth0 no longer has is not recorded as revoked", async () => {
    bridge = await createTestBridge();
    sync = await startSyncHarness(bridge.store, { start: false });
    await expect(
      sync.engine.gateway.revokeAccess("auth0|000000000000000000000000", Lane.deprovision),
    ).rejects.toMatchObject({ kind: "userNotFound" });
  });

  it("a dead job no longer counts as failing once a later reconcile of the same user succeeds", async () => {
    bridge = await createTestBridge();
    await applyDatabaseMapping(bridge.store, bridge.organizationId, {
      app_metadata: { keys: { department: `${ENTERPRISE}:department` } },
    });
    sync = await startSyncHarness(bridge.store);
    const id = await push(bridge, "eve@example.com");
    await sync.drain();
    sync.emulator.setFaults({
      errors: [
        {
          path: "/api/v2/users/*",
          method: "PATCH",
          status: 400,
          errorCode: "invalid_body",
          message: "Payload validation failed",
          count: 1,
        },
      ],
    });
    await bridge.scim
      .patch(`/Users/${id}`, patchOp([{ op: "replace", path: `${ENTERPRISE}:department`, value: "Ops" }]))
      .expect(204);
    await sync.drain();
    expect(await state(bridge, id)).toMatchObject({ status: "failed" });
    const dead = (await sqlRows<{ id: number }>(bridge.store, "select id from jobs where state = 'dead'")).map(
      (j) => j.id,
    );
    expect(dead).toHaveLength(1);

    await bridge.scim
      .patch(`/Users/${id}`, patchOp([{ op: "replace", path: `${ENTERPRISE}:department`, value: "Sales" }]))
      .expect(204);
    await sync.drain();
    expect(await state(bridge, id)).toMatchObject({ status: "synced" });
    const superseded = (await sqlRow<{ state: string; last_error: string }>(
      bridge.store,
      "select state, last_error from jobs where id = ?",
      [dead[0]!],
    ))!;
    expect(superseded.state).toBe("done");
    expect(superseded.last_error).toMatch(/^superseded by job \d+, which succeeded; it had failed: .*invalid_body/);
    expect(await deadJobs(bridge)).toBe(0);
  });
});
