import { stringify } from "yaml";
import { forbidden } from "../errors.js";
import { checkMappingFile } from "../mapping/load.js";
import type { Ctx, PageRoutes } from "./context.js";
import { copyable } from "./directory-views.js";
import { csrfField, formatTime, html, type Html } from "./html.js";

/**
 * Operator pages: organizations (list, onboard, checklist), setup links, the mapping editor (check
 * with line and column, preview as a diff, apply, history, roll back), jobs and dead letters, guard
 * approvals, and the Auth0 budget and deprovision latency from the exported metrics. Each page checks
 * the principal first; the admin routes behind them check again (operator access).
 */
interface OrgView {
  id: string;
  slug: string;
  displayName: string | null;
  userModel: string;
  connection: string;
  auth0OrgId: string | null;
  activeMappingVersion: number | null;
  createdAt: string;
}
interface DirectoryView {
  id: string;
  name: string | null;
  scimBaseUrl: string;
  userCount: number;
  groupCount: number;
}
interface JobView {
  id: number;
  organizationId: string;
  kind: string;
  subjectId: string;
  lane: string;
  state: string;
  attempts: number;
  lastError: string | null;
  updatedAt: string;
}

const enc = encodeURIComponent;
const str = (v: unknown): string | undefined => (typeof v === "string" && v !== "" ? v : undefined);

function requireOperator(ctx: Ctx): void {
  if (ctx.principal.kind !== "operator") throw forbidden("this page is for operators");
}

