import { Router } from "express";
import { scimContext } from "./context.js";
import { parseSearchBody } from "./list.js";
import type { Reader } from "./reads.js";
import { sendRead } from "./respond.js";

/**
 * POST /.search at the base URL (RFC 7644 §3.4.3): one filter over every resource type, a read like
 * the others (readOp's "search" in ./reads.ts: Users then Groups, paged through the concatenation).
 */
export function rootSearchRoutes(read: Reader): Router {
  const router = Router({ mergeParams: true });
  router.post("/.search", async (req, res) => {
    const params = parseSearchBody(req.body);
    sendRead(res, await read({ op: "search", ctx: scimContext(res), params }));
  });
  return router;
}
