/**
 * docs/design.md ("What Auth0 sees"): a new database-connection user gets a password-change ticket as its invitation when
 * the mapping asks for one. Auth0 does not email Management-API tickets, so the bridge hands each one,
 * signed, to the SaaS's mailer at INVITATION_WEBHOOK_URL; the ticket is never stored.
 */
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { verifyPostLoginSignature } from "../../src/http/post-login-hook.js";
import { webhookInvitationDelivery, type Invitation } from "../../src/sync/invitations.js";
import { createTestBridge, type TestBridge } from "../helpers/scim.js";
import { applyDatabaseMapping, startSyncHarness, type SyncHarness } from "../helpers/sync-harness.js";

const SECRET = "m".repeat(40);
const SYNC = "urn:ietf:params:scim:schemas:extension:scim-bridge:1.0:User";
let bridge: TestBridge | undefined;
let sync: SyncHarness | undefined;
let mailer: Server | undefined;
afterEach(async () => {
  await sync?.close();
  await bridge?.close();
  await new Promise((r) => (mailer ? mailer.close(r) : r(undefined)));
  sync = bridge = mailer = undefined;
});

/** A stand-in for the SaaS's mailer: answers with the given statuses in turn, records what it accepted. */
async function startMailer(
  statuses: number[],
): Promise<{ url: string; accepted: Invitation[]; attempts: () => number }> {
  const accepted: Invitation[] = [];
  let attempts = 0;
  mailer = createServer((req, res) => {
    let body = "";
    req.on("data", (c: Buffer) => (body += c.toString()));
    req.on("end", () => {
      const status = statuses[Math.min(attempts++, statuses.length - 1)]!;
      if (status === 200) {
        expect(verifyPostLoginSignature(SECRET, req.headers["x-scim-bridge-signature"] as string, body)).toBe(true);
        accepted.push(JSON.parse(body) as Invitation);
      }
      res.writeHead(status).end();
    });
  });
  await new Promise<void>((r) => mailer!.listen(0, "127.0.0.1", r));
  return {
    url: `http://127.0.0.1:${(mailer.address() as AddressInfo).port}/invitations`,
    accepted,
    attempts: () => attempts,
  };
}

async function setup(invitationsUrl?: string): Promise<void> {
  bridge = await createTestBridge();
  await applyDatabaseMapping(bridge.store, bridge.organizationId, {
    policies: { invitation: { send: true, ttlSeconds: 86_400 } },
  });
  sync = await startSyncHarness(
    bridge.store,
    invitationsUrl ? { invitations: webhookInvitationDelivery(invitationsUrl, SECRET) } : {},
  );
}

const pushUser = async (userName: string): Promise<string> =>
  (
    await bridge!.scim
      .post("/Users", { schemas: ["urn:ietf:params:scim:schemas:core:2.0:User"], userName, active: true })
      .expect(201)
  ).body.id as string;

describe("invitations", () => {
  it("hands the ticket of a newly created user, signed, to the mailer once", async () => {
    const m = await startMailer([200]);
    await setup(m.url);
    const id = await pushUser("new@example.com");
    await sync!.drain();
    expect(m.accepted).toHaveLength(1);
    const invitation = m.accepted[0]!;
    const auth0User = sync!.emulator.state.usersByEmail("new@example.com")[0]!;
    expect(invitation).toMatchObject({ email: "new@example.com", userId: id, auth0UserId: auth0User.user_id });
    expect(sync!.emulator.state.tickets.map((t) => t.ticket)).toContain(invitation.ticketUrl);
    // A later change does not invite again.
    await bridge!.scim
      .patch(`/Users/${id}`, {
        schemas: ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        Operations: [{ op: "replace", path: "displayName", value: "New" }],
      })
      .expect(204);
    await sync!.drain();
    expect(m.attempts()).toBe(1);
  });

  it("retries when the mailer fails, and marks the user invited only once it accepted", async () => {
    const m = await startMailer([503, 200]);
    await setup(m.url);
    await pushUser("retry@example.com");
    await sync!.drain(30_000);
    expect(m.attempts()).toBe(2);
    expect(m.accepted).toHaveLength(1);
  });

  it("provisions the user and says why no invitation went out when no mailer is configured", async () => {
    await setup();
    const id = await pushUser("nomail@example.com");
    await sync!.drain();
    expect(sync!.emulator.state.usersByEmail("nomail@example.com")).toHaveLength(1);
    expect(sync!.emulator.state.tickets).toHaveLength(0);
    const res = await bridge!.scim.get(`/Users/${id}?attributes=${SYNC}`).expect(200);
    expect(res.body[SYNC].lastError).toMatch(/INVITATION_WEBHOOK_URL/);
  });
});
