/**
 * The mapping an organization has before anyone applies one: email and names from the SCIM core
 * user, no app_metadata, no roles, and the user model's default policies (defaults.ts).
 */
import type { ConnectionType, UserModel } from "./defaults.js";
import { mappingSchema, type MappingDocument, type MappingInput } from "./schema.js";

export interface DefaultMappingOptions {
  connection: string;
  userModel: UserModel;
  /** Default "database": an isolated organization usually has a database connection of its own. */
  connectionType?: ConnectionType;
}

/** Email: the primary email, else the work email, else any email, else userName when it is an address (Okta sends one). */
export const defaultEmailSource = {
  from: ["emails[primary eq true].value", 'emails[type eq "work"].value', "emails.value", "userName"],
  transforms: ["trim" as const, "lowercase" as const, { capture: "^[^@\\s]+@[^@\\s]+$", group: 0 }],
};

export function defaultMapping(options: DefaultMappingOptions): MappingDocument {
  const input: MappingInput = {
    description: "default mapping (no mapping applied yet)",
    connection: { name: options.connection, type: options.connectionType ?? "database" },
    userModel: options.userModel,
    profile: {
      email: defaultEmailSource,
      given_name: "name.givenName",
      family_name: "name.familyName",
      name: { from: ["displayName", "name.formatted"] },
    },
  };
  // Parsed like any other mapping, so the default is valid by construction and fully filled.
  return mappingSchema.parse(input);
}
