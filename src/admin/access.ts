import type { Response } from "express";
import type { AdminPrincipal } from "../directory/admin-tokens.js";
import type { Actor } from "../directory/audit.js";
import { notFound } from "../errors.js";

/**
 * The admin API's authorization policy over an authenticated principal. Authentication (the bearer
 * token check that puts the principal on `res.locals.admin`) is the HTTP pipeline's; what a
 * principal may see is the admin API's own, so the routes can run without the HTTP layer.
 */
declare global {
  // eslint-disable-next-line @typescript-eslint/no-namespace -- Express types its locals through this global namespace
  namespace Express {
    interface Locals {
      admin?: AdminPrincipal;
    }
  }
}

export function adminPrincipal(res: Response): AdminPrincipal {
  const principal = res.locals.admin;
  if (!principal) throw new Error("admin route reached without an authenticated principal");
  return principal;
}

/** The audit actor of a principal: the token id, never the token. */
export const adminActor = (p: AdminPrincipal): Actor => ({
  type: p.scope === "operator" ? "operator" : "org_admin",
  id: p.tokenId,
});

/**
 * Whether the principal may see this organization. Callers look the organization up first and pass
 * undefined when it does not exist, so "not yours" and "does not exist" read the same.
 */
export function assertOrganizationVisible<T extends { id: string }>(
  p: AdminPrincipal,
  org: T | undefined,
  asked: string,
): T {
  if (!org || (p.scope === "org_admin" && p.organizationId !== org.id))
    throw notFound(`organization "${asked}" not found`);
  return org;
}
