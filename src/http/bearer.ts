import type { Request, RequestHandler, Response } from "express";
import passport from "passport";
import { Strategy as BearerStrategy } from "passport-http-bearer";
import { unauthorized } from "../errors.js";

/**
 * The one bearer-token pipeline of the SCIM and admin routes, through passport-http-bearer with a
 * custom callback: passport's own failure is a plain-text 401, so every failure becomes
 * unauthorized(), which the error middleware renders in the route's error shape with
 * WWW-Authenticate.
 */

/** last_used_at is written at most this often per token, so that reads stay almost free of writes. */
const touchIntervalMs = 60_000;

/** RFC 6750 §2.1, and RFC 7644 §7.4 for SCIM: a token is accepted from the Authorization header only. */
const fromAuthorizationHeader = (req: Request, token: string): boolean => {
  const header = req.get("authorization") ?? "";
  return /^bearer\s+/i.test(header) && header.replace(/^bearer\s+/i, "") === token;
};

export type BearerCheck<P> = { ok: true; principal: P } | { ok: false; message?: string };

export interface BearerVerifier<P> {
  /** The realm of the WWW-Authenticate challenge. */
  realm: string;
  /** What a refusal says when the check names no reason of its own. */
  refusal: string;
  /** Checks a presented secret for this request at `now`. */
  verify(req: Request, token: string, now: number): BearerCheck<P>;
  /** Records the token's last use; called at most once a minute per token. Omitted for tokens with no row. */
  touch(principal: P, now: number): void;
  /** The id touch() is throttled by, or undefined for a token that is never touched. */
  tokenId(principal: P): string | undefined;
  now?: () => number;
}

export function bearerAuth<P>(
  v: BearerVerifier<P>,
  onAuthenticated: (req: Request, res: Response, principal: P) => void,
): RequestHandler {
  const now = v.now ?? Date.now;
  const lastTouched = new Map<string, number>();
  // passport hands the callback its own challenge string, not ours: keep the reason per request.
  const reasons = new WeakMap<Request, string>();
  const authenticator = new passport.Authenticator();
  type Done = (err: unknown, principal?: P | false) => void;
  authenticator.use(
    "bearer",
    new BearerStrategy({ passReqToCallback: true, realm: v.realm }, (req: Request, token: string, done: Done) => {
      try {
        if (!fromAuthorizationHeader(req, token)) return done(null, false);
        const t = now();
        const check = v.verify(req, token, t);
        if (!check.ok) {
          if (check.message) reasons.set(req, check.message);
          return done(null, false);
        }
        const id = v.tokenId(check.principal);
        if (id !== undefined && t - (lastTouched.get(id) ?? 0) > touchIntervalMs) {
          lastTouched.set(id, t);
          v.touch(check.principal, t);
        }
        return done(null, check.principal);
      } catch (err) {
        return done(err);
      }
    }),
  );

  return (req, res, next) => {
    const callback = (err: unknown, principal: P | false | undefined): void => {
      if (err) return next(err);
      if (!principal) return next(unauthorized(reasons.get(req) ?? v.refusal));
      onAuthenticated(req, res, principal);
      next();
    };
    authenticator.authenticate("bearer", { session: false }, callback)(req, res, next);
  };
}
