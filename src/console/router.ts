import { randomBytes } from "node:crypto";
import express, {
  type ErrorRequestHandler,
  type Request,
  type RequestHandler,
  type Response,
  type Router,
} from "express";
import { bootstrapTokenId, getAdminToken, hashAdminToken, verifyAdminToken } from "../directory/admin-tokens.js";
import { getOrganization } from "../directory/organizations.js";
import { redeemSetupLink, setupLinkUsable } from "../directory/setup-links.js";
import { isBridgeError } from "../errors.js";
import { toBridgeError } from "../http/errors.js";
import { tokenRateLimit } from "../http/rate-limit.js";
import { consoleCss, consoleJs } from "./assets.js";
import { Ctx, type ConsoleDeps, type Page, type PageRoutes, type SignedIn } from "./context.js";
import { customerPages } from "./customer-pages.js";
import { csrfField, html, page } from "./html.js";
import { ConsoleOidc } from "./oidc.js";
import { operatorPages } from "./operator-pages.js";
import { csrfMatches, SessionStore, type ConsoleSession } from "./session.js";
import { setupPages } from "./setup-pages.js";

export type { ConsoleDeps } from "./context.js";

declare global {
  // eslint-disable-next-line @typescript-eslint/no-namespace
  namespace Express {
    interface Locals {
      consoleSession?: ConsoleSession;
    }
  }
}

/** How long a sign-in may take between leaving for Auth0 and coming back. */
const loginTransactionMs = 10 * 60_000;

/**
 * The web console at /console, rendered on the server: plain HTML forms that work without script
 * (one small same-origin script adds copy buttons and a live status check), so there is no build step
 * and the Content-Security-Policy allows no inline code at all. Every read and change goes through
 * the admin API's own routes (ConsoleDeps.admin) as the signed-in principal.
 */
