import { sql, type SQL } from "drizzle-orm";
import { groups, users } from "../../../db/schema.js";
import { invalidValue } from "../../errors.js";
import { groupSchema, resolveAttribute, userSchema, type AttributeInfo, type ResolvedPath } from "../schema.js";
import type { Collection, Dialect, Operand, SqlTarget } from "./sql.js";

/**
 * Where each attribute lives. Indexed columns first (id, userName, externalId, displayName, active,
 * meta.created, meta.lastModified; emails through user_emails; members through group_members); any
 * other attribute is read from the stored SCIM JSON with SQLite's JSON functions, still in SQL (on
 * PostgreSQL, jsonb operators on the same text; see pgJson).
 */
const jsonKeys = (path: ResolvedPath, withSub = true): string[] => {
  const keys = path.schema.extension ? [path.schema.urn, path.attribute.name] : [path.attribute.name];
  if (withSub && path.sub) keys.push(path.sub.name);
  return keys;
};
const jsonPath = (path: ResolvedPath, withSub = true): string =>
  "$" +
  jsonKeys(path, withSub)
    .map((k) => `."${k}"`)
    .join("");

/** A text[] literal of JSON keys for PostgreSQL's #> and #>> (keys come from the schema, never from a client). */
const pgKeys = (keys: readonly string[]): string => `{${keys.map((k) => `"${k}"`).join(",")}}`;

/**
 * A JSON value on PostgreSQL, typed as SQLite's json_extract gives it to the comparisons of sql.ts:
 * text for strings (COLLATE "C", byte order as SQLite), numeric for numbers, boolean for booleans,
 * and NULL for JSON null, a missing key or a value of another JSON type (stored documents are
 * validated against the schema, so that last case does not arise from SCIM writes).
 */
function pgJson(doc: SQL, keys: readonly string[], type: AttributeInfo["type"]): SQL {
  const path = pgKeys(keys);
  const value = sql`(${doc} #> ${path}::text[])`;
  switch (type) {
    case "boolean":
      return sql`(CASE WHEN jsonb_typeof(${value}) = 'boolean' THEN ${value}::boolean END)`;
    case "integer":
    case "decimal":
      return sql`(CASE WHEN jsonb_typeof(${value}) = 'number' THEN ${value}::numeric END)`;
    default:
      return sql`((${doc} #>> ${path}::text[]) COLLATE "C")`;
  }
}

/** The stored document as jsonb (the column is text on both dialects: the very same string). */
const pgDocument = (resource: SQL): SQL => sql`(${resource}::jsonb)`;

const operand = (expr: SQL, attribute: AttributeInfo, extra: Partial<Operand> = {}): Operand => ({
  expr,
  type: attribute.type,
  caseExact: attribute.caseExact,
  ...extra,
});

function jsonSingle(resource: SQL, path: ResolvedPath, dialect: Dialect): Operand {
  const attribute = path.sub ?? path.attribute;
  if (dialect === "postgres") return operand(pgJson(pgDocument(resource), jsonKeys(path), attribute.type), attribute);
  return operand(sql`json_extract(${resource}, ${jsonPath(path)})`, attribute);
}

function jsonCollection(resource: SQL, path: ResolvedPath, dialect: Dialect): Collection {
  if (dialect === "postgres") {
    // A multi-valued attribute is a JSON array; anything else has no values (jsonb_array_elements
    // would fail on it).
    const values = sql`(${pgDocument(resource)} #> ${pgKeys(jsonKeys(path, false))}::text[])`;
    return {
      attribute: path.attribute,
      dialect,
      element: (sub) =>
        sub
          ? operand(pgJson(sql.raw("je.value"), [sub.name], sub.type), sub)
          : path.attribute.type === "complex"
            ? undefined
            : operand(pgJson(sql.raw("je.value"), [], path.attribute.type), path.attribute),
      exists: (condition) =>
        sql`EXISTS (SELECT 1 FROM jsonb_array_elements(CASE WHEN jsonb_typeof(${values}) = 'array' THEN ${values} END) AS je(value) WHERE ${condition})`,
    };
  }
  return {
    attribute: path.attribute,
    element: (sub) =>
      sub
        ? operand(sql`json_extract(je.value, ${`$."${sub.name}"`})`, sub)
        : path.attribute.type === "complex"
          ? undefined
          : operand(sql.raw("je.value"), path.attribute),
    exists: (condition) =>
      sql`EXISTS (SELECT 1 FROM json_each(${resource}, ${jsonPath(path, false)}) je WHERE ${condition})`,
  };
}

function metaOperand(
  path: ResolvedPath,
  created: SQL,
  modified: SQL,
  resourceType: string,
  dialect: Dialect,
): Operand | undefined {
  switch (path.sub?.name) {
    case "created":
      return operand(created, path.sub, { epochMs: true });
    case "lastModified":
      return operand(modified, path.sub, { epochMs: true });
    case "resourceType":
      // PostgreSQL cannot infer the type of a parameter compared with another parameter.
      return operand(
        dialect === "postgres" ? sql`(${resourceType}::text COLLATE "C")` : sql`${resourceType}`,
        path.sub,
      );
    default:
      return undefined; // meta.location and meta.version are not filterable
  }
}

/** Emails of live users, lower-cased, in user_emails: `emails.value eq` runs on an index. */
const emailColumns = new Set(["value", "type", "primary"]);

