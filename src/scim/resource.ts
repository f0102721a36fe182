import type { GroupRow } from "../directory/groups.js";
import type { MemberRow } from "../directory/members.js";
import type { UserRow } from "../directory/users.js";
import type { ScimContext } from "./context.js";
import type { ScimDocument } from "./normalize.js";
import { groupSchema, userSchema, type ResourceSchema } from "./schema.js";
import { schemasOf } from "./validate.js";

/**
 * Stored rows → SCIM resources. meta.location and member $ref come from the request's directory base
 * URL (the per-request context), never from process state. meta.version is the ETag (RFC 7644 §3.14).
 */
export const etagOf = (version: number): string => `W/"${version}"`;

interface Stored {
  id: string;
  resource: string;
  version: number;
  createdAt: number;
  modifiedAt: number;
}

function toScim(rs: ResourceSchema, ctx: ScimContext, row: Stored, extra: ScimDocument = {}): ScimDocument {
  const { externalId, ...rest } = JSON.parse(row.resource) as ScimDocument;
  return {
    schemas: schemasOf(rs, rest),
    id: row.id,
    ...(externalId !== undefined ? { externalId } : {}),
    ...rest,
    ...extra,
    meta: {
      resourceType: rs.resourceType,
      created: new Date(row.createdAt).toISOString(),
      lastModified: new Date(row.modifiedAt).toISOString(),
      location: `${ctx.baseUrl}${rs.endpoint}/${row.id}`,
      version: etagOf(row.version),
    },
  };
}

export const userToScim = (ctx: ScimContext, row: UserRow): ScimDocument => toScim(userSchema, ctx, row);

/** `members` undefined: not loaded (excluded by the request), so the attribute is left out. */
export function groupToScim(ctx: ScimContext, row: GroupRow, members?: Pick<MemberRow, "memberId" | "display" | "memberType">[]): ScimDocument {
  const extra: ScimDocument = {};
  if (members && members.length > 0) {
    extra.members = members.map((m) => ({
      value: m.memberId,
      ...(m.display !== null ? { display: m.display } : {}),
      $ref: `${ctx.baseUrl}/${m.memberType === "Group" ? "Groups" : "Users"}/${m.memberId}`,
      type: m.memberType,
    }));
  }
  return toScim(groupSchema, ctx, row, extra);
}

export const locationOf = (document: ScimDocument): string => (document.meta as { location: string }).location;
