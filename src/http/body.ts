import express, { type RequestHandler } from "express";

/** Default request body limit: 1 MiB holds a PATCH adding ~15,000 members (Entra sends far fewer per request). */
export const defaultBodyLimit = 1024 * 1024;

/**
 * JSON bodies as SCIM clients send them: application/scim+json (RFC 7644 §8.1) and plain
 * application/json (Okta POSTs it). Oversized bodies become 413 and malformed JSON 400 invalidSyntax
 * in the error middleware.
 */
export const scimJsonBody = (limit = defaultBodyLimit): RequestHandler =>
  express.json({ type: ["application/scim+json", "application/json", "application/*+json"], limit, strict: true });

/** Plain JSON bodies for the other routers (admin API, hooks), with the same limit and error mapping. */
export const jsonBody = (limit = defaultBodyLimit): RequestHandler => express.json({ limit, strict: true });
