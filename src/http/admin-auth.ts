import type { Request, RequestHandler } from "express";
import passport from "passport";
import { Strategy as BearerStrategy } from "passport-http-bearer";
import type { Db } from "../directory/database.js";
import { bootstrapTokenId, hashAdminToken, touchAdminToken, verifyAdminToken, type AdminPrincipal, type AdminTokenCheck } from "../directory/admin-tokens.js";
import { unauthorized } from "../errors.js";
// Declares res.locals.admin, the principal this middleware sets.
import type {} from "../admin/access.js";

/**
 * Bearer authentication and authorization for the admin API, through passport-http-bearer
 * with a custom callback, like the SCIM strategy (src/http/auth.ts): every failure becomes
 * unauthorized(), which the error middleware renders as an admin error with WWW-Authenticate.
 *
 * Authorization answers, by design:
 * - no, unknown, expired or revoked token → 401;
 * - an org-admin token on an operator route → 403. Which routes are operator-only is public (the
 *   OpenAPI document says so), and the check runs before any lookup, so a 403 reveals no data;
 * - an org-admin token naming another organization, or anything inside one → 404, exactly as for an
 *   organization that does not exist (docs/design.md, invariant 5; OWASP API1): ids do not leak.
 * The last two are the admin API's own policy (src/admin/access.ts and the route table).
 */

/** last_used_at is written at most this often per token, so that reads stay almost free of writes. */
const touchIntervalMs = 60_000;

const fromAuthorizationHeader = (req: Request, token: string): boolean => {
  const header = req.get("authorization") ?? "";
  return /^bearer\s+/i.test(header) && header.replace(/^bearer\s+/i, "") === token;
};

const failureMessages: Record<Exclude<AdminTokenCheck, { ok: true }>["reason"], string> = {
  unknown: "a valid admin bearer token is required",
  // Only the holder of the secret can learn these, so naming them costs nothing and saves support time.
  expired: "this admin token has expired; ask an operator for a new one",
  revoked: "this admin token has been revoked",
};

export interface AdminAuthOptions {
  db: Db;
  /** BRIDGE_ADMIN_TOKEN: only its SHA-256 is kept. */
  bootstrapOperatorToken?: string;
  now?: () => number;
}

export function adminBearerAuth(options: AdminAuthOptions): RequestHandler {
  const { db } = options;
  const now = options.now ?? Date.now;
  if (options.bootstrapOperatorToken !== undefined && options.bootstrapOperatorToken.length < 32) {
    throw new Error("bootstrapOperatorToken must be at least 32 characters");
  }
  const bootstrapHash = options.bootstrapOperatorToken ? hashAdminToken(options.bootstrapOperatorToken) : undefined;
  const lastTouched = new Map<string, number>();
  // passport hands the callback its own challenge string, not ours: keep the reason per request.
  const reasons = new WeakMap<Request, string>();
  const authenticator = new passport.Authenticator();
  type Done = (err: unknown, principal?: AdminPrincipal | false) => void;
  authenticator.use(
    "admin-bearer",
    new BearerStrategy({ passReqToCallback: true, realm: "scim-bridge-admin" }, (req: Request, token: string, done: Done) => {
      try {
        if (!fromAuthorizationHeader(req, token)) return done(null, false);
        const t = now();
        const check = verifyAdminToken(db, token, { bootstrapHash, now: t });
        if (!check.ok) {
          reasons.set(req, failureMessages[check.reason]);
          return done(null, false);
        }
        const { principal } = check;
        if (principal.tokenId !== bootstrapTokenId && t - (lastTouched.get(principal.tokenId) ?? 0) > touchIntervalMs) {
          lastTouched.set(principal.tokenId, t);
          touchAdminToken(db, principal.tokenId, t);
        }
        return done(null, principal);
      } catch (err) {
        return done(err);
      }
    }),
  );

  return (req, res, next) => {
    const callback = (err: unknown, principal: AdminPrincipal | false | undefined): void => {
      if (err) return next(err);
      if (!principal) return next(unauthorized(reasons.get(req) ?? failureMessages.unknown));
      res.locals.admin = principal;
      next();
    };
    authenticator.authenticate("admin-bearer", { session: false }, callback)(req, res, next);
  };
}
