import { randomUUID } from "node:crypto";
import type { RequestHandler } from "express";

declare global {
  // eslint-disable-next-line @typescript-eslint/no-namespace
  namespace Express {
    interface Locals {
      /** Correlates a request with its log lines and audit entries. */
      requestId: string;
    }
  }
}

const acceptable = /^[\w.:-]{1,128}$/;

/** Honours a sane incoming X-Request-Id (a proxy's), else makes one; echoes it on the response. */
export const requestId = (): RequestHandler => (req, res, next) => {
  const incoming = req.get("x-request-id");
  const id = incoming && acceptable.test(incoming) ? incoming : randomUUID();
  res.locals.requestId = id;
  res.setHeader("X-Request-Id", id);
  next();
};