/** `dialect`: the SQL to write (SQLite unless told; PostgreSQL for a store on db/schema.pg.ts). */
export function usersTarget(directoryId: string, dialect: Dialect = "sqlite"): SqlTarget {
  const resource = sql`${users.resource}`;
  return {
    schema: userSchema,
    dialect,
    single(path) {
      if (path.schema.extension) return jsonSingle(resource, path, dialect);
      switch (path.attribute.name) {
        case "id":
          return operand(sql`${users.id}`, path.attribute, { caseExact: true });
        case "userName":
          return operand(sql`${users.userNameLower}`, path.attribute, { lowered: true });
        case "externalId":
          return operand(sql`${users.externalId}`, path.attribute);
        case "displayName":
          return operand(sql`${users.displayName}`, path.attribute);
        case "active":
          return operand(sql`${users.active}`, path.attribute);
        case "meta":
          return metaOperand(path, sql`${users.createdAt}`, sql`${users.modifiedAt}`, "User", dialect);
        case "schemas":
          return undefined;
        default:
          return jsonSingle(resource, path, dialect);
      }
    },
    collection(path, subs) {
      if (path.schema.extension || path.attribute.name !== "emails" || ![...subs].every((s) => emailColumns.has(s))) {
        return jsonCollection(resource, path, dialect);
      }
      return {
        attribute: path.attribute,
        dialect,
        element: (sub) => {
          if (sub?.name === "value") return operand(sql.raw("ue.value_lower"), sub, { lowered: true });
          if (sub?.name === "type") return operand(sql.raw("ue.type"), sub);
          if (sub?.name === "primary") return operand(sql.raw('ue."primary"'), sub);
          return undefined;
        },
        exists: (condition) =>
          sql`${users.id} IN (SELECT ue.user_id FROM user_emails ue WHERE ue.directory_id = ${directoryId} AND ${condition})`,
      };
    },
  };
}

export function groupsTarget(directoryId: string, dialect: Dialect = "sqlite"): SqlTarget {
  const resource = sql`${groups.resource}`;
  return {
    schema: groupSchema,
    dialect,
    single(path) {
      switch (path.attribute.name) {
        case "id":
          return operand(sql`${groups.id}`, path.attribute, { caseExact: true });
        case "displayName":
          return operand(sql`${groups.displayNameLower}`, path.attribute, { lowered: true });
        case "externalId":
          return operand(sql`${groups.externalId}`, path.attribute);
        case "meta":
          return metaOperand(path, sql`${groups.createdAt}`, sql`${groups.modifiedAt}`, "Group", dialect);
        case "schemas":
          return undefined;
        default:
          return jsonSingle(resource, path, dialect);
      }
    },
    collection(path) {
      if (path.attribute.name !== "members") return jsonCollection(resource, path, dialect);
      return membersCollection(
        path.attribute,
        (condition) =>
          sql`${groups.id} IN (SELECT gm.group_id FROM group_members gm WHERE gm.directory_id = ${directoryId} AND ${condition})`,
        dialect,
      );
    },
    present: (path) => (path.attribute.name === "members" ? sql`(${groups.memberCount} > 0)` : undefined),
  };
}

/** Members as rows of group_members (alias gm). Ids are compared exactly: RFC 7643 §3.1 ids are case-exact. */
export function membersCollection(
  attribute: AttributeInfo,
  exists: (condition: SQL) => SQL,
  dialect: Dialect = "sqlite",
): Collection {
  return {
    attribute,
    dialect,
    element: (sub) => {
      if (sub?.name === "value") return operand(sql.raw("gm.member_id"), sub, { caseExact: true });
      if (sub?.name === "display") return operand(sql.raw("gm.display"), sub);
      if (sub?.name === "type") return operand(sql.raw("gm.member_type"), sub);
      return undefined;
    },
    exists,
  };
}

/** RFC 7644 §3.4.2.3 sortBy: the operand's SQL, folded when the attribute is not case-exact. */
export function sortExpression(target: SqlTarget, sortBy: string): SQL {
  const path = resolveAttribute(target.schema, sortBy);
  if (!path || (path.attribute.type === "complex" && !path.sub && !path.attribute.multiValued)) {
    throw invalidValue(`cannot sort by "${sortBy}"`);
  }
  let found: Operand | undefined;
  if (!path.attribute.multiValued) found = target.single(path);
  else {
    // A multi-valued attribute sorts by its first value's `value` (or the named sub-attribute).
    const sub = path.sub ?? path.attribute.sub.get("value");
    const keys = path.schema.extension ? [path.schema.urn, path.attribute.name] : [path.attribute.name];
    const resource = target.schema.resourceType === "User" ? sql`${users.resource}` : sql`${groups.resource}`;
    if (target.dialect === "postgres") {
      const first = [...keys, "0", ...(sub ? [sub.name] : [])];
      found = operand(pgJson(pgDocument(resource), first, (sub ?? path.attribute).type), sub ?? path.attribute);
    } else {
      const json = "$" + keys.map((k) => `."${k}"`).join("") + "[0]" + (sub ? `."${sub.name}"` : "");
      found = operand(sql`json_extract(${resource}, ${json})`, sub ?? path.attribute);
    }
  }
  if (!found) throw invalidValue(`cannot sort by "${sortBy}"`);
  return found.caseExact || found.lowered || found.type !== "string" ? found.expr : sql`scim_fold(${found.expr})`;
}
