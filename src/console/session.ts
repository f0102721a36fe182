import { createHmac, randomBytes, timingSafeEqual } from "node:crypto";
import type { Request, Response } from "express";
import {
  consoleSessionNeedsWrite,
  deleteConsoleSession,
  findConsoleSession,
  loadConsoleSession,
  startConsoleSession,
  updateConsoleSessionPrincipal,
} from "../directory/console-sessions.js";
import type { SqlStore } from "../directory/sql.js";

/**
 * Console sessions (OWASP Session Management Cheat Sheet): a random 256-bit id in an HttpOnly,
 * SameSite=Lax cookie (Secure and __Host- prefixed outside plain-http localhost), kept server-side as
 * an HMAC so that sign-out and revocation end it at once and a copy of the database cannot replay it.
 * An idle timeout and an absolute lifetime both apply; the id changes at sign-in (no fixation). Each
 * session carries a synchroniser CSRF token that every state-changing request must echo.
 */
export type ConsolePrincipal =
  | { kind: "operator"; sub: string; name: string; via: "oidc" | "token"; tokenId?: string; idToken?: string }
  | {
      kind: "org_admin";
      organizationId: string;
      orgSlug: string;
      sub: string;
      name: string;
      via: "oidc" | "token";
      tokenId?: string;
      idToken?: string;
    }
  | { kind: "setup"; organizationId: string; orgSlug: string; linkId: string }
  /** Before sign-in: the OIDC transaction (PKCE verifier, state, nonce, requested organization). */
  | {
      kind: "anonymous";
      tx?: {
        verifier: string;
        state: string;
        nonce: string;
        auth0OrgId: string;
        target: "operator" | string;
        at: number;
      };
    };

export interface ConsoleSession {
  idHash: string;
  principal: ConsolePrincipal;
  csrf: string;
  createdAt: number;
  expiresAt: number;
}

export interface SessionOptions {
  store: SqlStore;
  secret: string;
  /** Secure cookie and __Host- prefix (PUBLIC_URL is https). */
  secure: boolean;
  idleMs: number;
  absoluteMs: number;
  now: () => number;
}

export class SessionStore {
  readonly cookieName: string;

  constructor(private readonly o: SessionOptions) {
    this.cookieName = o.secure ? "__Host-scim-console" : "scim-console";
  }

  private hash(id: string): string {
    return createHmac("sha256", this.o.secret).update(id).digest("hex");
  }

  private cookieOf(req: Request): string | undefined {
    const header = req.headers.cookie ?? "";
    for (const part of header.split(";")) {
      const [k, ...v] = part.trim().split("=");
      if (k === this.cookieName) return v.join("=");
    }
    return undefined;
  }

  /** The live session of the request, or undefined (expired ones are deleted). Touches last-seen. */
  async load(req: Request): Promise<ConsoleSession | undefined> {
    const id = this.cookieOf(req);
    if (!id || !/^[A-Za-z0-9_-]{43}$/.test(id)) return undefined;
    const idHash = this.hash(id);
    const now = this.o.now();
    // A page view is one read unit and takes no write lock unless it must write (an expired session
    // to delete, last-seen to move, at most once a minute); that write unit reads the row again and
    // decides anew, since another request or instance may have moved it meanwhile. Nothing is cached
    // in the process: every request reads the row, so a sign-out on any instance ends the session.
    let row = await this.o.store.read(findConsoleSession(idHash));
    if (row && consoleSessionNeedsWrite(row, now, this.o.idleMs))
      row = await this.o.store.write(loadConsoleSession(idHash, now, this.o.idleMs));
    if (!row) return undefined;
    return {
      idHash,
      principal: JSON.parse(row.principal) as ConsolePrincipal,
      csrf: row.csrfToken,
      createdAt: row.createdAt,
      expiresAt: row.expiresAt,
    };
  }

  /** A new session (new id, new CSRF token); the old one, if any, is destroyed. */
  async start(
    res: Response,
    principal: ConsolePrincipal,
    previous?: ConsoleSession,
    maxMs?: number,
  ): Promise<ConsoleSession> {
    const now = this.o.now();
    const id = randomBytes(32).toString("base64url");
    const csrf = randomBytes(32).toString("base64url");
    const expiresAt = now + Math.min(this.o.absoluteMs, maxMs ?? Infinity);
    const idHash = this.hash(id);
    await this.o.store.write(
      startConsoleSession(
        { idHash, principal: JSON.stringify(principal), csrfToken: csrf, createdAt: now, lastSeenAt: now, expiresAt },
        previous?.idHash,
      ),
    );
    res.append(
      "Set-Cookie",
      `${this.cookieName}=${id}; Path=/; HttpOnly; SameSite=Lax${this.o.secure ? "; Secure" : ""}; Max-Age=${Math.ceil((expiresAt - now) / 1000)}`,
    );
    return { idHash, principal, csrf, createdAt: now, expiresAt };
  }

  async update(session: ConsoleSession, principal: ConsolePrincipal): Promise<void> {
    await this.o.store.write(updateConsoleSessionPrincipal(session.idHash, JSON.stringify(principal)));
    session.principal = principal;
  }

  async destroy(res: Response, session: ConsoleSession | undefined): Promise<void> {
    if (session) await this.o.store.write(deleteConsoleSession(session.idHash));
    res.append(
      "Set-Cookie",
      `${this.cookieName}=; Path=/; HttpOnly; SameSite=Lax${this.o.secure ? "; Secure" : ""}; Max-Age=0`,
    );
  }
}

/** Constant-time comparison of the CSRF token a form sent with the session's. */
export function csrfMatches(session: ConsoleSession | undefined, sent: unknown): boolean {
  if (!session || typeof sent !== "string" || sent.length !== session.csrf.length) return false;
  return timingSafeEqual(Buffer.from(sent), Buffer.from(session.csrf));
}