export function consoleRouter(deps: ConsoleDeps): Router {
  const publicUrl = deps.publicUrl.replace(/\/+$/, "");
  const publicOrigin = new URL(publicUrl).origin;
  const now = deps.now ?? Date.now;
  const secure = publicUrl.startsWith("https:");
  if (deps.sessionSecret.length < 32) throw new Error("consoleRouter: sessionSecret must be at least 32 characters");
  const sessions = new SessionStore({
    store: deps.store,
    secret: deps.sessionSecret,
    secure,
    idleMs: (deps.idleMinutes ?? 480) * 60_000,
    absoluteMs: (deps.absoluteHours ?? 12) * 3_600_000,
    now,
  });
  const oidc = deps.oidc ? new ConsoleOidc(deps.oidc, `${publicUrl}/console/callback`) : undefined;
  const bootstrapHash = deps.bootstrapOperatorToken ? hashAdminToken(deps.bootstrapOperatorToken) : undefined;

  const router = express.Router();
  const csp = [
    "default-src 'none'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self' data:",
    "connect-src 'self'",
    // Chrome applies form-action to the redirect after a POST: sign-out continues to Auth0's /oidc/logout.
    `form-action 'self'${oidc ? ` ${oidc.origin}` : ""}`,
    "frame-ancestors 'none'",
    "base-uri 'none'",
  ].join("; ");
  router.use((_req, res, next) => {
    res.setHeader("Content-Security-Policy", csp);
    res.setHeader("X-Content-Type-Options", "nosniff");
    res.setHeader("Referrer-Policy", "same-origin"); // setup-link tokens are in URLs: never sent to another site
    res.setHeader("X-Frame-Options", "DENY");
    res.setHeader("Cross-Origin-Opener-Policy", "same-origin");
    res.setHeader("Cache-Control", "no-store");
    if (secure) res.setHeader("Strict-Transport-Security", "max-age=31536000");
    next();
  });
  router.get(
    "/assets/console.css",
    (_req, res) => void res.setHeader("Cache-Control", "public, max-age=3600").type("css").send(consoleCss),
  );
  router.get(
    "/assets/console.js",
    (_req, res) => void res.setHeader("Cache-Control", "public, max-age=3600").type("js").send(consoleJs),
  );
  router.use(express.urlencoded({ extended: false, limit: "512kb", parameterLimit: 50 }));

  // Session, then CSRF on every state-changing request (synchroniser token, plus Origin when sent).
  router.use((async (req, res, next) => {
    const session = await sessions.load(req);
    res.locals.consoleSession = session;
    if (req.method !== "GET" && req.method !== "HEAD") {
      // Browsers send "Origin: null" in some privacy settings; the synchroniser token is the defence there.
      const origin = req.get("origin");
      const body = (req.body ?? {}) as Record<string, unknown>;
      if ((origin && origin !== "null" && origin !== publicOrigin) || !csrfMatches(session, body._csrf)) {
        return void publicPage(
          res,
          403,
          "This form has expired",
          html`<p>
              The form was not sent from a current console page (missing or stale CSRF token, or another site). Nothing
              was changed.
            </p>
            <p><a href="/console">Back to the console</a></p>`,
        );
      }
    }
    next();
  }) as RequestHandler);

  // --- Sign-in -----------------------------------------------------------------------------------
  router.get("/", async (req, res) => {
    const session = res.locals.consoleSession;
    if (session && session.principal.kind !== "anonymous") return res.redirect(303, homeOf(session.principal));
    const s = session ?? (await sessions.start(res, { kind: "anonymous" }));
    publicPage(
      res,
      200,
      "Sign in",
      html`${
          oidc
            ? html`<section aria-labelledby="customer">
                  <h2 id="customer">Customer administrators</h2>
                  <p>Sign in with your company's identity provider, through your organization.</p>
                  <form method="get" action="/console/login">
                    <label for="org">Organization</label
                    ><input
                      id="org"
                      name="org"
                      required
                      pattern="[a-z0-9_-]{1,50}"
                      autocomplete="organization"
                      aria-describedby="org-hint"
                    />
                    <p id="org-hint" class="muted">Your organization's short name, e.g. <code>acme</code>.</p>
                    <button type="submit">Continue to sign-in</button>
                  </form>
                </section>
                ${
                  deps.oidc?.operatorOrganization
                    ? html`<section aria-labelledby="ops">
                        <h2 id="ops">Operators</h2>
                        <p><a class="button" href="/console/login?operator=1">Sign in as an operator</a></p>
                      </section>`
                    : ""
                }`
            : html`<p class="muted">Auth0 sign-in is not configured (CONSOLE_CLIENT_ID); use an admin token.</p>`
        }
        <section aria-labelledby="token">
          <h2 id="token">Admin token</h2>
          <form method="post" action="/console/login/token">
            ${csrfField(s.csrf)}<label for="admin-token">Admin API token</label
            ><input id="admin-token" name="token" type="password" required autocomplete="off" /><br /><button
              type="submit"
              class="secondary"
            >
              Sign in with the token
            </button>
          </form>
        </section>`,
    );
  });

  router.get("/login", async (req, res) => {
    if (!oidc) return publicPage(res, 404, "Auth0 sign-in is not configured", html`<p><a href="/console">Back</a></p>`);
    const q = req.query as Record<string, unknown>;
    let auth0OrgId: string | undefined;
    let target: string;
    if (q.operator !== undefined) {
      auth0OrgId = deps.oidc?.operatorOrganization;
      target = "operator";
    } else {
      const org =
        typeof q.org === "string" ? await deps.store.read(getOrganization(q.org.trim().toLowerCase())) : undefined;
      auth0OrgId = org?.auth0OrgId ?? undefined;
      target = org?.id ?? "";
    }
    if (!auth0OrgId) {
      return publicPage(
        res,
        404,
        "Unknown organization",
        html`<p>No organization by that name can sign in here yet. Check the name with your vendor.</p>
          <p><a href="/console">Back</a></p>`,
      );
    }
    const start = await oidc.start(auth0OrgId);
    const tx = { verifier: start.verifier, state: start.state, nonce: start.nonce, auth0OrgId, target, at: now() };
    const existing = res.locals.consoleSession;
    if (existing && existing.principal.kind === "anonymous") await sessions.update(existing, { kind: "anonymous", tx });
    else await sessions.start(res, { kind: "anonymous", tx }, existing);
    res.redirect(303, start.url);
  });

  router.get("/callback", async (req, res) => {
    const session = res.locals.consoleSession;
    const tx = session?.principal.kind === "anonymous" ? session.principal.tx : undefined;
    if (!oidc || !session || !tx || now() - tx.at > loginTransactionMs) {
      return publicPage(
        res,
        400,
        "Sign-in expired",
        html`<p>This sign-in was not started here or took too long. <a href="/console">Start again</a>.</p>`,
      );
    }
    await sessions.update(session, { kind: "anonymous" }); // one use of the transaction
    const outcome = await oidc.finish(new URL(req.originalUrl, publicUrl), tx);
    const refuse = (why: string) =>
      publicPage(
        res,
        403,
        "Access refused",
        html`<p>${why}</p>
          <p>
            If you should have access, ask your organization's administrator to give you the
            <code>${deps.oidc!.adminRole}</code> role in your organization.
          </p>
          <p><a href="/console">Back to sign-in</a></p>`,
      );
    if (!outcome.ok) return refuse(`The sign-in was refused: ${outcome.reason}.`);
    if (!outcome.roles.includes(deps.oidc!.adminRole))
      return refuse(`You are signed in as ${outcome.name}, but you are not an administrator here.`);
    let principal: SignedIn;
    if (tx.target === "operator") {
      principal = { kind: "operator", sub: outcome.sub, name: outcome.name, via: "oidc", idToken: outcome.idToken };
    } else {
      const org = await deps.store.read(getOrganization(tx.target));
      if (!org || org.auth0OrgId !== outcome.orgId) return refuse("The organization changed during sign-in.");
      principal = {
        kind: "org_admin",
        organizationId: org.id,
        orgSlug: org.slug,
        sub: outcome.sub,
        name: outcome.name,
        via: "oidc",
        idToken: outcome.idToken,
      };
    }
    deps.log.info(
      {
        sub: outcome.sub,
        kind: principal.kind,
        organizationId: principal.kind === "org_admin" ? principal.organizationId : null,
      },
      "console sign-in",
    );
    await sessions.start(res, principal, session);
    res.redirect(303, homeOf(principal));
  });

  router.post(
    "/login/token",
    (req, res, next) => perAddress(req, res, next),
    async (req, res) => {
      const token = String((req.body as Record<string, unknown>).token ?? "");
      // One read unit: the token and its organization.
      const { check, org } = await deps.store.read(
        (function* () {
          const check = yield* verifyAdminToken(token, { bootstrapHash, now: now() });
          const orgId = check.ok ? check.principal.organizationId : null;
          return { check, org: orgId === null ? undefined : yield* getOrganization(orgId) };
        })(),
      );
      if (!check.ok)
        return publicPage(
          res,
          401,
          "Sign-in refused",
          html`<p>That admin token is ${check.reason === "unknown" ? "not valid" : check.reason}.</p>
            <p><a href="/console">Back</a></p>`,
        );
      const p = check.principal;
      let principal: SignedIn;
      if (p.scope === "operator")
        principal = {
          kind: "operator",
          sub: p.tokenId,
          name: p.tokenId === bootstrapTokenId ? "bootstrap token" : `token ${p.tokenId.slice(0, 8)}`,
          via: "token",
          tokenId: p.tokenId,
        };
      else {
        principal = {
          kind: "org_admin",
          organizationId: org!.id,
          orgSlug: org!.slug,
          sub: p.tokenId,
          name: `token ${p.tokenId.slice(0, 8)}`,
          via: "token",
          tokenId: p.tokenId,
        };
      }
      await sessions.start(res, principal, res.locals.consoleSession);
      res.redirect(303, homeOf(principal));
    },
  );

  router.post("/logout", async (_req, res) => {
    const session = res.locals.consoleSession;
    await sessions.destroy(res, session);
    const p = session?.principal;
    const idToken = p && (p.kind === "operator" || p.kind === "org_admin") ? p.idToken : undefined;
    // RP-initiated logout also ends the Auth0 session, so the next sign-in asks again.
    const target = idToken && oidc ? await oidc.logoutUrl(idToken, `${publicUrl}/console`) : undefined;
    res.redirect(303, target ?? "/console");
  });

  // --- Setup links: the IT admin opens the link; it becomes a session scoped to that organization's directories.
  // Opening links and token sign-in are unauthenticated: 20 tries per 15 minutes per client address.
  const perAddress = tokenRateLimit({ ratePerSecond: 20 / 900, burst: 20, keyOf: (req) => req.ip ?? "unknown", now });
  router.get("/setup/:token", perAddress, async (req, res) => {
    const linkToken = String(req.params.token ?? "");
    const use = { ip: req.ip, userAgent: req.get("user-agent"), requestId: res.locals.requestId };
    // One write unit: the link redeemed and its organization read.
    const { result, org } = await deps.store.write(
      (function* () {
        const result = yield* redeemSetupLink(linkToken, use, now());
        return { result, org: result.ok ? yield* getOrganization(result.link.organizationId) : undefined };
      })(),
    );
    if (!result.ok) {
      const why =
        result.reason === "unknown"
          ? "is not valid"
          : `has ${result.reason === "expired" ? "expired" : "been revoked"}`;
      return publicPage(
        res,
        result.reason === "unknown" ? 404 : 410,
        "This setup link does not work",
        html`<p>This setup link ${why}. Ask your vendor for a new link.</p>`,
      );
    }
    // The link is checked again on every request, so its expiry or revocation ends this session with a clear page.
    await sessions.start(
      res,
      { kind: "setup", organizationId: org!.id, orgSlug: org!.slug, linkId: result.link.id },
      res.locals.consoleSession,
    );
    res.redirect(303, "/console/setup");
  });

  // --- Everything below needs a signed-in principal that is still valid.
  router.use((async (req, res, next) => {
    const session = res.locals.consoleSession;
    if (!session || session.principal.kind === "anonymous") {
      if (req.method === "GET" && !req.get("accept")?.includes("application/json"))
        return void res.redirect(303, "/console");
      return void publicPage(
        res,
        401,
        "Signed out",
        html`<p>Your session has ended. <a href="/console">Sign in again</a>.</p>`,
      );
    }
    const p = session.principal;
    const t = now();
    let valid = true;
    if (p.kind === "setup") valid = await deps.store.read(setupLinkUsable(p.linkId, t));
    else if (p.via === "token") {
      if (p.tokenId === bootstrapTokenId) valid = bootstrapHash !== undefined;
      else {
        const row = await deps.store.read(getAdminToken(p.tokenId!));
        valid = !!row && row.revokedAt === null && (row.expiresAt === null || row.expiresAt > t);
      }
    }
    if (!valid) {
      // The session is kept (it can do nothing), so that every tab of it, and the page's background
      // status check, keeps explaining why instead of falling back to a sign-in page.
      return void publicPage(
        res,
        401,
        "Access ended",
        html`<p>
          The ${p.kind === "setup" ? "setup link" : "admin token"} behind this session has expired or was revoked.
        </p>`,
      );
    }
    next();
  }) as RequestHandler);

  const routes: PageRoutes = {
    get: (path, handler) => router.get(path, (req, res) => run(req, res, handler)),
    post: (path, handler) => router.post(path, (req, res) => run(req, res, handler)),
  };
  const run = async (req: Request, res: Response, handler: Page): Promise<void> => {
    const session = res.locals.consoleSession!;
    await handler(new Ctx(req, res, deps, session, session.principal as SignedIn));
  };
  setupPages(routes);
  customerPages(routes);
  operatorPages(routes);

  router.use((_req, res) =>
    publicPage(res, 404, "Not found", html`<p>There is no such page. <a href="/console">Console home</a></p>`),
  );
  router.use(((err, _req, res, next) => {
    if (res.headersSent) return next(err);
    const known = toBridgeError(err);
    if (!known) {
      deps.log.error({ err, requestId: res.locals.requestId }, "console: unexpected error");
      return publicPage(
        res,
        500,
        "Something went wrong",
        html`<p>The console could not complete this request. Request id: <code>${res.locals.requestId}</code>.</p>`,
      );
    }
    const title =
      known.kind === "notFound"
        ? "Not found"
        : known.kind === "forbidden"
          ? "Not allowed"
          : known.status >= 500
            ? "Try again shortly"
            : "That did not work";
    const session = res.locals.consoleSession;
    publicPage(
      res,
      known.status,
      title,
      html`<p>${isBridgeError(known) ? known.message : ""}</p>
        <p>
          <a href="${session && session.principal.kind !== "anonymous" ? homeOf(session.principal) : "/console"}"
            >Back to the console</a
          >
        </p>`,
    );
  }) as ErrorRequestHandler);
  return router;
}

function homeOf(p: SignedIn | { kind: "anonymous" }): string {
  switch (p.kind) {
    case "operator":
      return "/console/orgs";
    case "org_admin":
      return `/console/orgs/${encodeURIComponent(p.orgSlug)}/users`;
    case "setup":
      return "/console/setup";
    default:
      return "/console";
  }
}

function publicPage(res: Response, status: number, title: string, body: ReturnType<typeof html>): void {
  res.status(status).type("html").send(page({ title, body }));
}

/** A random session secret when none is configured: sessions then end when the process restarts. */
export const ephemeralSessionSecret = (): string => randomBytes(32).toString("hex");
