import type { Request, RequestHandler, Response } from "express";
import { unauthorized } from "../errors.js";

/**
 * The one bearer-token pipeline of the SCIM and admin routes. Every failure becomes unauthorized(),
 * which the error middleware renders in the route's error shape with WWW-Authenticate.
 *
 * The header is parsed here rather than through passport-http-bearer: passport built an
 * authenticator, a strategy attempt and several closures per request, a measurable share of a
 * GET by id, for what is one regular expression. The accepted form is the one passport accepted
 * together with our header-only rule: exactly "Bearer <token>" (scheme in any case, one space, a
 * token without spaces).
 */

/** last_used_at is written at most this often per token, so that reads stay almost free of writes. */
const touchIntervalMs = 60_000;

/**
 * RFC 6750 §2.1, and RFC 7644 §7.4 for SCIM: a token is accepted from the Authorization header only
 * (never from the query string or a form body).
 */
const bearerHeader = /^bearer ([^ ]+)$/i;

/** The token of an `Authorization: Bearer …` header, or undefined. */
export function bearerToken(req: Request): string | undefined {
  const header = req.headers.authorization;
  if (header === undefined) return undefined;
  return bearerHeader.exec(header)?.[1];
}

export type BearerCheck<P> = { ok: true; principal: P } | { ok: false; message?: string };

export interface BearerVerifier<P> {
  /** The realm of the WWW-Authenticate challenge. */
  realm: string;
  /** What a refusal says when the check names no reason of its own. */
  refusal: string;
  /** Checks a presented secret for this request at `now` (in a unit of the store, for a SCIM token). */
  verify(req: Request, token: string, now: number): BearerCheck<P> | Promise<BearerCheck<P>>;
  /** Records the token's last use; called at most once a minute per token. Omitted for tokens with no row. */
  touch(principal: P, now: number): void | Promise<void>;
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
  const accept = (req: Request, res: Response, check: BearerCheck<P>, t: number): void | Promise<void> => {
    if (!check.ok) throw unauthorized(check.message ?? v.refusal);
    const id = v.tokenId(check.principal);
    let touched: void | Promise<void> = undefined;
    if (id !== undefined && t - (lastTouched.get(id) ?? 0) > touchIntervalMs) {
      lastTouched.set(id, t);
      touched = v.touch(check.principal, t);
    }
    if (touched) return touched.then(() => onAuthenticated(req, res, check.principal));
    onAuthenticated(req, res, check.principal);
  };
  return (req, res, next) => {
    const token = bearerToken(req);
    if (token === undefined) return next(unauthorized(v.refusal));
    const t = now();
    let done: void | Promise<void>;
    try {
      const check = v.verify(req, token, t);
      done = check instanceof Promise ? check.then((c) => accept(req, res, c, t)) : accept(req, res, check, t);
    } catch (err) {
      return next(err);
    }
    if (done) done.then(() => next(), next);
    else next();
  };
}
