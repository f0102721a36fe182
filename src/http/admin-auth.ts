import type { RequestHandler } from "express";
import type { Db } from "../directory/database.js";
import {
  bootstrapTokenId,
  hashAdminToken,
  touchAdminToken,
  verifyAdminToken,
  type AdminPrincipal,
  type AdminTokenCheck,
} from "../directory/admin-tokens.js";
import { runSync } from "../directory/store-op.js";
import { bearerAuth } from "./bearer.js";
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
  return bearerAuth<AdminPrincipal>(
    {
      realm: "scim-bridge-admin",
      refusal: failureMessages.unknown,
      now,
      verify: (_req, token, t) => {
        const check = runSync(db, verifyAdminToken(token, { bootstrapHash, now: t }));
        return check.ok ? check : { ok: false, message: failureMessages[check.reason] };
      },
      touch: (principal, t) => void runSync(db, touchAdminToken(principal.tokenId, t)),
      // The bootstrap token has no row to touch.
      tokenId: (principal) => (principal.tokenId === bootstrapTokenId ? undefined : principal.tokenId),
    },
    (_req, res, principal) => void (res.locals.admin = principal),
  );
}
