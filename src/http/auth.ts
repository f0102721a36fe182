import type { Request, RequestHandler, Response } from "express";
import type { SqlStore } from "../directory/sql.js";
import { touchScimToken, verifyScimToken, type ScimPrincipal } from "../directory/tokens.js";
import { bearerAuth } from "./bearer.js";

/**
 * Bearer authentication for a directory's SCIM routes. A token of another directory is refused
 * exactly like an unknown one, so URLs reveal nothing.
 */
export function scimBearerAuth(
  store: SqlStore,
  onAuthenticated: (req: Request, res: Response, principal: ScimPrincipal) => void,
  bookkeeping: SqlStore = store,
): RequestHandler {
  return bearerAuth<ScimPrincipal>(
    {
      realm: "scim-bridge",
      refusal: "a valid bearer token for this directory is required",
      // One read of the store per request, outside a transaction (see verifyScimToken).
      verify: async (req, token, now) => {
        const principal = await verifyScimToken(store, token, now);
        return principal && principal.directoryId === req.params.directoryId ? { ok: true, principal } : { ok: false };
      },
      // Through the bookkeeping store (on SQLite a connection without an fsync of its own), so that
      // reads stay free of durable writes.
      touch: (principal, now) => bookkeeping.write(touchScimToken(principal.tokenId, now)),
      tokenId: (principal) => principal.tokenId,
    },
    onAuthenticated,
  );
}
