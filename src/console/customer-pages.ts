import type { Ctx, PageRoutes } from "./context.js";
import {
  copyable,
  firstRequestIndicator,
  oneTimeToken,
  requestsTable,
  setupGuides,
  statusJson,
  tokensTable,
  type DirectoryView,
  type ScimRequestView,
  type TokenView,
} from "./directory-views.js";
import { csrfField, formatTime, html, toCsv, type Html } from "./html.js";

/**
 * The customer admin's pages (an operator may open them for any organization): users with search,
 * filters and keyset paging; a user's page with block, unblock and sign-out; directories with the SCIM
 * URL, tokens and setup steps; the audit trail and SCIM request log with CSV export.
 */
interface OrgView {
  id: string;
  slug: string;
  displayName: string | null;
}
interface UserRow {
  id: string;
  directoryId: string;
  userName: string;
  displayName: string | null;
  externalId: string | null;
  email: string | null;
  active: boolean;
  held: boolean;
  holds: { id: string; reason: string; placedBy: string; placedAt: string }[];
  createdAt: string;
  modifiedAt: string;
  sync: {
    status: string;
    auth0UserId: string | null;
    lastAppliedAt: string | null;
    applied: {
      exists: boolean;
      member: boolean;
      blocked: boolean;
      roles: string[];
      accessRevoked: boolean;
      deleted: boolean;
    } | null;
    lastError: string | null;
    lastErrorAt: string | null;
    pendingJob: { state: string; lane: string; attempts: number } | null;
    deadJob: { lastError: string | null } | null;
  };
}
interface AuditView {
  id: number;
  at: string;
  actor: { type: string; id: string };
  directoryId: string | null;
  action: string;
  target: { type: string; id: string | null };
  before: unknown;
  after: unknown;
  requestId: string | null;
}

const str = (v: unknown): string | undefined => (typeof v === "string" && v !== "" ? v : undefined);
const enc = encodeURIComponent;

async function orgOf(ctx: Ctx): Promise<{ org: OrgView; directories: DirectoryView[]; base: string }> {
  const got = await ctx.call<{ organization: OrgView; directories: DirectoryView[] }>(
    "get",
    `/organizations/${enc(ctx.param("org"))}`,
  );
  return { org: got.organization, directories: got.directories, base: `/console/orgs/${enc(got.organization.slug)}` };
}

const statusBadge = (u: UserRow): Html =>
  u.held
    ? html`<span class="badge error">blocked (hold)</span>`
    : u.active
      ? html`<span class="badge ok">active</span>`
      : html`<span class="badge">inactive</span>`;

const syncText = (u: UserRow): string => {
  if (u.sync.lastError) return `error: ${u.sync.lastError}`;
  if (u.sync.pendingJob) return `${u.sync.pendingJob.state} (${u.sync.pendingJob.lane})`;
  return u.sync.status;
};

function select(name: string, label: string, current: string | undefined, options: [string, string][]): Html {
  return html`<div>
    <label for="f-${name}">${label}</label
    ><select id="f-${name}" name="${name}">
      <option value="">Any</option>
      ${options.map(([v, l]) => html`<option value="${v}" ${current === v ? html` selected` : ""}>${l}</option>`)}
    </select>
  </div>`;
}

