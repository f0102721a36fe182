/**
 * scim-bridge post-login Action for Auth0 (Login / Post Login trigger, Node 18+ runtime).
 *
 * Auth0 does not ask the upstream IdP again while a user has a session, so this Action asks the
 * bridge at every login whether the user may enter: the answer comes from what the customer's IdP
 * last pushed and from admin holds. It fails closed: if the bridge cannot be reached or answers
 * with an error, the login is denied.
 *
 * Secrets (Actions → this Action → Secrets):
 *   BRIDGE_URL          e.g. https://scim-bridge.example.com; https only (http is accepted for
 *                       localhost and 127.0.0.1, for local testing), or every login is denied
 *   BRIDGE_HOOK_SECRET  the bridge's AUTH0_HOOK_SECRET
 * Optional:
 *   BRIDGE_FAIL_OPEN    "true" to let logins through when the bridge is unreachable (not recommended)
 *   BRIDGE_ROLES_CLAIM  custom claim name for the roles (default https://scim-bridge/roles)
 */
const crypto = require("node:crypto");

// Every login waits for this call, and Auth0 gives a whole Actions pipeline 20 s (docs "Actions
// limitations"): a bridge slower than 3 s is treated as down, and the login is denied.
const TIMEOUT_MS = 3000;

/** The hook URL, or an Error: the login decision and the HMAC must not travel in clear text. */
function hookUrl(bridgeUrl) {
  let url;
  try {
    url = new URL(String(bridgeUrl).replace(/\/+$/, "") + "/hooks/auth0/post-login");
  } catch {
    return new Error("BRIDGE_URL is not a URL");
  }
  const local = url.hostname === "localhost" || url.hostname === "127.0.0.1";
  if (url.protocol !== "https:" && !(url.protocol === "http:" && local))
    return new Error("BRIDGE_URL must be an https URL");
  return url.toString();
}

function sign(secret, timestamp, body) {
  return crypto.createHmac("sha256", secret).update(`${timestamp}.${body}`).digest("hex");
}

exports.onExecutePostLogin = async (event, api) => {
  // Logins outside an organization are not the bridge's business.
  if (!event.organization) return;

  const body = JSON.stringify({
    user: {
      user_id: event.user.user_id,
      email: event.user.email,
      email_verified: event.user.email_verified,
      blocked: false,
      app_metadata: event.user.app_metadata || {},
      identities: (event.user.identities || []).map((i) => ({
        connection: i.connection,
        provider: i.provider,
        user_id: i.user_id,
        isSocial: i.isSocial,
      })),
    },
    organization: { id: event.organization.id, name: event.organization.name },
    connection: {
      name: event.connection && event.connection.name,
      strategy: event.connection && event.connection.strategy,
    },
    transaction: { id: event.transaction && event.transaction.id },
  });
  const secrets = event.secrets || {};
  const denied = "Access could not be verified with your organization's directory. Try again shortly.";
  // A BRIDGE_URL that is not https is a misconfiguration, not an outage: denied even with BRIDGE_FAIL_OPEN.
  const url = secrets.BRIDGE_URL ? hookUrl(secrets.BRIDGE_URL) : undefined;
  if (url instanceof Error) {
    console.log(`scim-bridge: ${url.message}; every login is denied until it is fixed`);
    api.access.deny(denied);
    return;
  }
  let decision;
  try {
    // Inside the try: a missing secret is a misconfiguration, and fails closed like an outage.
    if (!url || !secrets.BRIDGE_HOOK_SECRET) throw new Error("BRIDGE_URL and BRIDGE_HOOK_SECRET are required");
    const timestamp = Math.floor(Date.now() / 1000);
    const signature = `t=${timestamp},v1=${sign(secrets.BRIDGE_HOOK_SECRET, timestamp, body)}`;
    const res = await fetch(url, {
      method: "POST",
      headers: { "content-type": "application/json", "x-scim-bridge-signature": signature },
      body,
      signal: AbortSignal.timeout(TIMEOUT_MS),
    });
    if (!res.ok) throw new Error(`bridge answered ${res.status}`);
    // The timeout covers the body too: a bridge that sends headers and then stalls is down as well.
    decision = await res.json();
  } catch (err) {
    if (secrets.BRIDGE_FAIL_OPEN === "true") return;
    api.access.deny(denied);
    return;
  }

  if (!decision || decision.decision !== "allow") {
    api.access.deny(decision && decision.reason ? decision.reason : "Access denied by your organization's directory.");
    return;
  }
  if (Array.isArray(decision.roles)) {
    const claim = secrets.BRIDGE_ROLES_CLAIM || "https://scim-bridge/roles";
    api.idToken.setCustomClaim(claim, decision.roles);
    api.accessToken.setCustomClaim(claim, decision.roles);
  }
};
