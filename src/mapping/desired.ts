/**
 * desired(mapping, user, groups, holds): the Auth0 state a directory user implies (docs/design.md,
 * "Concepts" and "What Auth0 sees").
 * Pure and deterministic: no I/O, no clock; the order of groups never matters.
 */
import { defaultWritability, type ConnectionWritability } from "./connection-sync.js";
import type { DeprovisionPolicy } from "./defaults.js";
import { compileRoles, type RolesFn } from "./roles.js";
import type { MappingDocument } from "./schema.js";
import { compileSource, textOf, type SourceInput, type ValueFn } from "./transforms.js";
import { isRecord, profileFields, type AppMetadata, type JsonValue, type Profile, type ProfileField } from "./types.js";

/** A SCIM user as the directory store holds it; `resource` is the SCIM JSON the server returns. */
export interface DirectoryUser {
  id: string;
  directoryId: string;
  active: boolean;
  deleted: boolean;
  resource: Record<string, unknown>;
}
export interface DirectoryGroup {
  id: string;
  displayName: string;
  externalId?: string | null;
}
export interface Hold {
  id: string;
  reason: string;
}
export type { ConnectionWritability } from "./connection-sync.js";

export interface DesiredContext {
  /** Root attributes and email the connection refuses (Auth0 answers 400 operation_not_supported). */
  connection?: ConnectionWritability;
  /**
   * Whether another organization still holds this (shared) user. Unknown (undefined) counts as
   * "maybe": block "whenNoOtherOrganization" then does not block tenant-wide; membership removal
   * still cuts this organization's access.
   */
  memberOfOtherOrganizations?: boolean;
}

/** Why the user is in the state it is: a hold wins over active:true; deletion wins over a hold. */
export type UserStatus = "provisioned" | "deactivated" | "held" | "deleted";

export interface DesiredUser {
  userId: string;
  directoryId: string;
  status: UserStatus;
  connection: string;
  connectionType: "database" | "enterprise";
  /** An Auth0 user should exist (false: delete it). */
  exists: boolean;
  member: boolean;
  blocked: boolean;
  /** Sessions and refresh tokens must be revoked (once per deprovisioning). */
  revokeAccess: boolean;
  deleteUser: boolean;
  /** Lower-cased (as Auth0 stores database users' emails). Null: the mapping produced no email. */
  email: string | null;
  /**
   * The email exactly as the IdP sent it (trimmed). users-by-email is case-sensitive and Auth0 keeps
   * the IdP's casing for users of enterprise connections, so lookups start from this form.
   */
  emailAsSent: string | null;
  /** Mapped profile fields left out because the connection refuses them, with why. */
  unwritable: Partial<Record<ProfileField, string>>;
  /** Every profile field the mapping declares (email included); null = no value. */
  profile: Profile;
  /** Every owned top-level app_metadata key; null = delete the key. */
  appMetadata: AppMetadata;
  ownedAppMetadataKeys: string[];
  /** Organization role names, sorted and de-duplicated. */
  roles: string[];
  /** Send a password-change ticket once the bridge has created the user. */
  invite: boolean;
  invitationTtlSeconds?: number;
  holdIds: string[];
  /** Things the operator should fix; the user is still reconciled as far as possible. */
  problems: string[];
}

interface CompiledMapping {
  profile: [ProfileField, ValueFn][];
  namespace: string | undefined;
  metadata: [string, ValueFn][];
  ownedKeys: string[];
  roles: RolesFn;
}

const compiledMappings = new WeakMap<MappingDocument, CompiledMapping>();

function compile(mapping: MappingDocument): CompiledMapping {
  const cached = compiledMappings.get(mapping);
  if (cached) return cached;
  const profile: [ProfileField, ValueFn][] = [];
  for (const field of profileFields) {
    const source = mapping.profile[field];
    if (source !== undefined) profile.push([field, compileSource(source)]);
  }
  const am = mapping.app_metadata;
  const metadata: [string, ValueFn][] = Object.entries(am?.keys ?? {}).map(([k, s]) => [k, compileSource(s)]);
  const compiled: CompiledMapping = {
    profile,
    namespace: am?.namespace,
    metadata,
    ownedKeys: (am?.namespace !== undefined ? [am.namespace] : metadata.map(([k]) => k)).sort(),
    roles: compileRoles(mapping.roles.rules, mapping.roles.default),
  };
  compiledMappings.set(mapping, compiled);
  return compiled;
}

