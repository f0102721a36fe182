import { Router, type Response } from "express";
import { forbidden, notFound } from "../errors.js";
import { scimContext } from "./context.js";
import { resourceTypes, serviceProviderConfig, syncStateSchema } from "./documents.js";
import { listResponse } from "./list.js";
import type { ScimDocument } from "./normalize.js";
import { sendScim } from "./respond.js";
import { enterpriseUserDefinition, groupSchema, userSchema } from "./schema.js";

/**
 * Discovery (RFC 7644 §4): /ServiceProviderConfig, /ResourceTypes, /Schemas, each by id too. They
 * state what the server really does; meta.location is the requesting directory's. Writes to them
 * are refused with a SCIM error (403: the RFC 7644 §3.12 status list has no 405).
 */
const withLocation = (document: ScimDocument, location: string): ScimDocument => ({
  ...document,
  meta: { ...(document.meta as object), location },
});

const schemaUrn = "urn:ietf:params:scim:schemas:core:2.0:Schema";

/**
 * Every schema resource carries `schemas` and `meta.resourceType` "Schema" (RFC 7643 §7), whatever
 * its source states: scimmy's descriptions and the bridge's own extension document are made to agree
 * here rather than trusted one by one. meta.location is added per request (the directory's base URL).
 */
const asSchemaResource = (document: ScimDocument): ScimDocument => {
  const { schemas: _ignored, meta, ...rest } = document;
  return { schemas: [schemaUrn], ...rest, meta: { ...(meta as object | undefined), resourceType: "Schema" } };
};

const schemaDocuments = (): ScimDocument[] =>
  [
    ...[userSchema.definition, enterpriseUserDefinition, groupSchema.definition].map(
      (d) => JSON.parse(JSON.stringify(d.describe(""))) as ScimDocument,
    ),
    // The bridge's own extension (readOnly, returned "request"), declared in a JSON file.
    syncStateSchema,
  ].map(asSchemaResource);

export function discoveryRoutes(): Router {
  const router = Router({ mergeParams: true });
  const schemas = schemaDocuments();

  const spc = (_req: unknown, res: Response) => {
    const { baseUrl } = scimContext(res);
    sendScim(res, 200, withLocation(serviceProviderConfig, `${baseUrl}/ServiceProviderConfig`));
  };
  router.get("/ServiceProviderConfig", spc);
  // The Microsoft suite asks for this non-standard name (Microsoft's SCIM validator collection).
  router.get("/serviceConfiguration", spc);

  router.get("/ResourceTypes", (_req, res) => {
    const { baseUrl } = scimContext(res);
    const all = resourceTypes.map((t) => withLocation(t, `${baseUrl}/ResourceTypes/${t.id}`));
    sendScim(res, 200, listResponse(all.length, 1, all));
  });
  router.get("/ResourceTypes/:id", (req, res) => {
    const { baseUrl } = scimContext(res);
    const type = resourceTypes.find((t) => t.id.toLowerCase() === req.params.id.toLowerCase());
    if (!type) throw notFound(`ResourceType ${req.params.id} not found`);
    sendScim(res, 200, withLocation(type, `${baseUrl}/ResourceTypes/${type.id}`));
  });

  router.get("/Schemas", (_req, res) => {
    const { baseUrl } = scimContext(res);
    const all = schemas.map((s) => withLocation(s, `${baseUrl}/Schemas/${String(s.id)}`));
    sendScim(res, 200, listResponse(all.length, 1, all));
  });
  router.get("/Schemas/:id", (req, res) => {
    const { baseUrl } = scimContext(res);
    const schema = schemas.find((s) => String(s.id).toLowerCase() === req.params.id.toLowerCase());
    if (!schema) throw notFound(`Schema ${req.params.id} not found`);
    sendScim(res, 200, withLocation(schema, `${baseUrl}/Schemas/${String(schema.id)}`));
  });

  const readOnly = [
    "/ServiceProviderConfig",
    "/serviceConfiguration",
    "/ResourceTypes",
    "/ResourceTypes/:id",
    "/Schemas",
    "/Schemas/:id",
  ];
  router.all(readOnly, (req) => {
    throw forbidden(`${req.method} is not allowed on discovery endpoints; they are read-only (RFC 7644 §4)`);
  });
  return router;
}
