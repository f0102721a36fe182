import type { NextFunction, RequestHandler } from "express";
import {
  bootstrapTokenId,
  hashAdminToken,
  touchAdminToken,
  verifyAdminToken,
  type AdminPrincipal,
  type AdminTokenCheck,
} from "../directory/admin-tokens.js";
import type { SqlStore } from "../directory/sql.js";
import { bearerAuth, bearerToken, type BearerCheck } from "./bearer.js";
// Declares res.locals.admin, the principal this middleware sets.
import type {} from "../admin/access.js";

/**
 * Bearer authentication and authorization for the admin API, through the same bearer pipeline as
 * the SCIM routes (bearer.ts): every failure becomes an admin error with WWW-Authenticate.
 *
 * Authorization answers, by design:
 * - no, unknown, expired or revoked token → 401;
 * - an org-admin token on an operator route → 403. Which routes are operator-only is public (the
 *   OpenAPI document says so), and the check runs before any lookup, so a 403 reveals no data;
 * - an org-admin token naming another organization, or anything inside one → 404, exactly as for an
 *   organization that does not exist (docs/design.md, invariant 5; OWASP API1): ids do not leak.
 * The last two are the admin API's own policy (src/admin/access.ts and the route table).
 */

const failureMessages: Record<Exclude<AdminTokenCheck, { ok: true }>["reason"], string> = {
  unknown: "a valid admin bearer token is required",
  // Only the holder of the secret can learn these, so naming them costs nothing and saves support time.
  expired: "this admin token has expired; ask an operator for a new one",
  revoked: "this admin token has been revoked",
};

export interface AdminAuthOptions {
  store: SqlStore;
  /** BRIDGE_ADMIN_TOKEN: only its SHA-256 is kept. */
  bootstrapOperatorToken?: string;
  now?: () => number;
}

export function adminBearerAuth(options: AdminAuthOptions): RequestHandler {
  const { store } = options;
  const now = options.now ?? Date.now;
  if (options.bootstrapOperatorToken !== undefined && options.bootstrapOperatorToken.length < 32) {
    throw new Error("bootstrapOperatorToken must be at least 32 characters");
  }
  const bootstrapHash = options.bootstrapOperatorToken ? hashAdminToken(options.bootstrapOperatorToken) : undefined;
  // The shared bearer pipeline is synchronous: the token's row is read first, in one read unit, and
  // its answer handed to the pipeline, which runs to completion within this callback (so `checked`
  // and `touching` belong to one request at a time). No admin token is cached in the process:
  // every request reads its row, so a token revoked by any instance is refused at its next request.
  let checked: BearerCheck<AdminPrincipal> = { ok: false };
  let touching: Promise<void> | undefined;
  const authenticate = bearerAuth<AdminPrincipal>(
    {
      realm: "scim-bridge-admin",
      refusal: failureMessages.unknown,
      now,
      verify: () => checked,
      // At most once a minute per token (bearer.ts), in a write unit of its own, awaited before the route.
      touch: (principal, t) => void (touching = store.write(touchAdminToken(principal.tokenId, t))),
      // The bootstrap token has no row to touch.
      tokenId: (principal) => (principal.tokenId === bootstrapTokenId ? undefined : principal.tokenId),
    },
    (_req, res, principal) => void (res.locals.admin = principal),
  );
  return (req, res, next) => {
    const token = bearerToken(req);
    if (token === undefined) return authenticate(req, res, next);
    store.read(verifyAdminToken(token, { bootstrapHash, now: now() })).then((check) => {
      checked = check.ok ? check : { ok: false, message: failureMessages[check.reason] };
      touching = undefined;
      authenticate(req, res, ((err?: unknown) => {
        const touched = touching;
        checked = { ok: false };
        touching = undefined;
        if (err !== undefined || touched === undefined) return next(err);
        touched.then(() => next(), next);
      }) as NextFunction);
    }, next);
  };
}
