import { readFileSync } from "node:fs";
import { join } from "node:path";
import { packageRoot } from "../paths.js";
import type { ScimDocument } from "./normalize.js";

/** The declarative documents under the top-level scim/ folder, read once at start. */
const read = (name: string): unknown => JSON.parse(readFileSync(join(packageRoot, "scim", name), "utf8"));

export const serviceProviderConfig = read("service-provider-config.json") as ScimDocument & { filter: { maxResults: number } };
export const resourceTypes = read("resource-types.json") as (ScimDocument & { id: string })[];

/** The cap on `count`, as advertised in ServiceProviderConfig filter.maxResults. */
export const maxResults: number = serviceProviderConfig.filter.maxResults;
