import { auditRoutes } from "./audit.js";
import { directoryRoutes } from "./directories.js";
import { guardRoutes } from "./guard.js";
import { importRoutes } from "./imports.js";
import { jobRoutes } from "./jobs.js";
import { mappingRoutes } from "./mappings.js";
import { organizationRoutes } from "./organizations.js";
import { AdminRoutes, type AdminDeps } from "./routes.js";
import { scimRequestRoutes } from "./scim-requests.js";
import { setupLinkRoutes } from "./setup-links.js";
import { adminTokenRoutes } from "./tokens.js";
import { userRoutes } from "./users.js";

export type { AdminDeps } from "./routes.js";

/** Registers every admin route on the table; the HTTP pipeline (src/http/admin-router.ts) and adminService share it. */
export function registerAdminRoutes(routes: AdminRoutes, deps: AdminDeps): AdminRoutes {
  adminTokenRoutes(routes);
  organizationRoutes(routes);
  directoryRoutes(routes);
  scimRequestRoutes(routes);
  userRoutes(routes);
  mappingRoutes(routes);
  jobRoutes(routes);
  guardRoutes(routes);
  auditRoutes(routes);
  setupLinkRoutes(routes);
  importRoutes(routes, deps.userImports);
  return routes;
}

/**
 * The admin API's routes without HTTP, for the web console: `invoke` applies each route's own access
 * rule, organization check and validation, so the console can never do more than the API would for
 * the same principal.
 */
export function adminService(deps: AdminDeps): Pick<AdminRoutes, "invoke" | "defs"> {
  return registerAdminRoutes(new AdminRoutes(undefined, deps), deps);
}
