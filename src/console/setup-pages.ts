import { forbidden } from "../errors.js";
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
import { csrfField, html, type Html } from "./html.js";

/**
 * What a customer's IT admin sees through a setup link: the organization's directories, the guided
 * Okta and Entra steps, a SCIM token to generate (shown once), and whether pushes arrive. Every call
 * runs as the link's principal, limited to these routes (see Ctx.call).
 */
function setupPrincipal(ctx: Ctx) {
  if (ctx.principal.kind !== "setup") throw forbidden("these pages are for setup links");
  return ctx.principal;
}

const enc = encodeURIComponent;

async function setupBody(ctx: Ctx, newToken?: { dir: string; token: string }): Promise<{ title: string; body: Html }> {
  const p = setupPrincipal(ctx);
  const got = await ctx.call<{
    organization: { displayName: string | null; slug: string };
    directories: DirectoryView[];
  }>("get", `/organizations/${enc(p.organizationId)}`);
  const parts: Html[] = [];
  for (const d of got.directories) {
    const [tokens, requests] = await Promise.all([
      ctx.call<{ tokens: TokenView[] }>(
        "get",
        `/organizations/${enc(p.organizationId)}/directories/${enc(d.id)}/tokens`,
      ),
      ctx.call<{ requests: ScimRequestView[] }>(
        "get",
        `/organizations/${enc(p.organizationId)}/directories/${enc(d.id)}/scim-requests`,
        { query: { limit: "20" } },
      ),
    ]);
    parts.push(
      html`<section aria-labelledby="dir-${d.id}">
        <h2 id="dir-${d.id}">Directory: ${d.name ?? d.id}</h2>
        ${newToken?.dir === d.id ? oneTimeToken(newToken.token, d.scimBaseUrl) : ""}
        <dl class="facts">
          <dt>SCIM base URL</dt>
          <dd>${copyable(`scim-url-${d.id}`, d.scimBaseUrl)}</dd>
        </dl>
        ${firstRequestIndicator(`/console/setup/directories/${enc(d.id)}/status.json`, requests.requests[0])}
        ${tokensTable(tokens.tokens)}
        <form method="post" action="/console/setup/directories/${enc(d.id)}/token">
          ${csrfField(ctx.csrf)}<button type="submit">Generate a SCIM token</button>
        </form>
        <h3>Latest requests from your IdP</h3>
        ${requestsTable(requests.requests)}
      </section>`,
    );
  }
  const name = got.organization.displayName ?? got.organization.slug;
  return {
    title: `Connect your identity provider to ${name}`,
    body: html`<p>
        This page was opened with a setup link from your vendor. It lets you connect ${name}'s Okta or Microsoft Entra
        ID and nothing else; it stops working when the link expires or is revoked.
      </p>
      <ol>
        <li>Generate a SCIM token below and copy it with the SCIM base URL.</li>
        <li>Follow the Okta or Entra steps.</li>
        <li>Watch for the first request from your IdP.</li>
      </ol>
      ${parts}${got.directories[0] ? setupGuides(got.directories[0].scimBaseUrl) : ""}`,
  };
}

export function setupPages(routes: PageRoutes): void {
  routes.get("/setup", async (ctx) => {
    const { title, body } = await setupBody(ctx);
    ctx.render(title, body);
  });

  routes.post("/setup/directories/:dir/token", async (ctx) => {
    const p = setupPrincipal(ctx);
    const dir = ctx.param("dir");
    const rotated = await ctx.call<{ token: string }>(
      "post",
      `/organizations/${enc(p.organizationId)}/directories/${enc(dir)}/tokens/rotate`,
      { body: {} },
    );
    const { title, body } = await setupBody(ctx, { dir, token: rotated.token });
    ctx.render(title, body);
  });

  routes.get("/setup/directories/:dir/status.json", async (ctx) => {
    const p = setupPrincipal(ctx);
    const got = await ctx.call<{ requests: ScimRequestView[] }>(
      "get",
      `/organizations/${enc(p.organizationId)}/directories/${enc(ctx.param("dir"))}/scim-requests`,
      { query: { limit: "1" } },
    );
    ctx.res.json(statusJson(got.requests[0]));
  });
}
