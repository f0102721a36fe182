import { invalidValue } from "../errors.js";
import { maxResults } from "./documents.js";
import type { FilterNode } from "./filter/ast.js";
import { parseFilter } from "./filter/parser.js";
import type { ScimDocument } from "./normalize.js";

/**
 * Query parameters of a list or search (RFC 7644 §3.4.2): filter, 1-based startIndex, count capped
 * at maxResults (ServiceProviderConfig filter.maxResults), sortBy/sortOrder, and the projection.
 * From a query string (strings) or a SearchRequest body (RFC 7644 §3.4.3: numbers, attribute arrays).
 */
export const listLimits = { defaultCount: 100, maxResults } as const;

export const listResponseSchema = "urn:ietf:params:scim:api:messages:2.0:ListResponse";
export const searchRequestSchema = "urn:ietf:params:scim:api:messages:2.0:SearchRequest";

export interface ListParams {
  filter?: FilterNode;
  startIndex: number;
  count: number;
  sortBy?: string;
  descending: boolean;
  attributes?: unknown;
  excludedAttributes?: unknown;
}

function integer(value: unknown, name: string): number | undefined {
  if (value === undefined || value === null || value === "") return undefined;
  const n =
    typeof value === "number"
      ? value
      : typeof value === "string" && /^\s*-?\d+\s*$/.test(value)
        ? Number(value)
        : Number.NaN;
  if (!Number.isSafeInteger(n)) throw invalidValue(`${name} must be an integer`);
  return n;
}

/**
 * The parameters of a POST …/.search (RFC 7644 §3.4.3): its JSON body's members, read as a GET's query
 * parameters; a body that is not an object carries none.
 */
export const parseSearchBody = (body: unknown): ListParams =>
  parseListParams(typeof body === "object" && body !== null ? (body as Record<string, unknown>) : {});

/** Reads parameters case-insensitively: clients send "startindex" and "Count" too. */
export function parseListParams(source: Record<string, unknown>): ListParams {
  const get = (name: string): unknown => {
    const lower = name.toLowerCase();
    const key = Object.keys(source).find((k) => k.toLowerCase() === lower);
    return key === undefined ? undefined : source[key];
  };
  const filterText = get("filter");
  if (filterText !== undefined && typeof filterText !== "string") throw invalidValue("filter must be a string");
  const sortBy = get("sortBy");
  if (sortBy !== undefined && (typeof sortBy !== "string" || sortBy.trim() === ""))
    throw invalidValue("sortBy must name an attribute");
  const sortOrder = get("sortOrder");
  if (sortOrder !== undefined && !(typeof sortOrder === "string" && /^(ascending|descending)$/i.test(sortOrder))) {
    throw invalidValue('sortOrder must be "ascending" or "descending"');
  }
  // RFC 7644 §3.4.2.4: startIndex below 1 means 1; a negative count means 0.
  const startIndex = Math.max(1, integer(get("startIndex"), "startIndex") ?? 1);
  const count = Math.min(listLimits.maxResults, Math.max(0, integer(get("count"), "count") ?? listLimits.defaultCount));
  return {
    ...(filterText !== undefined ? { filter: parseFilter(filterText) } : {}),
    startIndex,
    count,
    ...(typeof sortBy === "string" ? { sortBy: sortBy.trim() } : {}),
    descending: typeof sortOrder === "string" && sortOrder.toLowerCase() === "descending",
    attributes: get("attributes"),
    excludedAttributes: get("excludedAttributes"),
  };
}

export function listResponse(totalResults: number, startIndex: number, resources: ScimDocument[]): ScimDocument {
  return {
    schemas: [listResponseSchema],
    totalResults,
    itemsPerPage: resources.length,
    startIndex,
    Resources: resources,
  };
}