export function operatorPages(routes: PageRoutes): void {
  routes.get("/orgs", async (ctx) => {
    requireOperator(ctx);
    const { organizations } = await ctx.call<{ organizations: OrgView[] }>("get", "/organizations");
    ctx.render("Organizations", html`${orgTable(organizations)}${createForm(ctx)}`, { nav: ctx.operatorNav() });
  });

  routes.post("/orgs", async (ctx) => {
    requireOperator(ctx);
    const b = ctx.req.body as Record<string, unknown>;
    const body: Record<string, unknown> = { slug: String(b.slug ?? "").trim() };
    for (const k of ["displayName", "userModel", "connection"]) if (str(b[k])) body[k] = str(b[k]);
    const made = await ctx.call<{ organization: OrgView; scimBaseUrl: string; token: string }>(
      "post",
      "/organizations",
      { body },
    );
    // Rendered, not redirected: the first SCIM token is shown once.
    ctx.render(
      `Organization ${made.organization.slug} created`,
      html`<p class="notice ok" role="status">
          The organization, its first directory and SCIM token exist now. The sync engine creates its Auth0 Organization
          and enables the connection in the background; the checklist below follows live.
        </p>
        <dl class="facts">
          <dt>SCIM base URL</dt>
          <dd>${copyable("scim-url-new", made.scimBaseUrl)}</dd>
          <dt>SCIM token (shown once)</dt>
          <dd>${copyable("scim-token", made.token, true)}</dd>
        </dl>
        <p><a href="/console/orgs/${enc(made.organization.slug)}">Open the onboarding checklist</a></p>`,
      { nav: ctx.operatorNav() },
    );
  });

  routes.get("/orgs/:org", async (ctx) => {
    requireOperator(ctx);
    const { organization: org, directories } = await ctx.call<{ organization: OrgView; directories: DirectoryView[] }>(
      "get",
      `/organizations/${enc(ctx.param("org"))}`,
    );
    const [jobs, requests] = await Promise.all([
      ctx.call<{ jobs: JobView[] }>("get", "/jobs", {
        query: { organization: org.id, kind: "organization", limit: "5" },
      }),
      Promise.all(
        directories.map((d) =>
          ctx.call<{ requests: { at: string }[] }>(
            "get",
            `/organizations/${enc(org.id)}/directories/${enc(d.id)}/scim-requests`,
            { query: { limit: "1" } },
          ),
        ),
      ),
    ]);
    const orgJob = jobs.jobs[0];
    const firstPush =
      directories.some((d) => d.userCount + d.groupCount > 0) || requests.some((r) => r.requests.length > 0);
    const item = (done: boolean | "pending", label: string, detail: Html | string) =>
      html`<li>
        <span class="badge ${done === true ? "ok" : done === "pending" ? "" : "error"}"
          >${done === true ? "done" : done === "pending" ? "in progress" : "to do"}</span
        >
        <strong>${label}</strong>: ${detail}
      </li>`;
    ctx.render(
      `${org.displayName ?? org.slug}`,
      html`<dl class="facts">
          <dt>Slug</dt>
          <dd><code>${org.slug}</code></dd>
          <dt>User model</dt>
          <dd>${org.userModel}</dd>
          <dt>Connection</dt>
          <dd>${org.connection}</dd>
          <dt>Auth0 organization</dt>
          <dd><code>${org.auth0OrgId ?? "not created yet"}</code></dd>
        </dl>
        <h2>Onboarding checklist</h2>
        <ul class="checklist">
          ${item(org.auth0OrgId !== null, "Auth0 organization", org.auth0OrgId ? html`<code>${org.auth0OrgId}</code>` : "the sync engine creates it")}
          ${item(orgJob?.state === "done" ? true : orgJob?.state === "dead" ? false : "pending", "Connection enabled", orgJob ? `${org.connection}: last organization job ${orgJob.state}${orgJob.lastError ? ` (${orgJob.lastError})` : ""}` : "no organization job yet")}
          ${item(directories.length > 0, "Directory", `${directories.length} directory(ies)`)}
          ${item(firstPush, "First push received", firstPush ? "the IdP has sent requests" : "waiting for the IdP")}
          ${item(org.activeMappingVersion !== null, "Mapping applied", org.activeMappingVersion !== null ? `version ${org.activeMappingVersion}` : "the default mapping is in use")}
          ${item("pending", "Action reachable", "the Post-Login Action calls /hooks/auth0/post-login; check it with scim-bridge doctor")}
        </ul>
        <p><a href="/console/orgs/${enc(org.slug)}/setup-links">Send the customer a setup link</a></p>`,
      { nav: ctx.orgNav(org.slug) },
    );
  });

  routes.get("/orgs/:org/setup-links", async (ctx) => setupLinksPage(ctx));
  routes.post("/orgs/:org/setup-links", async (ctx) => {
    requireOperator(ctx);
    const expires = str((ctx.req.body as Record<string, unknown>).expires);
    const made = await ctx.call<{ url: string; expiresAt: string }>(
      "post",
      `/organizations/${enc(ctx.param("org"))}/setup-links`,
      { body: expires ? { expires } : {} },
    );
    await setupLinksPage(ctx, made);
  });
  routes.post("/orgs/:org/setup-links/:id/revoke", async (ctx) => {
    requireOperator(ctx);
    await ctx.call("post", `/organizations/${enc(ctx.param("org"))}/setup-links/revoke`, {
      body: { id: ctx.param("id") },
    });
    ctx.redirect(`/console/orgs/${enc(ctx.param("org"))}/setup-links`, "link-revoked");
  });

  routes.get("/orgs/:org/mapping", async (ctx) => mappingPage(ctx));
  routes.post("/orgs/:org/mapping", async (ctx) => {
    requireOperator(ctx);
    const b = ctx.req.body as Record<string, unknown>;
    const text = String(b.document ?? "");
    const intent = String(b.intent ?? "check");
    const checked = checkMappingFile(text, "mapping.yaml");
    if (!checked.ok) return mappingPage(ctx, { text, issues: checked.issues });
    const org = ctx.param("org");
    if (intent === "apply") {
      await ctx.call("post", `/organizations/${enc(org)}/mappings`, {
        body: { mapping: checked.mapping, ...(str(b.comment) ? { comment: str(b.comment) } : {}) },
      });
      return ctx.redirect(`/console/orgs/${enc(org)}/mapping`, "mapping-applied");
    }
    const preview = await ctx.call<PreviewView>("post", `/organizations/${enc(org)}/mappings/preview`, {
      body: { mapping: checked.mapping, limit: 20 },
    });
    return mappingPage(ctx, { text, preview });
  });
  routes.post("/orgs/:org/mapping/:version/activate", async (ctx) => {
    requireOperator(ctx);
    await ctx.call("post", `/organizations/${enc(ctx.param("org"))}/mappings/${enc(ctx.param("version"))}/activate`);
    ctx.redirect(`/console/orgs/${enc(ctx.param("org"))}/mapping`, "mapping-activated");
  });

  routes.get("/jobs", async (ctx) => {
    requireOperator(ctx);
    const [summary, dead, orgs] = await Promise.all([
      ctx.call<{
        groups: { organizationId: string; state: string; lane: string; count: number; lagSeconds: number }[];
      }>("get", "/jobs/summary"),
      ctx.call<{ jobs: JobView[] }>("get", "/jobs/dead", { query: { limit: "100" } }),
      ctx.call<{ organizations: OrgView[] }>("get", "/organizations"),
    ]);
    const slug = (id: string) => orgs.organizations.find((o) => o.id === id)?.slug ?? id;
    ctx.render(
      "Job health",
      html`<h2>Queued and running work</h2>
        ${
          summary.groups.length === 0
            ? html`<p>Nothing queued: every organization has converged.</p>`
            : html`<div class="scroll">
                <table>
                  <thead>
                    <tr>
                      <th scope="col">Organization</th>
                      <th scope="col">Lane</th>
                      <th scope="col">State</th>
                      <th scope="col">Jobs</th>
                      <th scope="col">Oldest change waiting</th>
                    </tr>
                  </thead>
                  <tbody>
                    ${summary.groups.map(
                      (g) =>
                        html`<tr>
                          <td>${slug(g.organizationId)}</td>
                          <td>${g.lane}</td>
                          <td>${g.state}</td>
                          <td>${g.count}</td>
                          <td>${g.lagSeconds} s</td>
                        </tr>`,
                    )}
                  </tbody>
                </table>
              </div>`
        }
        <h2>Dead letters</h2>
        ${
          dead.jobs.length === 0
            ? html`<p>No dead jobs.</p>`
            : html`<div class="scroll">
                <table>
                  <thead>
                    <tr>
                      <th scope="col">Job</th>
                      <th scope="col">Organization</th>
                      <th scope="col">Subject</th>
                      <th scope="col">Attempts</th>
                      <th scope="col">Last error</th>
                      <th scope="col"><span class="muted">Action</span></th>
                    </tr>
                  </thead>
                  <tbody>
                    ${dead.jobs.map(
                      (j) =>
                        html`<tr>
                          <td>${j.id} (${j.kind}, ${j.lane})</td>
                          <td>${slug(j.organizationId)}</td>
                          <td><code>${j.subjectId}</code></td>
                          <td>${j.attempts}</td>
                          <td>${j.lastError ?? ""}</td>
                          <td>
                            <form method="post" action="/console/jobs/${j.id}/retry">
                              ${csrfField(ctx.csrf)}<button type="submit" aria-label="Retry job ${j.id}">Retry</button>
                            </form>
                          </td>
                        </tr>`,
                    )}
                  </tbody>
                </table>
              </div>`
        }`,
      { nav: ctx.operatorNav() },
    );
  });
  routes.post("/jobs/:id/retry", async (ctx) => {
    requireOperator(ctx);
    await ctx.call("post", `/jobs/${enc(ctx.param("id"))}/retry`);
    ctx.redirect("/console/jobs", "retried");
  });

  routes.get("/guard", async (ctx) => {
    requireOperator(ctx);
    const got = await ctx.call<{
      paused: { organization: { id: string; slug: string }; pause: { reason: string; trippedAt: string } }[];
    }>("get", "/guard");
    ctx.render(
      "Mass-deprovision guard",
      html`<p>
          When a directory deactivates or deletes an unusual share of an organization at once, irreversible Auth0
          operations pause until an operator decides. Blocking and sign-out already went ahead.
        </p>
        ${
          got.paused.length === 0
            ? html`<p>No organization is paused.</p>`
            : html`<ul>
                ${got.paused.map(
                  (p) =>
                    html`<li>
                      <strong>${p.organization.slug}</strong> since ${formatTime(p.pause.trippedAt)}: ${p.pause.reason}
                      <form method="post" action="/console/guard/${enc(p.organization.slug)}/approve" class="inline">
                        ${csrfField(ctx.csrf)}<button type="submit" class="danger">Approve (run them)</button>
                      </form>
                      <form method="post" action="/console/guard/${enc(p.organization.slug)}/reject" class="inline">
                        ${csrfField(ctx.csrf)}<button type="submit" class="secondary">Reject (keep undone)</button>
                      </form>
                    </li>`,
                )}
              </ul>`
        }`,
      { nav: ctx.operatorNav() },
    );
  });
  for (const decision of ["approve", "reject"] as const) {
    routes.post(`/guard/:org/${decision}`, async (ctx) => {
      requireOperator(ctx);
      await ctx.call("post", `/organizations/${enc(ctx.param("org"))}/guard/${decision}`);
      ctx.redirect("/console/guard", decision === "approve" ? "approved" : "rejected");
    });
  }

  routes.get("/health", async (ctx) => {
    requireOperator(ctx);
    const text = ctx.deps.metricsText ? await ctx.deps.metricsText() : "";
    ctx.render("Auth0 budget and deprovision latency", healthBody(text), { nav: ctx.operatorNav() });
  });
}