export function customerPages(routes: PageRoutes): void {
  routes.get("/orgs/:org/users", async (ctx) => {
    const { org, directories, base } = await orgOf(ctx);
    const q = ctx.req.query as Record<string, unknown>;
    const filters = {
      q: str(q.q),
      state: str(q.state),
      sync: str(q.sync),
      group: str(q.group),
      directory: str(q.directory),
    };
    const query: Record<string, unknown> = { limit: "50" };
    for (const [k, v] of Object.entries(filters)) if (v) query[k] = v;
    if (str(q.after)) query.after = str(q.after);
    const [list, groupList] = await Promise.all([
      ctx.call<{ users: UserRow[]; next: string | null }>("get", `/organizations/${enc(org.id)}/users`, { query }),
      ctx.call<{ groups: { id: string; displayName: string }[] }>("get", `/organizations/${enc(org.id)}/groups`, {
        query: { limit: "500" },
      }),
    ]);
    const nextParams = new URLSearchParams(
      Object.entries(filters).filter((e): e is [string, string] => e[1] !== undefined),
    );
    if (list.next) nextParams.set("after", list.next);
    ctx.render(
      `Users of ${org.displayName ?? org.slug}`,
      html`<form method="get" action="${base}/users" class="filters" role="search" aria-label="Filter users">
          <div>
            <label for="f-q">Search</label
            ><input id="f-q" name="q" value="${filters.q ?? ""}" placeholder="name, email, userName or externalId" />
          </div>
          ${select("state", "Status", filters.state, [
            ["active", "Active"],
            ["inactive", "Inactive (IdP)"],
            ["held", "Blocked (hold)"],
          ])}
          ${select("sync", "Sync state", filters.sync, [
            ["error", "Auth0 error"],
            ["pending", "Work queued"],
            ["unlinked", "Not linked to Auth0 yet"],
          ])}
          ${select(
            "group",
            "Group",
            filters.group,
            groupList.groups.map((g) => [g.id, g.displayName]),
          )}
          ${
            directories.length > 1
              ? select(
                  "directory",
                  "Directory",
                  filters.directory,
                  directories.map((d) => [d.id, d.name ?? d.id]),
                )
              : ""
          }
          <div><button type="submit">Apply filters</button></div>
        </form>
        <div class="scroll">
          <table>
            <caption class="muted">
              ${list.users.length} user(s) on this page, ordered by id
            </caption>
            <thead>
              <tr>
                <th scope="col">User</th>
                <th scope="col">Email</th>
                <th scope="col">Status</th>
                <th scope="col">Sync state</th>
                <th scope="col">Auth0 user</th>
                <th scope="col">Last applied</th>
              </tr>
            </thead>
            <tbody>
              ${list.users.map(
                (u) =>
                  html`<tr>
                    <td>
                      <a href="${base}/users/${enc(u.id)}">${u.displayName ?? u.userName}</a><br /><span class="muted"
                        >${u.userName}</span
                      >
                    </td>
                    <td>${u.email ?? ""}</td>
                    <td>${statusBadge(u)}</td>
                    <td>${syncText(u)}</td>
                    <td><code>${u.sync.auth0UserId ?? "—"}</code></td>
                    <td>${formatTime(u.sync.lastAppliedAt)}</td>
                  </tr>`,
              )}
            </tbody>
          </table>
        </div>
        ${list.users.length === 0 ? html`<p>No users match.</p>` : ""}
        <p>
          ${str(q.after) ? html`<a href="${base}/users?${new URLSearchParams(Object.entries(filters).filter((e): e is [string, string] => e[1] !== undefined)).toString()}">First page</a> · ` : ""}${list.next ? html`<a href="${base}/users?${nextParams.toString()}" rel="next">Next page</a>` : html`<span class="muted">End of the list</span>`}
        </p>`,
      { nav: ctx.orgNav(org.slug) },
    );
  });

  routes.get("/orgs/:org/users/:userId", async (ctx) => {
    const { org, base } = await orgOf(ctx);
    const id = ctx.param("userId");
    const [detail, audit] = await Promise.all([
      ctx.call<{
        user: UserRow;
        scim: unknown;
        groups: { id: string; displayName: string }[];
        holdHistory: {
          reason: string;
          placedBy: string;
          placedAt: string;
          releasedAt: string | null;
          releasedBy: string | null;
        }[];
      }>("get", `/organizations/${enc(org.id)}/users/${enc(id)}`),
      ctx.call<{ entries: AuditView[] }>("get", `/organizations/${enc(org.id)}/audit`, {
        query: { targetId: id, limit: "50" },
      }),
    ]);
    const u = detail.user;
    const userBase = `${base}/users/${enc(u.id)}`;
    const applied = u.sync.applied;
    ctx.render(
      u.displayName ?? u.userName,
      html`<dl class="facts">
          <dt>userName</dt>
          <dd>${u.userName}</dd>
          <dt>Email</dt>
          <dd>${u.email ?? "—"}</dd>
          <dt>Status</dt>
          <dd>${statusBadge(u)}</dd>
          <dt>externalId</dt>
          <dd>${u.externalId ?? "—"}</dd>
          <dt>Groups</dt>
          <dd>${detail.groups.map((g) => g.displayName).join(", ") || "—"}</dd>
          <dt>Created / modified</dt>
          <dd>${formatTime(u.createdAt)} / ${formatTime(u.modifiedAt)}</dd>
        </dl>
        <h2>Auth0</h2>
        <dl class="facts">
          <dt>Auth0 user</dt>
          <dd><code>${u.sync.auth0UserId ?? "not linked yet"}</code></dd>
          <dt>Sync state</dt>
          <dd>${syncText(u)}</dd>
          <dt>Blocked in Auth0</dt>
          <dd>${applied ? (applied.blocked ? "yes" : "no") : "—"}</dd>
          <dt>Member of the organization</dt>
          <dd>${applied ? (applied.member ? "yes" : "no") : "—"}</dd>
          <dt>Roles</dt>
          <dd>${applied?.roles.join(", ") || "—"}</dd>
          <dt>Sessions revoked</dt>
          <dd>${applied ? (applied.accessRevoked ? "yes" : "no") : "—"}</dd>
          <dt>Last applied</dt>
          <dd>${formatTime(u.sync.lastAppliedAt)}</dd>
          ${
            u.sync.lastError
              ? html`<dt>Last error</dt>
                  <dd class="badge error">${u.sync.lastError} (${formatTime(u.sync.lastErrorAt)})</dd>`
              : ""
          }
        </dl>
        <h2>Actions</h2>
        ${
          u.held
            ? html`<form method="post" action="${userBase}/unblock">
                ${csrfField(ctx.csrf)}<label for="unblock-reason">Reason for unblocking (optional)</label
                ><input id="unblock-reason" name="reason" maxlength="500" /><br /><button type="submit">Unblock</button>
              </form>`
            : html`<form method="post" action="${userBase}/block">
                ${csrfField(ctx.csrf)}<label for="block-reason"
                  >Reason for blocking (required, kept in the audit trail)</label
                ><input id="block-reason" name="reason" required maxlength="500" /><br /><button
                  type="submit"
                  class="danger"
                >
                  Block user
                </button>
              </form>`
        }
        <form method="post" action="${userBase}/sign-out">
          ${csrfField(ctx.csrf)}<button type="submit" class="secondary">Sign out everywhere</button>
        </form>
        <h2>Blocks (holds)</h2>
        ${
          detail.holdHistory.length === 0
            ? html`<p class="muted">Never blocked.</p>`
            : html`<ul>
                ${detail.holdHistory.map((h) => html`<li>${formatTime(h.placedAt)}: “${h.reason}” by ${h.placedBy}${h.releasedAt ? ` — released ${formatTime(h.releasedAt)} by ${h.releasedBy ?? "?"}` : " — in force"}</li>`)}
              </ul>`
        }
        <h2>Timeline</h2>
        ${auditTable(audit.entries)}
        <h2>Attributes from the IdP</h2>
        <pre class="scroll" tabindex="0" aria-label="SCIM attributes">${JSON.stringify(detail.scim, null, 2)}</pre>`,
      { nav: ctx.orgNav(org.slug) },
    );
  });

  const userAction = (action: "block" | "unblock" | "sign-out", done: "blocked" | "unblocked" | "signed-out") =>
    routes.post(`/orgs/:org/users/:userId/${action}`, async (ctx) => {
      const { org, base } = await orgOf(ctx);
      const id = ctx.param("userId");
      const reason = str((ctx.req.body as Record<string, unknown>).reason);
      await ctx.call("post", `/organizations/${enc(org.id)}/users/${enc(id)}/${action}`, {
        body: action === "sign-out" ? {} : reason === undefined ? {} : { reason },
      });
      ctx.redirect(`${base}/users/${enc(id)}`, done);
    });
  userAction("block", "blocked");
  userAction("unblock", "unblocked");
  userAction("sign-out", "signed-out");

  routes.get("/orgs/:org/directories", async (ctx) => {
    const { org, directories, base } = await orgOf(ctx);
    ctx.render(
      `Directories and SCIM of ${org.displayName ?? org.slug}`,
      await directoriesBody(ctx, org, directories, base),
      { nav: ctx.orgNav(org.slug) },
    );
  });

  routes.post("/orgs/:org/directories/:dir/rotate", async (ctx) => {
    const { org, directories, base } = await orgOf(ctx);
    const dir = ctx.param("dir");
    const rotated = await ctx.call<{ token: string }>(
      "post",
      `/organizations/${enc(org.id)}/directories/${enc(dir)}/tokens/rotate`,
      { body: {} },
    );
    const d = directories.find((x) => x.id === dir)!;
    // Rendered, not redirected: the secret must never travel in a URL.
    ctx.render(
      `Directories and SCIM of ${org.displayName ?? org.slug}`,
      html`${oneTimeToken(rotated.token, d.scimBaseUrl)}${await directoriesBody(ctx, org, directories, base)}`,
      { nav: ctx.orgNav(org.slug) },
    );
  });

  routes.post("/orgs/:org/directories/:dir/tokens/:tokenId/revoke", async (ctx) => {
    const { org, base } = await orgOf(ctx);
    await ctx.call(
      "delete",
      `/organizations/${enc(org.id)}/directories/${enc(ctx.param("dir"))}/tokens/${enc(ctx.param("tokenId"))}`,
    );
    ctx.redirect(`${base}/directories`, "token-revoked");
  });

  routes.get("/orgs/:org/directories/:dir/status.json", async (ctx) => {
    const got = await ctx.call<{ requests: ScimRequestView[] }>(
      "get",
      `/organizations/${enc(ctx.param("org"))}/directories/${enc(ctx.param("dir"))}/scim-requests`,
      { query: { limit: "1" } },
    );
    ctx.res.json(statusJson(got.requests[0]));
  });

  routes.get("/orgs/:org/directories/:dir/requests", async (ctx) => {
    const { org, base } = await orgOf(ctx);
    const dir = ctx.param("dir");
    const q = ctx.req.query as Record<string, unknown>;
    const errorsOnly = q.errorsOnly === "true";
    const got = await ctx.call<{ requests: ScimRequestView[] }>(
      "get",
      `/organizations/${enc(org.id)}/directories/${enc(dir)}/scim-requests`,
      {
        query: { limit: q.format === "csv" ? "1000" : "200", ...(errorsOnly ? { errorsOnly: "true" } : {}) },
      },
    );
    if (q.format === "csv") {
      return sendCsv(
        ctx,
        `scim-requests-${dir}.csv`,
        ["at", "method", "path", "status", "scimType", "detail", "requestId", "durationMs"],
        got.requests.map((r) => [r.at, r.method, r.path, r.status, r.scimType, r.detail, r.requestId, r.durationMs]),
      );
    }
    const here = `${base}/directories/${enc(dir)}/requests`;
    ctx.render(
      "SCIM request log",
      html`<p>The last requests your IdP sent to this directory, newest first (at most 1,000 are kept).</p>
        <form method="get" action="${here}" class="filters">
          <div>
            <label
              ><input type="checkbox" name="errorsOnly" value="true" ${errorsOnly ? html` checked` : ""} /> Errors
              only</label
            >
          </div>
          <div><button type="submit">Apply</button></div>
        </form>
        <p><a href="${here}?format=csv${errorsOnly ? "&errorsOnly=true" : ""}">Download as CSV</a></p>
        ${requestsTable(got.requests)}`,
      { nav: ctx.orgNav(org.slug) },
    );
  });

  routes.get("/orgs/:org/audit", async (ctx) => {
    const { org, base } = await orgOf(ctx);
    const q = ctx.req.query as Record<string, unknown>;
    const filters = {
      action: str(q.action),
      actorType: str(q.actorType),
      since: str(q.since),
      until: str(q.until),
      targetId: str(q.targetId),
    };
    const query: Record<string, unknown> = { limit: q.format === "csv" ? "500" : "100" };
    for (const [k, v] of Object.entries(filters)) if (v) query[k] = k === "since" || k === "until" ? dayBound(v, k) : v;
    if (str(q.before)) query.before = str(q.before);
    const got = await ctx.call<{ entries: AuditView[]; next: number | null }>(
      "get",
      `/organizations/${enc(org.id)}/audit`,
      { query },
    );
    if (q.format === "csv") {
      return sendCsv(
        ctx,
        `audit-${org.slug}.csv`,
        [
          "id",
          "at",
          "actorType",
          "actorId",
          "action",
          "targetType",
          "targetId",
          "directoryId",
          "before",
          "after",
          "requestId",
        ],
        got.entries.map((e) => [
          e.id,
          e.at,
          e.actor.type,
          e.actor.id,
          e.action,
          e.target.type,
          e.target.id,
          e.directoryId,
          e.before,
          e.after,
          e.requestId,
        ]),
      );
    }
    const params = new URLSearchParams(
      Object.entries(filters).filter((e): e is [string, string] => e[1] !== undefined),
    );
    const next = new URLSearchParams(params);
    if (got.next) next.set("before", String(got.next));
    const csv = new URLSearchParams(params);
    csv.set("format", "csv");
    ctx.render(
      "Audit trail",
      html`<form method="get" action="${base}/audit" class="filters" aria-label="Filter the audit trail">
          <div>
            <label for="a-action">Action</label
            ><input
              id="a-action"
              name="action"
              value="${filters.action ?? ""}"
              placeholder="hold.place, or a prefix such as token."
            />
          </div>
          ${select("actorType", "Actor", filters.actorType, [
            ["directory", "Directory (IdP)"],
            ["org_admin", "Organization admin"],
            ["operator", "Operator"],
            ["system", "System"],
          ])}
          <div>
            <label for="a-since">From (date)</label
            ><input id="a-since" name="since" type="date" value="${filters.since ?? ""}" />
          </div>
          <div>
            <label for="a-until">To (date)</label
            ><input id="a-until" name="until" type="date" value="${filters.until ?? ""}" />
          </div>
          <div><button type="submit">Apply filters</button></div>
        </form>
        <p><a href="${base}/audit?${csv.toString()}">Download as CSV</a> (up to 500 entries)</p>
        ${auditTable(got.entries)}
        <p>
          ${got.next ? html`<a href="${base}/audit?${next.toString()}" rel="next">Older entries</a>` : html`<span class="muted">End of the trail</span>`}
        </p>`,
      { nav: ctx.orgNav(org.slug) },
    );
  });
}

