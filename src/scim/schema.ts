import SCIMMY from "scimmy";
import { syncStateSchema } from "./documents.js";

/**
 * The resource schemas we serve, built from scimmy's RFC 7643 definitions, plus a case-insensitive
 * index of their attributes that the normaliser, filters, PATCH paths and projections all resolve
 * against (RFC 7643 §2.1: attribute names are case-insensitive). These are our own SchemaDefinition
 * instances: scimmy's exported ones are process-wide and stay untouched.
 *
 * Our copies drop canonicalValues (see clone). Left out on purpose, so that /Schemas states what we
 * really support:
 * - User.password: passwords an IdP sends are dropped, never stored (docs/design.md, invariant 7);
 * - User.groups: membership lives on the Group (RFC 7643 §4.1.2 makes it readOnly and optional).
 */
type ScimmyAttribute = SCIMMY.Types.Attribute;
type ScimmyDefinition = SCIMMY.Types.SchemaDefinition;

export type AttributeType =
  "string" | "boolean" | "decimal" | "integer" | "dateTime" | "binary" | "reference" | "complex";

export interface AttributeInfo {
  /** Canonical spelling. */
  name: string;
  type: AttributeType;
  multiValued: boolean;
  caseExact: boolean;
  /** Clients cannot write it (RFC 7643 §7 mutability readOnly): ignored in requests. */
  readOnly: boolean;
  /** Sub-attributes by lower-case name (complex attributes only). */
  sub: Map<string, AttributeInfo>;
}

export interface SchemaInfo {
  urn: string;
  extension: boolean;
  attributes: Map<string, AttributeInfo>;
}

export interface ResourceSchema {
  resourceType: "User" | "Group";
  endpoint: "/Users" | "/Groups";
  /** Core definition with its extensions: what scimmy validates with and what /Schemas describes. */
  definition: ScimmyDefinition;
  core: SchemaInfo;
  extensions: SchemaInfo[];
}

export const userSchemaUrn = "urn:ietf:params:scim:schemas:core:2.0:User";
export const groupSchemaUrn = "urn:ietf:params:scim:schemas:core:2.0:Group";
export const enterpriseUserUrn = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
export const syncStateUrn = syncStateSchema.id;

/** The declarative sync-state extension as a scimmy definition: every attribute readOnly, returned on request. */
function syncStateDefinition(): ScimmyDefinition {
  const attributes = syncStateSchema.attributes.map(
    (a) =>
      new SCIMMY.Types.Attribute(a.type as ConstructorParameters<typeof SCIMMY.Types.Attribute>[0], a.name, {
        multiValued: a.multiValued,
        caseExact: a.caseExact === true,
        mutable: false,
        returned: a.returned,
        required: false,
        canonicalValues: false,
      }),
  );
  return new SCIMMY.Types.SchemaDefinition(
    syncStateSchema.name,
    syncStateSchema.id,
    syncStateSchema.description,
    attributes,
  );
}

function attributeInfo(attribute: ScimmyAttribute): AttributeInfo {
  const { mutable, multiValued, caseExact } = attribute.config;
  return {
    name: attribute.name,
    type: String(attribute.type) as AttributeType,
    multiValued: multiValued === true,
    caseExact: caseExact === true,
    readOnly: mutable === false || mutable === "readOnly",
    sub: new Map((attribute.subAttributes ?? []).map((s) => [s.name.toLowerCase(), attributeInfo(s)])),
  };
}

function schemaInfo(definition: ScimmyDefinition, extension: boolean): SchemaInfo {
  const attributes = new Map<string, AttributeInfo>();
  for (const a of definition.attributes) {
    if (a instanceof SCIMMY.Types.Attribute) attributes.set(a.name.toLowerCase(), attributeInfo(a));
  }
  // Common attributes (RFC 7643 §3.1): we compute schemas ourselves, so clients cannot set it.
  const schemas = attributes.get("schemas");
  if (schemas) schemas.readOnly = true;
  return { urn: definition.id, extension, attributes };
}

/**
 * A copy of a scimmy attribute without canonicalValues: RFC 7643 §7 makes them suggestions ("MAY be
 * used"), and scimmy enforces them, case-sensitively, and with an empty list for roles and
 * entitlements, so any role `type` Entra sends would be refused.
 */