function orgTable(orgs: OrgView[]): Html {
  if (orgs.length === 0) return html`<p>No organization yet.</p>`;
  return html`<div class="scroll">
    <table>
      <thead>
        <tr>
          <th scope="col">Organization</th>
          <th scope="col">Auth0 organization</th>
          <th scope="col">Model</th>
          <th scope="col">Mapping</th>
          <th scope="col">Created</th>
        </tr>
      </thead>
      <tbody>
        ${orgs.map(
          (o) =>
            html`<tr>
              <td>
                <a href="/console/orgs/${enc(o.slug)}">${o.displayName ?? o.slug}</a>
                <span class="muted">(${o.slug})</span>
              </td>
              <td><code>${o.auth0OrgId ?? "pending"}</code></td>
              <td>${o.userModel}</td>
              <td>${o.activeMappingVersion ?? "default"}</td>
              <td>${formatTime(o.createdAt)}</td>
            </tr>`,
        )}
      </tbody>
    </table>
  </div>`;
}

function createForm(ctx: Ctx): Html {
  return html`<h2>Onboard an organization</h2>
    <form method="post" action="/console/orgs">
      ${csrfField(ctx.csrf)} <label for="o-slug">Slug (Auth0 organization name)</label
      ><input id="o-slug" name="slug" required pattern="[a-z0-9_-]{1,50}" aria-describedby="o-slug-hint" />
      <p id="o-slug-hint" class="muted">Lower-case letters, digits, - and _.</p>
      <label for="o-name">Display name</label><input id="o-name" name="displayName" maxlength="255" />
      <label for="o-model">User model</label
      ><select id="o-model" name="userModel">
        <option value="isolated">isolated (users belong to this organization only)</option>
        <option value="shared">shared (users may belong to several)</option>
      </select>
      <label for="o-conn">Auth0 connection</label
      ><input id="o-conn" name="connection" placeholder="Username-Password-Authentication" /> <br /><button
        type="submit"
      >
        Create organization
      </button>
    </form>`;
}

