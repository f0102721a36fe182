import { csrfField, formatTime, html, type Html } from "./html.js";

/**
 * Pieces shared by the customer admin's directory page and the setup-link pages: the SCIM base URL,
 * the tokens with the one the IdP used last, the one-time token display, the live "first request"
 * indicator and the Okta and Entra steps with this directory's values filled in.
 */
export interface DirectoryView {
  id: string;
  name: string | null;
  scimBaseUrl: string;
  userCount: number;
  groupCount: number;
}
export interface TokenView {
  id: string;
  hint: string;
  active: boolean;
  createdAt: string | null;
  expiresAt: string | null;
  revokedAt: string | null;
  lastUsedAt: string | null;
}
export interface ScimRequestView {
  at: string;
  method: string;
  path: string;
  status: number;
  scimType: string | null;
  detail: string | null;
  requestId: string | null;
  durationMs: number | null;
}

export const copyable = (id: string, value: string, secret = false): Html =>
  html`<span class="${secret ? "secret" : ""}"><code id="${id}">${value}</code></span>
    <button type="button" class="secondary" data-copy="${id}" hidden>Copy</button>`;

export function firstRequestIndicator(statusUrl: string, latest: ScimRequestView | undefined): Html {
  const text = latest
    ? `Requests arriving: last ${latest.method} ${latest.path} answered ${latest.status} at ${formatTime(latest.at)}`
    : "Waiting for the first request from your IdP…";
  return html`<p>
    First request received:
    <span class="badge ${latest ? "ok" : ""}" role="status" aria-live="polite" data-poll="${statusUrl}">${text}</span>
  </p>`;
}

export function statusJson(latest: ScimRequestView | undefined): { received: boolean; text: string } {
  return latest
    ? {
        received: true,
        text: `Requests arriving: last ${latest.method} ${latest.path} answered ${latest.status} at ${formatTime(latest.at)}`,
      }
    : { received: false, text: "Waiting for the first request from your IdP…" };
}

/** The token the IdP presented most recently: the one to keep when rotating. */
export function lastUsedToken(tokens: TokenView[]): TokenView | undefined {
  return tokens.filter((t) => t.lastUsedAt).sort((a, b) => (b.lastUsedAt! > a.lastUsedAt! ? 1 : -1))[0];
}

export function tokensTable(tokens: TokenView[], revokeAction?: (t: TokenView) => string, csrf?: string): Html {
  const last = lastUsedToken(tokens);
  return html`<div class="scroll">
    <table>
      <caption class="muted">
        SCIM tokens (only the last 4 characters are ever shown again)
      </caption>
      <thead>
        <tr>
          <th scope="col">Token</th>
          <th scope="col">State</th>
          <th scope="col">Created</th>
          <th scope="col">Last used by the IdP</th>
          <th scope="col">Expires</th>
          ${revokeAction ? html`<th scope="col"><span class="muted">Action</span></th>` : ""}
        </tr>
      </thead>
      <tbody>
        ${tokens.map(
          (t) =>
            html`<tr>
              <td><code>…${t.hint}</code>${last?.id === t.id ? html` <span class="badge ok">used last</span>` : ""}</td>
              <td>${t.active ? "active" : t.revokedAt ? "revoked" : "expired"}</td>
              <td>${formatTime(t.createdAt)}</td>
              <td>${formatTime(t.lastUsedAt)}</td>
              <td>${formatTime(t.expiresAt)}</td>
              ${revokeAction ? html`<td>${t.active && csrf ? html`<form method="post" action="${revokeAction(t)}">${csrfField(csrf)}<button type="submit" class="danger" aria-label="Revoke token ending ${t.hint}">Revoke</button></form>` : ""}</td>` : ""}
            </tr>`,
        )}
      </tbody>
    </table>
  </div>`;
}

export function oneTimeToken(token: string, baseUrl: string): Html {
  return html`<section aria-labelledby="new-token">
    <h2 id="new-token">Your new SCIM token</h2>
    <p class="notice ok" role="status">
      Copy it now: it is shown only this once and cannot be retrieved later. The previous token keeps working until you
      revoke it, so you can update your IdP first.
    </p>
    <dl class="facts">
      <dt>SCIM base URL</dt>
      <dd>${copyable("scim-url-new", baseUrl)}</dd>
      <dt>Token</dt>
      <dd>${copyable("scim-token", token, true)}</dd>
    </dl>
  </section>`;
}

export function setupGuides(baseUrl: string): Html {
  return html`<section aria-labelledby="okta">
      <h2 id="okta">Okta: step by step</h2>
      <ol class="steps">
        <li>
          In Okta, open <em>Applications → Applications →</em> your app <em>→ General → App Settings → Edit</em>, set
          <em>Provisioning</em> to <strong>SCIM</strong> and save.
        </li>
        <li>
          On the <em>Provisioning</em> tab, open <em>Integration → Edit</em>. <strong>SCIM connector base URL</strong>:
          <code>${baseUrl}</code>. <strong>Unique identifier field for users</strong>: <code>userName</code>.
        </li>
        <li>
          <strong>Supported provisioning actions</strong>: Push New Users, Push Profile Updates, Push Groups.
          <strong>Authentication Mode</strong>: HTTP Header, with the token below as the Bearer token.
        </li>
        <li>Click <em>Test Connector Configuration</em>, then <em>Save</em>.</li>
        <li>
          On <em>Provisioning → To App → Edit</em>, enable Create Users, Update User Attributes and Deactivate Users.
          Leave Sync Password off.
        </li>
        <li>Assign one test user to the app and watch "First request received" below turn green.</li>
      </ol>
    </section>
    <section aria-labelledby="entra">
      <h2 id="entra">Microsoft Entra ID: step by step</h2>
      <ol class="steps">
        <li>
          In the Entra admin center, open <em>Enterprise applications</em> and your app (or
          <em>New application → Create your own application</em>, non-gallery).
        </li>
        <li>
          Open <em>Provisioning → Get started</em> and set <em>Provisioning Mode</em> to <strong>Automatic</strong>.
        </li>
        <li>
          Under <em>Admin Credentials</em>, <strong>Tenant URL</strong>: <code>${baseUrl}?aadOptscim062020</code>;
          <strong>Secret Token</strong>: the token below. Click <em>Test Connection</em>, then <em>Save</em>.
        </li>
        <li>
          Under <em>Settings</em>, set <em>Scope</em> to <strong>Sync only assigned users and groups</strong>, and
          assign your users and groups to the app.
        </li>
        <li>
          Set <em>Provisioning Status</em> to <strong>On</strong> and save. Entra's first cycle can take up to 40
          minutes; "First request received" below turns green when it starts.
        </li>
      </ol>
    </section>`;
}

export function requestsTable(requests: ScimRequestView[]): Html {
  return html`<div class="scroll">
      <table>
        <thead>
          <tr>
            <th scope="col">Time</th>
            <th scope="col">Request</th>
            <th scope="col">Status</th>
            <th scope="col">Error</th>
            <th scope="col">Request id</th>
          </tr>
        </thead>
        <tbody>
          ${requests.map(
            (r) =>
              html`<tr>
                <td>${formatTime(r.at)}</td>
                <td><code>${r.method} ${r.path}</code></td>
                <td><span class="badge ${r.status >= 400 ? "error" : "ok"}">${r.status}</span></td>
                <td>${r.scimType ?? ""} ${r.detail ?? ""}</td>
                <td><code>${r.requestId ?? ""}</code></td>
              </tr>`,
          )}
        </tbody>
      </table>
    </div>
    ${requests.length === 0 ? html`<p class="muted">No requests yet.</p>` : ""}`;
}
