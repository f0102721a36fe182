import type { Request, RequestHandler, Response } from "express";
import passport from "passport";
import { Strategy as BearerStrategy } from "passport-http-bearer";
import type { Db } from "../directory/database.js";
import { touchScimToken, verifyScimToken, type ScimPrincipal } from "../directory/tokens.js";
import { unauthorized } from "../errors.js";

/**
 * last_used_at is written at most this often per token, through the bookkeeping connection (no fsync
 * of its own), so that reads stay free of durable writes.
 */
const touchIntervalMs = 60_000;

/** RFC 7644 §7.4 / reliability notes: a token is accepted from the Authorization header only. */
const fromAuthorizationHeader = (req: Request, token: string): boolean => {
  const header = req.get("authorization") ?? "";
  return /^bearer\s+/i.test(header) && header.replace(/^bearer\s+/i, "") === token;
};

/**
 * Bearer authentication for a directory's SCIM routes, through passport-http-bearer with a custom
 * callback: passport's own failure is a plain-text 401, so every failure becomes unauthorized(), which
 * the error middleware renders as a SCIM Error with WWW-Authenticate. A token of another directory is
 * refused exactly like an unknown one (docs/design.md, invariant 5), so URLs reveal nothing.
 */
export function scimBearerAuth(
  db: Db,
  onAuthenticated: (req: Request, res: Response, principal: ScimPrincipal) => void,
  bookkeeping: Db = db,
): RequestHandler {
  const authenticator = new passport.Authenticator();
  const lastTouched = new Map<string, number>();
  authenticator.use(
    "scim-bearer",
    new BearerStrategy({ passReqToCallback: true, realm: "scim-bridge" }, (req: Request, token: string, done: (err: unknown, principal?: ScimPrincipal | false) => void) => {
      try {
        if (!fromAuthorizationHeader(req, token)) return done(null, false);
        const now = Date.now();
        const principal = verifyScimToken(db, token, now);
        if (!principal) return done(null, false);
        if (now - (lastTouched.get(principal.tokenId) ?? 0) > touchIntervalMs) {
          lastTouched.set(principal.tokenId, now);
          touchScimToken(bookkeeping, principal.tokenId, now);
        }
        return done(null, principal);
      } catch (err) {
        return done(err);
      }
    }),
  );

  return (req, res, next) => {
    const callback = (err: unknown, principal: ScimPrincipal | false | undefined): void => {
      if (err) return next(err);
      if (!principal) return next(unauthorized("a valid bearer token for this directory is required"));
      if (principal.directoryId !== req.params.directoryId) {
        return next(unauthorized("a valid bearer token for this directory is required"));
      }
      onAuthenticated(req, res, principal);
      next();
    };
    authenticator.authenticate("scim-bearer", { session: false }, callback)(req, res, next);
  };
}