/** A date input ("2026-12-06") becomes the start or end of that UTC day; anything else goes through as given. */
function dayBound(v: string, which: "since" | "until"): string {
  return /^\d{4}-\d{2}-\d{2}$/.test(v) ? `${v}T${which === "since" ? "00:00:00.000" : "23:59:59.999"}Z` : v;
}

function sendCsv(ctx: Ctx, filename: string, header: string[], rows: unknown[][]): void {
  ctx.res.setHeader("Content-Disposition", `attachment; filename="${filename.replace(/[^\w.-]/g, "_")}"`);
  ctx.res.type("text/csv; charset=utf-8").send(toCsv(header, rows));
}

export function auditTable(entries: AuditView[]): Html {
  if (entries.length === 0) return html`<p class="muted">No entries.</p>`;
  return html`<div class="scroll">
    <table>
      <thead>
        <tr>
          <th scope="col">Time</th>
          <th scope="col">Who</th>
          <th scope="col">Action</th>
          <th scope="col">Target</th>
          <th scope="col">Change</th>
        </tr>
      </thead>
      <tbody>
        ${entries.map(
          (e) =>
            html`<tr>
              <td>${formatTime(e.at)}</td>
              <td>${e.actor.type}<br /><code>${e.actor.id}</code></td>
              <td>${e.action}</td>
              <td>${e.target.type} <code>${e.target.id ?? ""}</code></td>
              <td><code>${e.after === null ? "" : JSON.stringify(e.after).slice(0, 200)}</code></td>
            </tr>`,
        )}
      </tbody>
    </table>
  </div>`;
}

