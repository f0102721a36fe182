import type { Request, Response } from "express";
import { scimContext } from "./context.js";
import type { ReadRequest } from "./reads.js";

/**
 * The read of GET /Users/{id} or /Groups/{id}, for the resource routers and the by-id fast path
 * (./routes.ts) alike. The query string is read once: Express 5 parses it again on every `req.query`.
 */
export function readByIdRequest(op: "user" | "group", req: Request, res: Response, id: string): ReadRequest {
  const query = req.query;
  return {
    op,
    ctx: scimContext(res),
    id,
    attributes: query.attributes,
    excludedAttributes: query.excludedAttributes,
    ifNoneMatch: req.get("if-none-match"),
  };
}
