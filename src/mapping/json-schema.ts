/**
 * The JSON Schema of a mapping file, generated from the zod schema (what people write: the input
 * side, before policy defaults are filled). Editors validate mappings/*.yaml against it.
 * Regenerate: npx tsx src/main.ts mapping schema --write   (test/mapping/json-schema.test.ts checks it is current)
 */
import { z } from "zod";
import { mappingSchema } from "./schema.js";

export function mappingJsonSchema(): Record<string, unknown> {
  const schema = z.toJSONSchema(mappingSchema, {
    io: "input",
    target: "draft-07",
    unrepresentable: "any",
    reused: "inline",
  });
  return {
    ...schema,
    title: "scim-bridge organization mapping",
    description:
      "How one organization's SCIM users become Auth0 users: connection, profile fields, owned app_metadata keys, role rules and deprovisioning policies. See mappings/*.yaml for commented examples.",
  };
}

/** The file's exact text, so the check is a plain string comparison. */
export const mappingJsonSchemaText = (): string => `${JSON.stringify(mappingJsonSchema(), null, 2)}\n`;
