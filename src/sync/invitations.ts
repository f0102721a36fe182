import { createHmac } from "node:crypto";
import { Auth0CallError } from "../auth0/errors.js";

/** What the SaaS's own mailer receives: enough to send "set your password" with its branding. */
export interface Invitation {
  email: string;
  /** Auth0's password-change ticket URL: a credential, delivered once and never stored by the bridge. */
  ticketUrl: string;
  organization: { id: string; slug: string; auth0OrgId: string };
  userId: string;
  auth0UserId: string;
  /** Epoch seconds when the ticket expires (Auth0 default 5 days), if known. */
  expiresAt?: number;
}

export interface InvitationDelivery {
  deliver(invitation: Invitation): Promise<void>;
}

/**
 * Delivers invitations to INVITATION_WEBHOOK_URL. Auth0 does not email Management-API tickets, so the
 * SaaS's mailer does; the body is signed like the post-login hook
 * (`x-scim-bridge-signature: t=<unix>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`). A non-2xx or a
 * network error fails the operation, and the job retries it (with a fresh ticket).
 */
export function webhookInvitationDelivery(url: string, secret: string, timeoutMs = 10_000): InvitationDelivery {
  return {
    async deliver(invitation) {
      const body = JSON.stringify({ type: "invitation", ...invitation });
      const t = Math.floor(Date.now() / 1000);
      const signature = `t=${t},v1=${createHmac("sha256", secret).update(`${t}.${body}`).digest("hex")}`;
      let status: number;
      try {
        const res = await fetch(url, {
          method: "POST",
          headers: { "content-type": "application/json", "x-scim-bridge-signature": signature },
          body,
          signal: AbortSignal.timeout(timeoutMs),
        });
        status = res.status;
      } catch (err) {
        throw new Auth0CallError(
          "retryable",
          undefined,
          undefined,
          `invitation webhook unreachable: ${err instanceof Error ? err.message : String(err)}`,
        );
      }
      if (status < 200 || status >= 300) {
        throw new Auth0CallError(
          status >= 500 || status === 429 ? "retryable" : "fatal",
          status,
          undefined,
          `invitation webhook answered ${status}`,
        );
      }
    },
  };
}
