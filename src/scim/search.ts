import { Router } from "express";
import type { Db } from "../directory/database.js";
import type { QueryBudget } from "./cost.js";
import { scimContext } from "./context.js";
import { searchGroups } from "./groups.js";
import { listResponse, parseListParams, type ListParams } from "./list.js";
import { sendScim } from "./respond.js";
import { groupSchema, resolveAttribute, userSchema, type ResourceSchema } from "./schema.js";
import { searchUsers } from "./users.js";

/**
 * POST /.search at the base URL (RFC 7644 §3.4.3): one filter over every resource type. Results are
 * Users then Groups, each in its own stable order (sortBy applies within each type), and startIndex/
 * count page through that concatenation; each type's count is its own O(1) or indexed count.
 */
export function rootSearchRoutes(db: Db, budget?: QueryBudget): Router {
  const router = Router({ mergeParams: true });
  router.post("/.search", (req, res) => {
    const ctx = scimContext(res);
    const params = parseListParams(
      typeof req.body === "object" && req.body !== null ? (req.body as Record<string, unknown>) : {},
    );
    const offset = params.startIndex - 1;
    // A sortBy one type does not know orders that type by creation rather than failing the search.
    const sortable = (rs: ResourceSchema): ListParams =>
      params.sortBy && !resolveAttribute(rs, params.sortBy) ? { ...params, sortBy: undefined } : params;
    const users = searchUsers(db, ctx, sortable(userSchema), offset, params.count, budget);
    const remaining = params.count - users.resources.length;
    const groups = searchGroups(db, ctx, sortable(groupSchema), Math.max(0, offset - users.total), remaining, budget);
    sendScim(
      res,
      200,
      listResponse(users.total + groups.total, params.startIndex, [...users.resources, ...groups.resources]),
    );
  });
  return router;
}