async function setupLinksPage(ctx: Ctx, made?: { url: string; expiresAt: string }): Promise<void> {
  requireOperator(ctx);
  const org = ctx.param("org");
  const { organization } = await ctx.call<{ organization: OrgView }>("get", `/organizations/${enc(org)}`);
  const { links } = await ctx.call<{
    links: {
      id: string;
      state: string;
      createdBy: string;
      createdAt: string;
      expiresAt: string;
      lastUsedAt: string | null;
    }[];
  }>("get", `/organizations/${enc(organization.id)}/setup-links`);
  ctx.render(
    `Setup links of ${organization.slug}`,
    html`${
        made
          ? html`<section aria-labelledby="new-link">
              <h2 id="new-link">New setup link</h2>
              <p class="notice ok" role="status">
                Send this link to the customer's IT admin. It is shown only once; it expires
                ${formatTime(made.expiresAt)}.
              </p>
              ${copyable("setup-url", made.url, true)}
            </section>`
          : ""
      }
      <p>
        A setup link lets the customer's IT admin, without an account, connect this organization's Okta or Entra: SCIM
        URL, token, guided steps, and whether pushes arrive. Nothing else.
      </p>
      <form method="post" action="/console/orgs/${enc(organization.slug)}/setup-links">
        ${csrfField(ctx.csrf)}<label for="l-exp">Expires after</label
        ><select id="l-exp" name="expires">
          <option value="24h">24 hours</option>
          <option value="72h" selected>3 days</option>
          <option value="7d">7 days</option></select
        ><br /><button type="submit">Create a setup link</button>
      </form>
      <h2>Links</h2>
      ${
        links.length === 0
          ? html`<p>None yet.</p>`
          : html`<div class="scroll">
              <table>
                <thead>
                  <tr>
                    <th scope="col">Link</th>
                    <th scope="col">State</th>
                    <th scope="col">Created</th>
                    <th scope="col">Expires</th>
                    <th scope="col">Last opened</th>
                    <th scope="col"><span class="muted">Action</span></th>
                  </tr>
                </thead>
                <tbody>
                  ${links.map(
                    (l) =>
                      html`<tr>
                        <td><code>${l.id.slice(0, 8)}</code></td>
                        <td>${l.state}</td>
                        <td>${formatTime(l.createdAt)} by ${l.createdBy}</td>
                        <td>${formatTime(l.expiresAt)}</td>
                        <td>${formatTime(l.lastUsedAt)}</td>
                        <td>
                          ${l.state === "active" ? html`<form method="post" action="/console/orgs/${enc(organization.slug)}/setup-links/${enc(l.id)}/revoke">${csrfField(ctx.csrf)}<button type="submit" class="danger" aria-label="Revoke link ${l.id.slice(0, 8)}">Revoke</button></form>` : ""}
                        </td>
                      </tr>`,
                  )}
                </tbody>
              </table>
            </div>`
      }`,
    { nav: ctx.orgNav(organization.slug) },
  );
}

