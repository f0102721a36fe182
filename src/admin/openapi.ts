import { z } from "zod";
import type { RouteDef } from "./routes.js";

/**
 * The admin API's OpenAPI 3.1 document, built from the same route declarations that register the
 * handlers (routes.ts), so it cannot drift from what is served; test/admin/openapi.test.ts checks the
 * router and the document against each other. Request schemas are the zod schemas the handlers
 * validate with, as JSON Schema 2020-12 (OpenAPI 3.1's dialect).
 */
type JsonObject = Record<string, unknown>;

/** Express "/organizations/:org" → OpenAPI "/organizations/{org}". */
export const openApiPath = (expressPath: string): string => expressPath.replace(/:(\w+)/g, "{$1}");

const integerParams = new Set(["version", "jobId"]);
const paramDescriptions: Record<string, string> = {
  org: "organization id or slug",
  dir: "directory id",
  userId: "SCIM user id",
  tokenId: "token id",
  version: "mapping version",
  jobId: "job id",
};

const ref = (name: string): JsonObject => ({ $ref: `#/components/responses/${name}` });
const errorResponses: Record<number, string> = {
  400: "BadRequest",
  401: "Unauthorized",
  403: "Forbidden",
  404: "NotFound",
  409: "Conflict",
  413: "PayloadTooLarge",
  429: "TooManyRequests",
  503: "Unavailable",
};

function jsonSchema(schema: z.ZodType): JsonObject {
  const out = z.toJSONSchema(schema, { io: "input", unrepresentable: "any" }) as JsonObject;
  delete out.$schema;
  return out;
}

function operationId(def: RouteDef): string {
  const words = def.path
    .split("/")
    .filter(Boolean)
    .map((w) => (w.startsWith(":") ? `by-${w.slice(1)}` : w))
    .join("-")
    .split(/[-_.]/)
    .filter(Boolean);
  return def.method + words.map((w) => w[0]!.toUpperCase() + w.slice(1)).join("");
}

const accessText: Record<RouteDef["access"], string> = {
  operator: "Operator tokens only; an org-admin token gets 403.",
  organization:
    "An org-admin token of this organization, or an operator token. Another organization's org-admin gets 404, as for an organization that does not exist.",
  authenticated: "Any valid admin token.",
};

function operation(def: RouteDef): JsonObject {
  const pathParams = [...def.path.matchAll(/:(\w+)/g)].map((m) => m[1]!);
  const parameters: JsonObject[] = pathParams.map((name) => ({
    name,
    in: "path",
    required: true,
    description: paramDescriptions[name] ?? name,
    schema: integerParams.has(name) ? { type: "integer", minimum: 1 } : { type: "string" },
  }));
  if (def.query) {
    const q = jsonSchema(def.query) as { properties?: Record<string, JsonObject>; required?: string[] };
    for (const [name, schema] of Object.entries(q.properties ?? {})) {
      const { description, ...rest } = schema;
      parameters.push({
        name,
        in: "query",
        required: q.required?.includes(name) ?? false,
        ...(description ? { description } : {}),
        schema: rest,
      });
    }
  }
  const statuses = new Set<number>([401, 429, ...(def.errors ?? [])]);
  if (def.body || def.query || pathParams.some((p) => integerParams.has(p))) statuses.add(400);
  if (def.body) statuses.add(413);
  if (def.access === "operator") statuses.add(403);
  if (pathParams.length > 0) statuses.add(404);
  const responses: JsonObject = {
    [String(def.status)]:
      def.status === 204
        ? { description: "done" }
        : { description: "success", content: { "application/json": { schema: { type: "object" } } } },
  };
  for (const s of [...statuses].sort()) responses[String(s)] = ref(errorResponses[s] ?? "BadRequest");
  return {
    operationId: operationId(def),
    tags: [def.tag],
    summary: def.summary,
    description: [def.description, accessText[def.access]].filter(Boolean).join("\n\n"),
    "x-access": def.access,
    security: [{ adminBearer: [] }],
    ...(parameters.length > 0 ? { parameters } : {}),
    ...(def.body
      ? { requestBody: { required: true, content: { "application/json": { schema: jsonSchema(def.body) } } } }
      : {}),
    responses,
  };
}

const errorResponse = (description: string, headers?: JsonObject): JsonObject => ({
  description,
  ...(headers ? { headers } : {}),
  content: { "application/json": { schema: { $ref: "#/components/schemas/Error" } } },
});
const retryAfter = { "Retry-After": { description: "whole seconds to wait", schema: { type: "integer", minimum: 1 } } };

export function openApiDocument(defs: readonly RouteDef[]): JsonObject {
  const paths: Record<string, JsonObject> = {
    "/openapi.json": {
      get: {
        operationId: "getOpenapiJson",
        tags: ["meta"],
        summary: "This document (no token needed: it describes routes, not data)",
        security: [],
        "x-access": "public",
        responses: {
          "200": {
            description: "the OpenAPI 3.1 document",
            content: { "application/json": { schema: { type: "object" } } },
          },
        },
      },
    },
  };
  for (const def of defs) (paths[openApiPath(def.path)] ??= {})[def.method] = operation(def);
  return {
    openapi: "3.1.0",
    jsonSchemaDialect: "https://json-schema.org/draft/2020-12/schema",
    info: {
      title: "scim-bridge admin API",
      version: "1",
      description:
        "Operators onboard organizations, rotate tokens, change mappings and watch sync health; customer admins see their " +
        "organization's users and sync state, block, unblock and sign users out, rotate their SCIM token and read their audit " +
        "trail and SCIM request log. Every change is recorded in the audit trail with the request id (X-Request-Id).",
    },
    servers: [{ url: "/admin/v1" }],
    security: [{ adminBearer: [] }],
    paths,
    components: {
      securitySchemes: {
        adminBearer: {
          type: "http",
          scheme: "bearer",
          description: "An admin token: operator (every organization) or org_admin (one organization).",
        },
      },
      schemas: {
        Error: {
          type: "object",
          required: ["error", "message", "requestId"],
          properties: {
            error: {
              type: "string",
              description: "error kind, e.g. invalidValue, unauthorized, notFound, conflict, rateLimited",
            },
            message: { type: "string", description: "what went wrong, naming the field for invalid input" },
            requestId: { type: "string" },
          },
        },
      },
      responses: {
        BadRequest: errorResponse("invalid body, query or path parameter; the message names the field"),
        Unauthorized: errorResponse("no token, or an unknown, expired or revoked one", {
          "WWW-Authenticate": { schema: { type: "string" } },
        }),
        Forbidden: errorResponse("the route needs an operator token"),
        NotFound: errorResponse("no such resource, or it belongs to another organization"),
        Conflict: errorResponse("the resource is not in a state that allows this"),
        PayloadTooLarge: errorResponse("the body exceeds the size limit"),
        TooManyRequests: errorResponse("rate limit of the token exceeded", retryAfter),
        Unavailable: errorResponse("a dependency (Auth0) did not answer; retry later", retryAfter),
      },
    },
  };
}
