import express, { type RequestHandler } from "express";

/** Default request body limit: 1 MiB holds a PATCH adding ~15,000 members (Entra sends far fewer per request). */
export const defaultBodyLimit = 1024 * 1024;
/**
 * /Groups bodies may be larger: Okta's AIW apps PUT a group with its full member list, about 90
 * bytes a member, so 8 MiB carries ~90,000 (reliability-and-security.md §1.4).
 */
export const groupBodyLimit = 8 * 1024 * 1024;

const scimTypes = ["application/scim+json", "application/json", "application/*+json"];

/**
 * JSON bodies as SCIM clients send them: application/scim+json (RFC 7644 §8.1) and plain
 * application/json (Okta POSTs it). Oversized bodies become 413 and malformed JSON 400 invalidSyntax
 * in the error middleware.
 */
export const scimJsonBody = (limit = defaultBodyLimit, groupsLimit = Math.max(limit, groupBodyLimit)): RequestHandler => {
  const small = express.json({ type: scimTypes, limit, strict: true });
  const large = express.json({ type: scimTypes, limit: groupsLimit, strict: true });
  return (req, res, next) => (/^\/groups(\/|$)/i.test(req.path) ? large : small)(req, res, next);
};

/** Plain JSON bodies for the other routers (admin API, hooks), with the same limit and error mapping. */
export const jsonBody = (limit = defaultBodyLimit): RequestHandler => express.json({ limit, strict: true });