function clone(attribute: ScimmyAttribute): ScimmyAttribute {
  const config = { ...attribute.config, canonicalValues: false } as SCIMMY.Types.Attribute.AttributeConfig;
  return new SCIMMY.Types.Attribute(attribute.type, attribute.name, config, (attribute.subAttributes ?? []).map(clone));
}

const own = (name: string, base: ScimmyDefinition, omit: string[] = []): ScimmyDefinition =>
  new SCIMMY.Types.SchemaDefinition(
    name,
    base.id,
    base.description,
    base.attributes
      .filter(
        (a): a is ScimmyAttribute => a instanceof SCIMMY.Types.Attribute && !a.config.shadow && !omit.includes(a.name),
      )
      .map(clone),
  );

function buildUserSchema(): ResourceSchema {
  const enterprise = own("EnterpriseUser", SCIMMY.Schemas.EnterpriseUser.definition);
  const sync = syncStateDefinition();
  const definition = own("User", SCIMMY.Schemas.User.definition, ["password", "groups"])
    .extend(enterprise, false)
    .extend(sync, false);
  return {
    resourceType: "User",
    endpoint: "/Users",
    definition,
    core: schemaInfo(definition, false),
    extensions: [schemaInfo(enterprise, true), schemaInfo(sync, true)],
  };
}

function buildGroupSchema(): ResourceSchema {
  const definition = own("Group", SCIMMY.Schemas.Group.definition);
  return {
    resourceType: "Group",
    endpoint: "/Groups",
    definition,
    core: schemaInfo(definition, false),
    extensions: [],
  };
}

export const userSchema: ResourceSchema = buildUserSchema();
export const groupSchema: ResourceSchema = buildGroupSchema();

/** The scimmy definition of an extension, for /Schemas. */
export const enterpriseUserDefinition: ScimmyDefinition =
  userSchema.definition.attribute<ScimmyDefinition>(enterpriseUserUrn);

/** An attribute path resolved against a resource schema. */
export interface ResolvedPath {
  schema: SchemaInfo;
  attribute: AttributeInfo;
  sub?: AttributeInfo;
}

/** Finds the schema whose URN prefixes `text` ("urn:…:User:manager.value" → enterprise, "manager.value"). */
function splitUrn(rs: ResourceSchema, text: string): { schema?: SchemaInfo; rest: string } | undefined {
  if (!/^urn:/i.test(text)) return { rest: text };
  const lower = text.toLowerCase();
  for (const schema of [rs.core, ...rs.extensions]) {
    const urn = schema.urn.toLowerCase();
    if (lower === urn) return { schema, rest: "" };
    if (lower.startsWith(urn + ":")) return { schema, rest: text.slice(urn.length + 1) };
  }
  return undefined; // a URN we do not serve
}

/**
 * Resolves "attr", "attr.sub", "urn:…:attr[.sub]" or an extension's bare URN (attribute undefined).
 * An unqualified name missing from the core schema is looked up in the extensions: Entra PATCHes
 * path "manager" for the enterprise manager (RFC 7643 §4.3 defines it in the extension; Microsoft Learn
 * "Develop and plan provisioning for a SCIM endpoint in Microsoft Entra ID", Example 5). Unknown names
 * give undefined.
 */
export function resolvePath(
  rs: ResourceSchema,
  text: string,
): ResolvedPath | { schema: SchemaInfo; attribute?: undefined } | undefined {
  const split = splitUrn(rs, text);
  if (!split) return undefined;
  if (split.rest === "") return split.schema ? { schema: split.schema } : undefined;
  const [attrName, subName, ...more] = split.rest.split(".");
  if (more.length > 0 || !attrName) return undefined;
  const candidates = split.schema ? [split.schema] : [rs.core, ...rs.extensions];
  for (const schema of candidates) {
    const attribute = schema.attributes.get(attrName.toLowerCase());
    if (!attribute) continue;
    if (subName === undefined) return { schema, attribute };
    const sub = attribute.sub.get(subName.toLowerCase());
    return sub ? { schema, attribute, sub } : undefined;
  }
  return undefined;
}

/** Resolves and insists on an attribute (not a bare extension URN). */
export function resolveAttribute(rs: ResourceSchema, text: string): ResolvedPath | undefined {
  const resolved = resolvePath(rs, text);
  return resolved?.attribute ? (resolved as ResolvedPath) : undefined;
}
