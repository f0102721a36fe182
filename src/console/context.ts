import type { Request, Response } from "express";
import type { Logger } from "pino";
import type { AdminPrincipal } from "../directory/admin-tokens.js";
import type { Actor } from "../directory/audit.js";
import type { SqlStore } from "../directory/sql.js";
import type { AdminCall, Method } from "../admin/routes.js";
import { forbidden } from "../errors.js";
import { page, type Html, type NavItem, type PageOptions } from "./html.js";
import type { ConsoleOidcSettings } from "./oidc.js";
import type { ConsolePrincipal, ConsoleSession } from "./session.js";

export interface ConsoleDeps {
  store: SqlStore;
  publicUrl: string;
  log: Logger;
  /** The admin API's routes, run in-process (adminService): every read and change goes through them. */
  admin: { invoke(method: Method, path: string, call: AdminCall): Promise<unknown> };
  /** Auth0 sign-in; without it only admin-token sign-in and setup links work. */
  oidc?: ConsoleOidcSettings;
  /** BRIDGE_ADMIN_TOKEN, accepted on the token sign-in form like any operator token. */
  bootstrapOperatorToken?: string;
  /** HMAC key of stored session ids (CONSOLE_SESSION_SECRET). */
  sessionSecret: string;
  idleMinutes?: number;
  absoluteHours?: number;
  /** Answers whether this user's Auth0 state and deprovision figures exist (the metrics registry); optional. */
  metricsText?: () => Promise<string>;
  now?: () => number;
}

export type SignedIn = Exclude<ConsolePrincipal, { kind: "anonymous" }>;

/**
 * Admin routes a setup-link session may run: its organization's directories, their tokens (rotate
 * only) and SCIM request log. Nothing about users, audit, mappings or other organizations.
 */
const setupAllowed: [Method, RegExp][] = [
  ["get", /^\/organizations\/[^/]+$/],
  ["get", /^\/organizations\/[^/]+\/directories$/],
  ["get", /^\/organizations\/[^/]+\/directories\/[^/]+\/tokens$/],
  ["post", /^\/organizations\/[^/]+\/directories\/[^/]+\/tokens\/rotate$/],
  ["get", /^\/organizations\/[^/]+\/directories\/[^/]+\/scim-requests$/],
];

export function adminPrincipalOf(p: SignedIn): { principal: AdminPrincipal; actor: Actor } {
  switch (p.kind) {
    case "operator": {
      const tokenId = p.via === "token" ? p.tokenId! : `console:${p.sub}`;
      return {
        principal: { tokenId, scope: "operator", organizationId: null },
        actor: { type: "operator", id: tokenId },
      };
    }
    case "org_admin": {
      const tokenId = p.via === "token" ? p.tokenId! : `console:${p.sub}`;
      return {
        principal: { tokenId, scope: "org_admin", organizationId: p.organizationId },
        actor: { type: "org_admin", id: tokenId },
      };
    }
    case "setup": {
      const tokenId = `setup-link:${p.linkId}`;
      return {
        principal: { tokenId, scope: "org_admin", organizationId: p.organizationId },
        actor: { type: "org_admin", id: tokenId },
      };
    }
  }
}

export class Ctx {
  constructor(
    readonly req: Request,
    readonly res: Response,
    readonly deps: ConsoleDeps,
    readonly session: ConsoleSession,
    readonly principal: SignedIn,
  ) {}

  /** A path parameter (Express 5 types them as string | string[]). */
  param(name: string): string {
    const v = (this.req.params as Record<string, string | string[] | undefined>)[name];
    return Array.isArray(v) ? (v[0] ?? "") : (v ?? "");
  }

  get csrf(): string {
    return this.session.csrf;
  }

  /** Runs an admin route as this session's principal: the console can do no more than the API allows it. */
  async call<T = Record<string, unknown>>(
    method: Method,
    path: string,
    input: { query?: Record<string, unknown>; body?: unknown } = {},
  ): Promise<T> {
    if (this.principal.kind === "setup" && !setupAllowed.some(([m, re]) => m === method && re.test(path))) {
      throw forbidden("a setup link only sets up its organization's directories");
    }
    const { principal, actor } = adminPrincipalOf(this.principal);
    return (await this.deps.admin.invoke(method, path, {
      principal,
      actor,
      query: input.query,
      body: input.body,
      requestId: this.res.locals.requestId,
    })) as T;
  }

  get who(): string {
    const p = this.principal;
    if (p.kind === "setup") return "Setup link";
    return `${p.name} (${p.kind === "operator" ? "operator" : "organization admin"})`;
  }

  /** Navigation for an organization's pages (customer admins and operators looking at one organization). */
  orgNav(org: string): NavItem[] {
    const base = `/console/orgs/${encodeURIComponent(org)}`;
    const items: NavItem[] = [
      { href: `${base}/users`, label: "Users" },
      { href: `${base}/directories`, label: "Directories & SCIM" },
      { href: `${base}/audit`, label: "Audit trail" },
    ];
    if (this.principal.kind === "operator") {
      items.unshift({ href: "/console/orgs", label: "All organizations" }, { href: base, label: "Overview" });
      items.push({ href: `${base}/mapping`, label: "Mapping" }, { href: `${base}/setup-links`, label: "Setup links" });
    }
    return items;
  }

  operatorNav(): NavItem[] {
    return [
      { href: "/console/orgs", label: "Organizations" },
      { href: "/console/jobs", label: "Jobs" },
      { href: "/console/guard", label: "Guard approvals" },
      { href: "/console/health", label: "Budget & latency" },
    ];
  }

  render(title: string, body: Html, o: Partial<PageOptions> & { status?: number } = {}): void {
    const notice = o.notice ?? noticeOf(this.req);
    this.res
      .status(o.status ?? 200)
      .type("html")
      .send(
        page({
          title,
          body,
          who: this.who,
          csrf: this.csrf,
          path: this.req.originalUrl.split("?")[0],
          ...o,
          ...(notice ? { notice } : {}),
        }),
      );
  }

  /** Post/redirect/get. The notice is a fixed message picked by code, so a crafted link cannot put words on the page. */
  redirect(path: string, done?: keyof typeof notices): void {
    const url = new URL(path, "http://console.invalid");
    if (done) url.searchParams.set("done", done);
    this.res.redirect(303, url.pathname + url.search);
  }
}

export const notices = {
  blocked: "The user is blocked. Auth0 follows in the deprovision lane; their next sign-in is denied.",
  unblocked: "The hold is released. Auth0 now follows what the IdP says about the user.",
  "signed-out": "The user's Auth0 sessions and refresh tokens were revoked.",
  "token-revoked": "The token is revoked; an IdP still using it gets 401.",
  "link-revoked": "The setup link is revoked; pages opened with it stop working at once.",
  "mapping-applied": "The mapping is applied; the organization is being reconciled in the background.",
  "mapping-activated": "That mapping version is active again; the organization is being reconciled.",
  retried: "The job is queued again.",
  approved: "Approved: the paused irreversible operations run now.",
  rejected: "Rejected: the paused operations stay undone.",
} as const;

function noticeOf(req: Request): PageOptions["notice"] {
  const done = (req.query as Record<string, unknown>).done;
  return typeof done === "string" && done in notices
    ? { kind: "ok", text: notices[done as keyof typeof notices] }
    : undefined;
}

/** A console page handler, and the table the page modules register theirs on. */
export type Page = (ctx: Ctx) => unknown;
export interface PageRoutes {
  get(path: string, handler: Page): void;
  post(path: string, handler: Page): void;
}
