import type { Response } from "express";
import type { Actor } from "../directory/audit.js";
import { CredentialEpochMoved } from "../directory/tokens.js";

/**
 * Everything a SCIM handler may know about its request, built once after authentication and passed
 * down explicitly. Nothing per-request lives in module or library state (scimmy-routers' global
 * basepath leaked one tenant's meta.location into another's responses under
 * concurrent requests, observed with scimmy-routers 1.3.2).
 */
export interface ScimContext {
  directoryId: string;
  organizationId: string;
  /** `{PUBLIC_URL}/scim/v2/{directoryId}`: every meta.location and $ref is built from it. */
  baseUrl: string;
  requestId: string;
  actor: Actor;
  /**
   * Set when the token was taken from the cache without reading the store (on PostgreSQL, a GET of a
   * user by id or a POST /Users): the scim_tokens epoch it was cached under, which the request's
   * first statement confirms (getUserAtEpoch, createUser); see atCredentialEpoch.
   */
  credentialEpoch?: number;
}

declare global {
  // eslint-disable-next-line @typescript-eslint/no-namespace
  namespace Express {
    interface Locals {
      scim?: ScimContext;
      /**
       * With ScimContext.credentialEpoch: checks the token against the store (throws unauthorized
       * when it no longer holds), for when the epoch moved or the request ends before its read.
       */
      confirmCredential?: () => Promise<void>;
    }
  }
}

export function scimContext(res: Response): ScimContext {
  const ctx = res.locals.scim;
  if (!ctx) throw new Error("SCIM route reached without an authenticated context");
  return ctx;
}

/**
 * Runs `work`, whose first statement compares the epoch its token was cached under
 * (ScimContext.credentialEpoch) when there is one. When the epoch moved (any token's revocation,
 * expiry or deletion, anywhere), the token is checked against the store, then `work` runs as usual;
 * a token that no longer holds is refused (401). Without a cached epoch, `work` runs once.
 */
export async function atCredentialEpoch<T>(
  res: Response,
  ctx: ScimContext,
  work: (ctx: ScimContext) => Promise<T>,
): Promise<T> {
  if (ctx.credentialEpoch === undefined) return work(ctx);
  try {
    const result = await work(ctx);
    res.locals.confirmCredential = undefined;
    return result;
  } catch (err) {
    if (!(err instanceof CredentialEpochMoved)) throw err;
    await res.locals.confirmCredential!();
    res.locals.confirmCredential = undefined;
    return work({ ...ctx, credentialEpoch: undefined });
  }
}
