/**
 * The whole loop for admin tests: the SCIM app (createApp) with the admin router mounted at
 * /admin/v1, the real sync engine against the Auth0 emulator, and helpers to act as the IdP, as an
 * operator (bootstrap token) and as the organization's customer admin (a token issued through the API).
 */
import type { RequestHandler } from "express";
import { pino } from "pino";
import type supertest from "supertest";
import { expect } from "vitest";
import { adminRouter } from "../../src/http/admin-router.js";
import { createTestBridge, type TestBridge } from "../helpers/scim.js";
import { startSyncHarness, type SyncHarness } from "../helpers/sync-harness.js";

export const bootstrap = "bridge-admin-bootstrap-token-for-tests-0123456789";

export interface AdminBridge {
  bridge: TestBridge;
  sync: SyncHarness;
  orgAdminToken: string;
  /** A request as the operator (bootstrap token). */
  operator(method: "get" | "post" | "patch" | "delete", path: string): supertest.Test;
  /** A request as the organization's customer admin. */
  orgAdmin(method: "get" | "post" | "patch" | "delete", path: string): supertest.Test;
  close(): Promise<void>;
}

export const scimUser = (userName: string, extra: Record<string, unknown> = {}) => ({
  schemas: ["urn:ietf:params:scim:schemas:core:2.0:User"],
  userName,
  name: { givenName: "Grace", familyName: "Hopper" },
  emails: [{ value: userName, type: "work", primary: true }],
  active: true,
  ...extra,
});

export const patchActive = (active: boolean) => ({
  schemas: ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
  Operations: [{ op: "replace", path: "active", value: active }],
});

export async function startAdminBridge(): Promise<AdminBridge> {
  // createTestBridge owns the database, so the admin router is bound to it once it exists.
  let admin: RequestHandler | undefined;
  const bridge = await createTestBridge({
    extraRouters: [{ path: "/admin/v1", router: (req, res, next) => admin!(req, res, next) }],
  });
  const sync = await startSyncHarness(bridge.store);
  admin = adminRouter({
    store: bridge.store,
    publicUrl: bridge.origin,
    bootstrapOperatorToken: bootstrap,
    log: pino({ level: "silent" }),
    signOut: (userId) => sync.engine.signOut(userId),
    notifyWorker: () => sync.engine.worker.notify(),
  });
  const as = (token: string) => (method: "get" | "post" | "patch" | "delete", path: string) =>
    bridge.http[method](`/admin/v1${path}`).set("Authorization", `Bearer ${token}`);
  const operator = as(bootstrap);
  const issued = await operator("post", "/admin-tokens").send({
    name: "customer console",
    scope: "org_admin",
    organization: bridge.organizationId,
  });
  expect(issued.status).toBe(201);
  const orgAdminToken = issued.body.token as string;
  return {
    bridge,
    sync,
    orgAdminToken,
    operator,
    orgAdmin: as(orgAdminToken),
    async close() {
      await sync.close();
      await bridge.close();
    },
  };
}

/** The one Auth0 user with this email, as the emulated tenant holds it. */
export function auth0User(sync: SyncHarness, email: string) {
  const found = sync.emulator.state.usersByEmail(email.toLowerCase());
  expect(found, `Auth0 user for ${email}`).toHaveLength(1);
  return found[0]!;
}
