import type { Request, RequestHandler, Response } from "express";
import type { SqlStore } from "../directory/sql.js";
import { cachedScimToken, touchScimToken, verifyScimToken, type ScimPrincipal } from "../directory/tokens.js";
import { unauthorized } from "../errors.js";
import { bearerAuth } from "./bearer.js";

/** A request's principal; `cachedAt` when its token was taken from the cache, unconfirmed (see scimBearerAuth). */
export type ScimAuthentication = ScimPrincipal & {
  cachedAt?: { epoch: number; confirm: () => Promise<void> };
};

const refusal = "a valid bearer token for this directory is required";

/**
 * Bearer authentication for a directory's SCIM routes. A token of another directory is refused
 * exactly like an unknown one, so URLs reveal nothing.
 *
 * `confirmedByRead`: requests whose own first statement can confirm the scim_tokens epoch (a GET of
 * a user by id). On PostgreSQL such a request with a cached token reads nothing here: it carries the
 * epoch its token is cached under (`cachedAt`), its read compares it in the same statement, and the
 * token is checked against the store when the epoch moved or the request ends before that read. A
 * token revoked anywhere is still refused at the very next request, one round trip earlier.
 */
export function scimBearerAuth(
  store: SqlStore,
  onAuthenticated: (req: Request, res: Response, principal: ScimAuthentication) => void,
  bookkeeping: SqlStore = store,
  confirmedByRead: (req: Request) => boolean = () => false,
): RequestHandler {
  const ofDirectory = (req: Request, principal: ScimPrincipal | undefined): principal is ScimPrincipal =>
    principal !== undefined && principal.directoryId === req.params.directoryId;
  return bearerAuth<ScimAuthentication>(
    {
      realm: "scim-bridge",
      refusal,
      verify: (req, token, now) => {
        const cached =
          store.dialect === "postgres" && confirmedByRead(req) ? cachedScimToken(store, token, now) : undefined;
        if (cached && ofDirectory(req, cached.principal)) {
          const confirm = async () => {
            if (!ofDirectory(req, await verifyScimToken(store, token, now))) throw unauthorized(refusal);
          };
          return { ok: true, principal: { ...cached.principal, cachedAt: { epoch: cached.epoch, confirm } } };
        }
        // One read of the store per request, outside a transaction (see verifyScimToken).
        return verifyScimToken(store, token, now).then((principal) =>
          ofDirectory(req, principal) ? { ok: true, principal } : { ok: false },
        );
      },
      // Through the bookkeeping store (on SQLite a connection without an fsync of its own), so that
      // reads stay free of durable writes.
      touch: (principal, now) => bookkeeping.write(touchScimToken(principal.tokenId, now)),
      tokenId: (principal) => principal.tokenId,
    },
    onAuthenticated,
  );
}
