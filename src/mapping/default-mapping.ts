/**
 * The mapping an organization has before anyone applies one. It follows the organization's
 * connection type:
 * - database: the bridge creates the users, so it writes email and names from the SCIM core user;
 * - enterprise (Okta, Entra ID, SAML, OIDC): users appear at their first login and their IdP owns
 *   the profile (Auth0 refuses updates of root attributes it syncs at each login, and an IdP user's
 *   email is never updatable), so the bridge maps the email only, to find and link them.
 * No app_metadata and no roles. Policies are the user model's defaults except that deletion never
 * deletes the Auth0 user: a SCIM DELETE blocks it and revokes its sessions (reversible), and only a
 * mapping that says `deletion.deleteUser: true` deletes.
 */
import type { ConnectionType, UserModel } from "./defaults.js";
import { mappingSchema, type MappingDocument, type MappingInput } from "./schema.js";

export interface DefaultMappingOptions {
  connection: string;
  userModel: UserModel;
  /** Default "database". */
  connectionType?: ConnectionType;
}

/** Email: the primary email, else the work email, else any email, else userName when it is an address (Okta sends one). */
export const defaultEmailSource = {
  from: ["emails[primary eq true].value", 'emails[type eq "work"].value', "emails.value", "userName"],
  transforms: ["trim" as const, "lowercase" as const, { capture: "^[^@\\s]+@[^@\\s]+$", group: 0 }],
};

/**
 * Parsed defaults by connection, type and user model: the post-login hook asks for one at every login
 * of an organization without an applied mapping, and the schema's parse costs about a millisecond.
 * Callers get their own copy.
 */
const parsed = new Map<string, MappingDocument>();
const maxParsed = 1_000;

export function defaultMapping(options: DefaultMappingOptions): MappingDocument {
  const key = JSON.stringify([options.connection, options.connectionType ?? "database", options.userModel]);
  let document = parsed.get(key);
  if (!document) {
    document = parseDefault(options);
    if (parsed.size >= maxParsed) parsed.delete(parsed.keys().next().value!);
    parsed.set(key, document);
  }
  return structuredClone(document);
}

function parseDefault(options: DefaultMappingOptions): MappingDocument {
  const type = options.connectionType ?? "database";
  const profile: MappingInput["profile"] =
    type === "database"
      ? {
          email: defaultEmailSource,
          given_name: "name.givenName",
          family_name: "name.familyName",
          name: { from: ["displayName", "name.formatted"] },
        }
      : { email: defaultEmailSource };
  const input: MappingInput = {
    description: `default mapping for a ${type} connection (no mapping applied yet)`,
    connection: { name: options.connection, type },
    userModel: options.userModel,
    profile,
    policies: { deletion: { deleteUser: false } },
  };
  // Parsed like any other mapping, so the default is valid by construction and fully filled.
  return mappingSchema.parse(input);
}