async function directoriesBody(ctx: Ctx, org: OrgView, directories: DirectoryView[], base: string): Promise<Html> {
  const parts: Html[] = [];
  for (const d of directories) {
    const dirBase = `${base}/directories/${enc(d.id)}`;
    const [tokens, requests] = await Promise.all([
      ctx.call<{ tokens: TokenView[] }>("get", `/organizations/${enc(org.id)}/directories/${enc(d.id)}/tokens`),
      ctx.call<{ requests: ScimRequestView[] }>(
        "get",
        `/organizations/${enc(org.id)}/directories/${enc(d.id)}/scim-requests`,
        { query: { limit: "1" } },
      ),
    ]);
    parts.push(
      html`<section aria-labelledby="dir-${d.id}">
        <h2 id="dir-${d.id}">${d.name ?? "Directory"}</h2>
        <dl class="facts">
          <dt>SCIM base URL</dt>
          <dd>${copyable(`scim-url-${d.id}`, d.scimBaseUrl)}</dd>
          <dt>Users / groups</dt>
          <dd>${d.userCount} / ${d.groupCount}</dd>
        </dl>
        ${firstRequestIndicator(`${dirBase}/status.json`, requests.requests[0])}
        ${tokensTable(tokens.tokens, (t) => `${dirBase}/tokens/${enc(t.id)}/revoke`, ctx.csrf)}
        <form method="post" action="${dirBase}/rotate">
          ${csrfField(ctx.csrf)}<button type="submit">Rotate: issue a new token</button>
        </form>
        <p><a href="${dirBase}/requests">SCIM request log</a></p>
      </section>`,
    );
  }
  const first = directories[0];
  return html`${parts}${first ? setupGuides(first.scimBaseUrl) : html`<p>No directory yet.</p>`}`;
}
