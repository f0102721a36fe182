import type { Request, RequestHandler, Response } from "express";
import type { Db } from "../directory/database.js";
import { touchScimToken, verifyScimToken, type ScimPrincipal } from "../directory/tokens.js";
import { runSync } from "../directory/store-op.js";
import { bearerAuth } from "./bearer.js";

/**
 * Bearer authentication for a directory's SCIM routes. A token of another directory is refused
 * exactly like an unknown one, so URLs reveal nothing.
 */
export function scimBearerAuth(
  db: Db,
  onAuthenticated: (req: Request, res: Response, principal: ScimPrincipal) => void,
  bookkeeping: Db = db,
): RequestHandler {
  return bearerAuth<ScimPrincipal>(
    {
      realm: "scim-bridge",
      refusal: "a valid bearer token for this directory is required",
      verify: (req, token, now) => {
        const principal = verifyScimToken(db, token, now);
        return principal && principal.directoryId === req.params.directoryId ? { ok: true, principal } : { ok: false };
      },
      // Through the bookkeeping connection (no fsync of its own), so that reads stay free of durable writes.
      touch: (principal, now) => void runSync(bookkeeping, touchScimToken(principal.tokenId, now)),
      tokenId: (principal) => principal.tokenId,
    },
    onAuthenticated,
  );
}
