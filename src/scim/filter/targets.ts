import { sql, type SQL } from "drizzle-orm";
import { groups, users } from "../../../db/schema.js";
import { invalidValue } from "../../errors.js";
import { groupSchema, resolveAttribute, userSchema, type AttributeInfo, type ResolvedPath } from "../schema.js";
import type { Collection, Operand, SqlTarget } from "./sql.js";

/**
 * Where each attribute lives. Indexed columns first (id, userName, externalId, displayName, active,
 * meta.created, meta.lastModified; emails through user_emails; members through group_members); any
 * other attribute is read from the stored SCIM JSON with SQLite's JSON functions, still in SQL.
 */
const jsonPath = (path: ResolvedPath, withSub = true): string => {
  const keys = path.schema.extension ? [path.schema.urn, path.attribute.name] : [path.attribute.name];
  if (withSub && path.sub) keys.push(path.sub.name);
  return "$" + keys.map((k) => `."${k}"`).join("");
};

const operand = (expr: SQL, attribute: AttributeInfo, extra: Partial<Operand> = {}): Operand => ({
  expr,
  type: attribute.type,
  caseExact: attribute.caseExact,
  ...extra,
});

function jsonSingle(resource: SQL, path: ResolvedPath): Operand {
  return operand(sql`json_extract(${resource}, ${jsonPath(path)})`, path.sub ?? path.attribute);
}

function jsonCollection(resource: SQL, path: ResolvedPath): Collection {
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

function metaOperand(path: ResolvedPath, created: SQL, modified: SQL, resourceType: string): Operand | undefined {
  switch (path.sub?.name) {
    case "created":
      return operand(created, path.sub, { epochMs: true });
    case "lastModified":
      return operand(modified, path.sub, { epochMs: true });
    case "resourceType":
      return operand(sql`${resourceType}`, path.sub);
    default:
      return undefined; // meta.location and meta.version are not filterable
  }
}

/** Emails of live users, lower-cased, in user_emails: `emails.value eq` runs on an index. */
const emailColumns = new Set(["value", "type", "primary"]);

export function usersTarget(directoryId: string): SqlTarget {
  const resource = sql`${users.resource}`;
  return {
    schema: userSchema,
    single(path) {
      if (path.schema.extension) return jsonSingle(resource, path);
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
          return metaOperand(path, sql`${users.createdAt}`, sql`${users.modifiedAt}`, "User");
        case "schemas":
          return undefined;
        default:
          return jsonSingle(resource, path);
      }
    },
    collection(path, subs) {
      if (path.schema.extension || path.attribute.name !== "emails" || ![...subs].every((s) => emailColumns.has(s))) {
        return jsonCollection(resource, path);
      }
      return {
        attribute: path.attribute,
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

export function groupsTarget(directoryId: string): SqlTarget {
  const resource = sql`${groups.resource}`;
  return {
    schema: groupSchema,
    single(path) {
      switch (path.attribute.name) {
        case "id":
          return operand(sql`${groups.id}`, path.attribute, { caseExact: true });
        case "displayName":
          return operand(sql`${groups.displayNameLower}`, path.attribute, { lowered: true });
        case "externalId":
          return operand(sql`${groups.externalId}`, path.attribute);
        case "meta":
          return metaOperand(path, sql`${groups.createdAt}`, sql`${groups.modifiedAt}`, "Group");
        case "schemas":
          return undefined;
        default:
          return jsonSingle(resource, path);
      }
    },
    collection(path) {
      if (path.attribute.name !== "members") return jsonCollection(resource, path);
      return membersCollection(
        path.attribute,
        (condition) =>
          sql`${groups.id} IN (SELECT gm.group_id FROM group_members gm WHERE gm.directory_id = ${directoryId} AND ${condition})`,
      );
    },
    present: (path) => (path.attribute.name === "members" ? sql`(${groups.memberCount} > 0)` : undefined),
  };
}

/** Members as rows of group_members (alias gm). Ids are compared exactly: RFC 7643 §3.1 ids are case-exact. */
export function membersCollection(attribute: AttributeInfo, exists: (condition: SQL) => SQL): Collection {
  return {
    attribute,
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
    const json = "$" + keys.map((k) => `."${k}"`).join("") + "[0]" + (sub ? `."${sub.name}"` : "");
    const resource = target.schema.resourceType === "User" ? sql`${users.resource}` : sql`${groups.resource}`;
    found = operand(sql`json_extract(${resource}, ${json})`, sub ?? path.attribute);
  }
  if (!found) throw invalidValue(`cannot sort by "${sortBy}"`);
  return found.caseExact || found.lowered || found.type !== "string" ? found.expr : sql`scim_fold(${found.expr})`;
}
