import type { MemberOperation } from "../directory/groups.js";
import type { MemberInput } from "../directory/members.js";
import { invalidPath, invalidValue } from "../errors.js";
import { elementCondition } from "./filter/sql.js";
import { membersCollection } from "./filter/targets.js";
import type { TargetedOperation } from "./patch/apply.js";
import { groupSchema, resolvePath } from "./schema.js";

/**
 * Group members in requests. Members must be users of the same directory (unknown ids are 400
 * invalidValue, so nothing dangles); keys in any case; `display` kept, and the Microsoft suite's
 * `displayName` taken as display; `$ref` ignored. PATCH operations on members become membership
 * edits (MemberOperation) that touch only the rows they change.
 */
const membersAttribute = groupSchema.core.attributes.get("members")!;
const isObject = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);

const field = (o: Record<string, unknown>, name: string): unknown => {
  const key = Object.keys(o).find((k) => k.toLowerCase() === name);
  return key === undefined ? undefined : o[key];
};

export function parseMembers(value: unknown, where: string): MemberInput[] {
  if (value === undefined || value === null) return [];
  const items = Array.isArray(value) ? value : [value];
  return items.map((item, i) => {
    // The Microsoft suite's garbage folder sends a bare string here; that names no member object.
    if (!isObject(item)) throw invalidValue(`${where}: member ${i + 1} must be an object like {"value": "<user id>"}`);
    const id = field(item, "value");
    if (typeof id !== "string" || id.trim() === "")
      throw invalidValue(`${where}: member ${i + 1} needs a "value" holding a user id`);
    const type = field(item, "type");
    if (type !== undefined && type !== null && !(typeof type === "string" && type.toLowerCase() === "user")) {
      throw invalidValue(`${where}: member ${i + 1}: only users can be members (nested groups are not supported)`);
    }
    const display = field(item, "display") ?? field(item, "displayname");
    return { value: id, ...(typeof display === "string" && display !== "" ? { display } : {}) };
  });
}

/** Member ids named by a removal value: [{"value": id}] (Entra) or bare ids. */
function parseMemberIds(value: unknown, where: string): string[] {
  const items = Array.isArray(value) ? value : [value];
  return items.map((item, i) => {
    const id = isObject(item) ? field(item, "value") : item;
    if (typeof id !== "string" || id === "")
      throw invalidValue(`${where}: member ${i + 1} needs a "value" holding a user id`);
    return id;
  });
}

export const targetsMembers = (operation: TargetedOperation): boolean => {
  const resolved = resolvePath(groupSchema, operation.path.attrPath);
  return resolved?.attribute?.name === "members" && !resolved.schema.extension;
};

/** One PATCH operation on `members` → membership edits (RFC 7644 §3.5.2; Entra and Okta group push shapes). */
export function memberOperations(operation: TargetedOperation): MemberOperation[] {
  const where = `operation ${operation.index}`;
  const { path, op, value } = operation;
  if (path.sub !== undefined || path.attrPath.includes(".")) {
    throw invalidPath(`${where}: member sub-attributes are immutable; add or remove whole members`);
  }
  const filter = path.filter;
  if (filter) {
    // members[value eq "…"]: Okta and Entra's newer PATCH shape; evaluated in SQL on group_members.
    const removeWhere: MemberOperation = {
      kind: "removeWhere",
      // Built for the dialect the store runs on when the write runs.
      condition: (dialect) =>
        elementCondition(
          filter,
          membersCollection(membersAttribute, (c) => c, dialect),
        ),
    };
    if (op === "remove") return [removeWhere];
    return [removeWhere, { kind: "add", members: parseMembers(value, where) }];
  }
  switch (op) {
    case "add":
      return [{ kind: "add", members: parseMembers(value, where) }];
    case "replace":
      return value === null || value === undefined
        ? [{ kind: "removeAll" }]
        : [{ kind: "replace", members: parseMembers(value, where) }];
    case "remove":
      // No value: every member (RFC 7644 §3.5.2.2). A value list: only those (Entra; RFC-literal
      // servers would empty the group here).
      return value === undefined || value === null
        ? [{ kind: "removeAll" }]
        : [{ kind: "remove", ids: parseMemberIds(value, where) }];
  }
}
