import { readFileSync } from "node:fs";
import { join } from "node:path";
import { packageRoot } from "../paths.js";

/** A SCIM resource or message as JSON. */
export type ScimDocument = Record<string, unknown>;

/** The declarative documents under the top-level scim/ folder, read once at start. */
const read = (name: string): unknown => JSON.parse(readFileSync(join(packageRoot, "scim", name), "utf8"));

export const serviceProviderConfig = read("service-provider-config.json") as ScimDocument & {
  filter: { maxResults: number };
};
export const resourceTypes = read("resource-types.json") as (ScimDocument & { id: string })[];

/** The cap on `count`, as advertised in ServiceProviderConfig filter.maxResults. */
export const maxResults: number = serviceProviderConfig.filter.maxResults;

/** The bridge's own User extension: sync state, read-only (scim/schemas/sync-state.json). */
export const syncStateSchema = read("schemas/sync-state.json") as ScimDocument & {
  id: string;
  name: string;
  description: string;
  attributes: {
    name: string;
    type: string;
    multiValued: boolean;
    caseExact?: boolean;
    canonicalValues?: string[];
    mutability: string;
    returned: string;
  }[];
};
