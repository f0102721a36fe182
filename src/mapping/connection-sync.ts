/**
 * Which profile fields Auth0 lets the Management API write for a connection's users. Pure.
 *
 * Auth0 "Configure Connection Sync with Auth0" and "User profile root attributes": for users of an
 * upstream identity provider (enterprise and social connections) the root attributes name,
 * given_name, family_name, nickname and picture are overwritten from the IdP at each login, and a
 * PATCH of them answers `400 operation_not_supported`, unless the connection's
 * `options.set_user_root_attributes` is `on_first_login` or `never_on_login`. Such a user's email
 * (and username) belong to the IdP and cannot be updated at all.
 */
import type { ProfileField } from "./types.js";

/**
 * What the Auth0 connection lets the Management API write (read from the connection by the sync
 * engine; see connectionWritability below). Unknown (undefined): Auth0's defaults for the mapping's
 * connection type (an enterprise connection syncs root attributes at each login).
 */
export interface ConnectionWritability {
  /** Fields a PATCH may not carry for this connection's users, with why (for notes and validation). */
  unwritable: Partial<Record<ProfileField, string>>;
}

export type RootAttributesSync = "on_each_login" | "on_first_login" | "never_on_login";

export interface ConnectionFacts {
  strategy: string;
  /** `options.set_user_root_attributes`; absent means Auth0's default, on_each_login. */
  setUserRootAttributes?: string | undefined;
}

/** Database and passwordless connections keep their users in Auth0: every root attribute is writable. */
const auth0Strategies = new Set(["auth0", "email", "sms"]);
const rootAttributes: ProfileField[] = ["name", "given_name", "family_name", "nickname", "picture"];

export function connectionWritability(facts: ConnectionFacts): ConnectionWritability {
  if (auth0Strategies.has(facts.strategy)) return { unwritable: {} };
  const unwritable: ConnectionWritability["unwritable"] = {
    email: `the email of a ${facts.strategy} user belongs to the identity provider and cannot be updated`,
    username: `the username of a ${facts.strategy} user belongs to the identity provider and cannot be updated`,
  };
  const sync = facts.setUserRootAttributes ?? "on_each_login";
  if (sync !== "on_first_login" && sync !== "never_on_login") {
    for (const f of rootAttributes) {
      unwritable[f] =
        `the connection updates root attributes from the identity provider at each login (set_user_root_attributes: ${sync}); set it to on_first_login or never_on_login to let the bridge write ${f}`;
    }
  }
  return { unwritable };
}

/** Before the connection is read: what a mapping's connection type implies under Auth0's defaults. */
export function defaultWritability(type: "database" | "enterprise"): ConnectionWritability {
  return type === "database" ? { unwritable: {} } : connectionWritability({ strategy: "enterprise" });
}

/** A mapped field the connection will not let the bridge write: a warning, the mapping stays valid. */
export interface UnwrittenField {
  /** Where in the mapping, e.g. `profile.given_name`. */
  path: string;
  field: ProfileField;
  message: string;
}

/**
 * Which of the mapping's profile fields will not be written for users of this connection, and why.
 * Email is still used to find the user (users-by-email), only never written.
 */
export function unwrittenFields(
  mapping: { profile: Partial<Record<ProfileField, unknown>> },
  writability: ConnectionWritability,
): UnwrittenField[] {
  return (Object.keys(mapping.profile) as ProfileField[])
    .filter((f) => mapping.profile[f] !== undefined && writability.unwritable[f] !== undefined)
    .map((field) => ({
      path: `profile.${field}`,
      field,
      message:
        field === "email"
          ? `${writability.unwritable[field]!}; it is still used to find the user in Auth0`
          : `will not be written: ${writability.unwritable[field]!}`,
    }));
}
