import type { Request, Response } from "express";
import type { StoreOp } from "../directory/store-op.js";
import type { WriteContext } from "../directory/write-context.js";
import { preconditionFailed } from "../errors.js";
import type { ScimContext } from "./context.js";
import { scimContentType } from "./error-body.js";
import type { ScimDocument } from "./normalize.js";
import { etagOf } from "./resource.js";

/** Responses are application/scim+json (RFC 7644 §8.1), whatever the client sent. */
export function sendScim(res: Response, status: number, body: ScimDocument, etag?: string): void {
  if (etag) res.setHeader("ETag", etag);
  res.status(status).type(scimContentType).send(JSON.stringify(body));
}

export function sendNoContent(res: Response, etag?: string): void {
  if (etag) res.setHeader("ETag", etag);
  res.status(204).end();
}

const opaque = (tag: string): string => tag.trim().replace(/^W\//, "");

const listed = (header: string | undefined, version: number): boolean | undefined => {
  if (header === undefined || header.trim() === "") return undefined;
  const current = opaque(etagOf(version));
  return header.split(",").some((t) => t.trim() === "*" || opaque(t) === current);
};

/** RFC 7644 §3.14 / RFC 7232 §3.1: a write with a stale If-Match is refused with 412. */
export function checkIfMatch(req: Request, version: number): void {
  if (listed(req.get("if-match"), version) === false) {
    throw preconditionFailed("the resource has changed since the version named in If-Match");
  }
}

/** RFC 7232 §3.2: GET with a matching If-None-Match (the header's value) answers 304. */
export const matchesNoneMatch = (header: string | undefined, version: number): boolean =>
  listed(header, version) === true;

/**
 * Sends what a read produced (./reads.ts): the body is JSON text already, so it is written as is,
 * without Express's res.send (which parses and re-formats the Content-Type, checks freshness that
 * the read already decided with If-None-Match, and copies a long body into a Buffer). A HEAD gets
 * the headers only, as from res.send.
 */
export function sendRead(res: Response, result: { status: number; etag?: string; body?: string }): void {
  if (result.etag) res.setHeader("ETag", result.etag);
  res.statusCode = result.status;
  if (result.body === undefined) {
    res.end();
    return;
  }
  res.setHeader("Content-Type", scimContentType);
  res.setHeader("Content-Length", Buffer.byteLength(result.body, "utf8"));
  if (res.req.method === "HEAD") res.end();
  else res.end(result.body, "utf8");
}

export const writeContext = (ctx: ScimContext, now = Date.now()): WriteContext => ({
  organizationId: ctx.organizationId,
  directoryId: ctx.directoryId,
  actor: ctx.actor,
  requestId: ctx.requestId,
  at: now,
  ...(ctx.credentialEpoch === undefined ? {} : { credentialEpoch: ctx.credentialEpoch }),
});

/**
 * A write and the document its response shows, as one op: rendering may read (a group's members, a
 * user's sync state), and those reads see the write, in the write's own unit rather than a second one.
 */
export function* writtenAndRendered<Row>(
  write: StoreOp<Row>,
  render: (row: Row) => StoreOp<ScimDocument>,
): StoreOp<{ row: Row; document: ScimDocument }> {
  const row = yield* write;
  return { row, document: yield* render(row) };
}
