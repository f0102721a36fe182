/**
 * Each user's sync state (linked Auth0 id, last applied, pending, last error) is visible as
 * read-only attributes of the bridge's own SCIM extension (scim/schemas/sync-state.json).
 */
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { createTestBridge, type TestBridge } from "../helpers/scim.js";
import { startSyncHarness, type SyncHarness } from "../helpers/sync-harness.js";

const SYNC = "urn:ietf:params:scim:schemas:extension:scim-bridge:1.0:User";
let bridge: TestBridge;
let sync: SyncHarness;

beforeEach(async () => {
  bridge = await createTestBridge();
  sync = await startSyncHarness(bridge.store, { start: false });
});
afterEach(async () => {
  await sync.close();
  await bridge.close();
});

async function createUser(userName: string): Promise<string> {
  const res = await bridge.scim
    .post("/Users", {
      schemas: ["urn:ietf:params:scim:schemas:core:2.0:User"],
      userName,
      emails: [{ value: userName, primary: true }],
      active: true,
    })
    .expect(201);
  return res.body.id as string;
}

describe("sync state extension", () => {
  it("is returned only when asked for, and shows pending, then synced with the linked Auth0 id", async () => {
    const id = await createUser("state@example.com");
    const plain = await bridge.scim.get(`/Users/${id}`).expect(200);
    expect(plain.body[SYNC]).toBeUndefined();
    expect(plain.body.schemas).not.toContain(SYNC);

    const pending = await bridge.scim.get(`/Users/${id}?attributes=${SYNC}`).expect(200);
    expect(pending.body.schemas).toContain(SYNC);
    expect(pending.body[SYNC]).toMatchObject({ status: "pending" });
    expect(Date.parse(pending.body[SYNC].pendingSince)).not.toBeNaN();

    sync.engine.worker.start();
    await sync.drain();
    const auth0Id = sync.emulator.state.usersByEmail("state@example.com")[0]!.user_id;
    const synced = await bridge.scim.get(`/Users/${id}?attributes=userName,${SYNC}`).expect(200);
    expect(synced.body.userName).toBe("state@example.com");
    expect(synced.body[SYNC]).toMatchObject({ status: "synced", auth0UserId: auth0Id, member: true, blocked: false });
    expect(synced.body[SYNC].pendingSince).toBeUndefined();

    // Lists carry it too, one query for the page rather than one per user.
    const list = await bridge.scim
      .get(`/Users?filter=${encodeURIComponent('userName eq "state@example.com"')}&attributes=${SYNC}`)
      .expect(200);
    expect(list.body.Resources[0][SYNC]).toMatchObject({ status: "synced", auth0UserId: auth0Id });
  });

  it("shows the last error of a reconcile that failed", async () => {
    sync.emulator.setFaults({
      errors: [
        {
          path: "/api/v2/users",
          method: "POST",
          status: 400,
          errorCode: "invalid_body",
          message: "Payload validation failed",
        },
      ],
    });
    const id = await createUser("broken@example.com");
    sync.engine.worker.start();
    await sync.drain();
    const res = await bridge.scim.get(`/Users/${id}?attributes=${SYNC}`).expect(200);
    expect(res.body[SYNC].status).toBe("failed");
    expect(res.body[SYNC].lastError).toMatch(/invalid_body/);
    // Auth0 accepts the user once the IdP changes it: the error goes, and the state says synced.
    sync.emulator.setFaults({ errors: [] });
    await bridge.scim
      .patch(`/Users/${id}`)
      .send({
        schemas: ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        Operations: [{ op: "replace", path: "displayName", value: "Fixed" }],
      })
      .expect(204);
    await sync.drain();
    const fixed = await bridge.scim.get(`/Users/${id}?attributes=${SYNC}`).expect(200);
    expect(fixed.body[SYNC].status).toBe("synced");
    expect(fixed.body[SYNC].lastError).toBeUndefined();
  });

  it("is declared in /Schemas and /ResourceTypes, read-only and returned on request, and ignored when an IdP writes it", async () => {
    const schema = await bridge.scim.get(`/Schemas/${SYNC}`).expect(200);
    expect(
      schema.body.attributes.every(
        (a: { mutability: string; returned: string }) => a.mutability === "readOnly" && a.returned === "request",
      ),
    ).toBe(true);
    const types = await bridge.scim.get("/ResourceTypes/User").expect(200);
    expect(types.body.schemaExtensions.map((e: { schema: string }) => e.schema)).toContain(SYNC);

    const id = await createUser("writer@example.com");
    await bridge.scim
      .patch(`/Users/${id}`, {
        schemas: ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        Operations: [{ op: "add", path: `${SYNC}:auth0UserId`, value: "auth0|forged" }],
      })
      .expect((r) => expect([200, 204, 400]).toContain(r.status));
    const res = await bridge.scim.get(`/Users/${id}?attributes=${SYNC}`).expect(200);
    expect(res.body[SYNC].auth0UserId).toBeUndefined();
  });
});