interface PreviewView {
  activeVersion: number | null;
  total: number;
  changed: Record<string, number>;
  withProblems: number;
  users: { userId: string; userName: string; changes: Record<string, unknown>; problems: string[] }[];
  usersTruncated: boolean;
}

function describeChange(kind: string, c: unknown): Html {
  const v = c as Record<string, unknown>;
  if (kind === "roles") {
    const r = v as { added: string[]; removed: string[] };
    return html`${r.added.map((x) => html`<span class="diff-add">+ ${x}</span> `)}${r.removed.map((x) => html`<span class="diff-del">− ${x}</span> `)}`;
  }
  if (kind === "membership" || kind === "blocked")
    return html`<span class="diff-del">− ${String(v.before)}</span> <span class="diff-add">+ ${String(v.after)}</span>`;
  return html`<code>${JSON.stringify(c).slice(0, 200)}</code>`;
}

async function mappingPage(
  ctx: Ctx,
  state: {
    text?: string;
    issues?: { path: string; message: string; line?: number; column?: number }[];
    preview?: PreviewView;
  } = {},
): Promise<void> {
  requireOperator(ctx);
  const orgRef = ctx.param("org");
  const [{ organization }, active, history] = await Promise.all([
    ctx.call<{ organization: OrgView }>("get", `/organizations/${enc(orgRef)}`),
    ctx.call<{ version: number | null; mapping: unknown }>("get", `/organizations/${enc(orgRef)}/mappings/active`),
    ctx.call<{
      activeVersion: number | null;
      versions: { version: number; createdBy: string; createdAt: string; comment: string | null }[];
    }>("get", `/organizations/${enc(orgRef)}/mappings`),
  ]);
  const base = `/console/orgs/${enc(organization.slug)}/mapping`;
  const text = state.text ?? stringify(active.mapping);
  const p = state.preview;
  ctx.render(
    `Mapping of ${organization.slug}`,
    html`<p>
        Active: ${active.version === null ? "the default mapping" : `version ${active.version}`}. Check and preview
        before applying: applying re-reconciles every user of the organization.
      </p>
      ${
        state.issues
          ? html`<section aria-labelledby="issues">
              <h2 id="issues">Problems</h2>
              <div role="alert">
                <ul class="issues">
                  ${state.issues.map((i) => html`<li>line ${i.line ?? 1}, column ${i.column ?? 1} (<code>${i.path}</code>): ${i.message}</li>`)}
                </ul>
              </div>
            </section>`
          : ""
      }
      ${
        p
          ? html`<section aria-labelledby="preview">
              <h2 id="preview">
                Preview against ${p.activeVersion === null ? "the default mapping" : `version ${p.activeVersion}`}
              </h2>
              <p role="status">
                ${p.changed.users ?? 0} of ${p.total} user(s) would change: membership ${p.changed.membership ?? 0},
                roles ${p.changed.roles ?? 0}, profile ${p.changed.profile ?? 0}, metadata ${p.changed.metadata ?? 0},
                blocked ${p.changed.blocked ?? 0}. ${p.withProblems} with problems.
              </p>
              ${
                p.users.length > 0
                  ? html`<div class="scroll">
                      <table>
                        <caption class="muted">
                          Sample of changed users${p.usersTruncated ? " (first 20)" : ""}
                        </caption>
                        <thead>
                          <tr>
                            <th scope="col">User</th>
                            <th scope="col">Changes</th>
                            <th scope="col">Problems</th>
                          </tr>
                        </thead>
                        <tbody>
                          ${p.users.map(
                            (u) =>
                              html`<tr>
                                <td>${u.userName}</td>
                                <td>
                                  ${Object.entries(u.changes).map(([k, c]) => html`<div><strong>${k}</strong>: ${describeChange(k, c)}</div>`)}
                                </td>
                                <td>${u.problems.join("; ")}</td>
                              </tr>`,
                          )}
                        </tbody>
                      </table>
                    </div>`
                  : ""
              }
            </section>`
          : ""
      }
      <form method="post" action="${base}">
        ${csrfField(ctx.csrf)}<label for="m-doc">Mapping (YAML or JSON)</label
        ><textarea id="m-doc" name="document" rows="22" spellcheck="false">${text}</textarea>
        <label for="m-comment">Comment for the history</label><input id="m-comment" name="comment" maxlength="500" />
        <br /><button type="submit" name="intent" value="preview" class="secondary">Check and preview</button>
        <button type="submit" name="intent" value="apply">Apply</button>
      </form>
      <h2>History</h2>
      ${
        history.versions.length === 0
          ? html`<p>No version applied yet.</p>`
          : html`<div class="scroll">
              <table>
                <thead>
                  <tr>
                    <th scope="col">Version</th>
                    <th scope="col">Applied by</th>
                    <th scope="col">When</th>
                    <th scope="col">Comment</th>
                    <th scope="col"><span class="muted">Action</span></th>
                  </tr>
                </thead>
                <tbody>
                  ${history.versions.map(
                    (v) =>
                      html`<tr>
                        <td>
                          ${v.version}${history.activeVersion === v.version ? html` <span class="badge ok">active</span>` : ""}
                        </td>
                        <td>${v.createdBy}</td>
                        <td>${formatTime(v.createdAt)}</td>
                        <td>${v.comment ?? ""}</td>
                        <td>
                          ${history.activeVersion !== v.version ? html`<form method="post" action="${base}/${v.version}/activate">${csrfField(ctx.csrf)}<button type="submit" class="secondary" aria-label="Roll back to version ${v.version}">Roll back to this</button></form>` : ""}
                        </td>
                      </tr>`,
                  )}
                </tbody>
              </table>
            </div>`
      }`,
    { nav: ctx.orgNav(organization.slug), ...(state.issues ? { status: 400 } : {}) },
  );
}

