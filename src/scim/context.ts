import type { Response } from "express";
import type { Actor } from "../directory/audit.js";

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
}

declare global {
  // eslint-disable-next-line @typescript-eslint/no-namespace
  namespace Express {
    interface Locals {
      scim?: ScimContext;
    }
  }
}

export function scimContext(res: Response): ScimContext {
  const ctx = res.locals.scim;
  if (!ctx) throw new Error("SCIM route reached without an authenticated context");
  return ctx;
}
