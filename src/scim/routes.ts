import { Router } from "express";
import type { Db } from "../directory/database.js";
import { discoveryRoutes } from "./discovery.js";
import { groupRoutes } from "./groups.js";
import { rootSearchRoutes } from "./search.js";
import { userRoutes } from "./users.js";

/**
 * Every SCIM endpoint of one directory, mounted under `/scim/v2/:directoryId` after authentication.
 * Resource names match case-insensitively (Express's default; the Microsoft suite GETs /users).
 */
export function scimRoutes(db: Db): Router {
  const router = Router({ mergeParams: true });
  router.use(discoveryRoutes());
  router.use(userRoutes(db));
  router.use(groupRoutes(db));
  router.use(rootSearchRoutes(db));
  return router;
}