/** Reads the Prometheus text the bridge already exports; no second source of truth. */
function healthBody(text: string): Html {
  if (!text) return html`<p>Metrics are not available in this process.</p>`;
  const samples = text.split("\n").filter((l) => l && !l.startsWith("#"));
  const pick = (prefix: string) => samples.filter((l) => l.startsWith(prefix));
  const budget = pick("scim_bridge_auth0_rate");
  const latency = pick("scim_bridge_deprovision_latency_seconds").filter((l) => /_(sum|count)\{/.test(l));
  const rows = (lines: string[]) =>
    html`<div class="scroll">
      <table>
        <thead>
          <tr>
            <th scope="col">Series</th>
            <th scope="col">Value</th>
          </tr>
        </thead>
        <tbody>
          ${lines.map((l) => {
            const i = l.lastIndexOf(" ");
            return html`<tr>
              <td><code>${l.slice(0, i)}</code></td>
              <td>${l.slice(i + 1)}</td>
            </tr>`;
          })}
        </tbody>
      </table>
    </div>`;
  return html`<h2>Auth0 rate budget</h2>
    ${budget.length ? rows(budget) : html`<p class="muted">No budget figures yet.</p>`}
    <h2>Deprovision latency per organization</h2>
    ${latency.length ? rows(latency) : html`<p class="muted">No deprovisioning measured yet.</p>`}`;
}