function profileValue(field: ProfileField, value: JsonValue, problems: string[]): string | null {
  if (isRecord(value)) {
    problems.push(`profile.${field}: the source gave an object; name one of its sub-attributes`);
    return null;
  }
  const text = textOf(value);
  if (text === null || text === "") return null; // Auth0 refuses empty root attributes
  return field === "email" ? text.trim() : text;
}

function statusOf(user: DirectoryUser, holds: readonly Hold[]): UserStatus {
  if (user.deleted) return "deleted";
  if (holds.length > 0) return "held";
  return user.active ? "provisioned" : "deactivated";
}

export function desired(
  mapping: MappingDocument,
  user: DirectoryUser,
  groups: readonly DirectoryGroup[],
  holds: readonly Hold[],
  context: DesiredContext = {},
): DesiredUser {
  const c = compile(mapping);
  const input: SourceInput = { resource: user.resource, groups };
  const problems: string[] = [];

  const profile: Profile = {};
  for (const [field, fn] of c.profile) profile[field] = profileValue(field, fn(input), problems);
  let emailAsSent = profile.email ?? null;
  if (emailAsSent !== null && !/^[^@\s]+@[^@\s]+$/.test(emailAsSent)) {
    problems.push(`profile.email "${emailAsSent}" is not an email address: the user cannot be created or linked`);
    emailAsSent = null; // Auth0 would refuse it; null also keeps plan() from creating or linking
  } else if (emailAsSent === null)
    problems.push("profile.email produced no value: the user cannot be created or linked");
  const email = emailAsSent === null ? null : emailAsSent.toLowerCase();
  if (profile.email !== undefined) profile.email = email;
  // Fields the connection refuses are left out of the profile, so plan() never sends them.
  const unwritable: Partial<Record<ProfileField, string>> = {};
  const writability = context.connection ?? defaultWritability(mapping.connection.type);
  for (const [field, why] of Object.entries(writability.unwritable) as [ProfileField, string][]) {
    if (Object.hasOwn(profile, field)) {
      unwritable[field] = why;
      delete profile[field];
    }
  }

  const appMetadata: AppMetadata = {};
  if (c.namespace !== undefined) {
    const inner: Record<string, JsonValue> = {};
    for (const [key, fn] of c.metadata) {
      const v = fn(input);
      if (v !== null) inner[key] = v;
    }
    // Auth0 replaces a nested object whole, so the namespace is written as one value.
    appMetadata[c.namespace] = Object.keys(inner).length > 0 ? inner : null;
  } else {
    for (const [key, fn] of c.metadata) appMetadata[key] = fn(input);
  }

  const status = statusOf(user, holds);
  const granted = c.roles(input);
  const base = {
    userId: user.id,
    directoryId: user.directoryId,
    status,
    connection: mapping.connection.name,
    connectionType: mapping.connection.type,
    email,
    emailAsSent,
    unwritable,
    profile,
    appMetadata,
    ownedAppMetadataKeys: c.ownedKeys,
    holdIds: holds.map((h) => h.id).sort(),
    problems,
  };
  if (status === "provisioned") {
    const { send, ttlSeconds } = mapping.policies.invitation;
    const invite = send && mapping.connection.type === "database";
    const ttl = invite && ttlSeconds !== undefined ? { invitationTtlSeconds: ttlSeconds } : {};
    return {
      ...base,
      exists: true,
      member: true,
      blocked: false,
      revokeAccess: false,
      deleteUser: false,
      roles: granted,
      invite,
      ...ttl,
    };
  }

  const policy: DeprovisionPolicy & { deleteUser?: boolean } =
    status === "deleted" ? mapping.policies.deletion : mapping.policies.deactivation;
  const deleteUser = policy.deleteUser === true;
  // An isolated organization's users belong to it alone, so no other organization can hold them.
  const elsewhere = mapping.userModel === "isolated" ? false : context.memberOfOtherOrganizations;
  const blocked = policy.block === "always" || (policy.block === "whenNoOtherOrganization" && elsewhere === false);
  const revokeAccess = policy.revokeSessions === "always" || (policy.revokeSessions === "whenBlocked" && blocked);
  const member = !deleteUser && !policy.removeMembership;
  const roles = member && !policy.removeRoles ? granted : [];
  return { ...base, exists: !deleteUser, member, blocked, revokeAccess, deleteUser, roles, invite: false };
}
