import type { GroupRow } from "../directory/groups.js";
import type { MemberRow } from "../directory/members.js";
import type { UserRow } from "../directory/users.js";
import type { ScimContext } from "./context.js";
import type { ScimDocument } from "./normalize.js";
import type { UserSyncState } from "../sync/sync-state.js";
import { groupSchema, syncStateUrn, userSchema, type ResourceSchema } from "./schema.js";
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

/** The read-only sync-state extension (scim/schemas/sync-state.json), added only when a request names it. */
export function withSyncState(document: ScimDocument, state: UserSyncState | undefined): ScimDocument {
  if (!state) return document;
  const iso = (ms: number | null) => (ms === null ? undefined : new Date(ms).toISOString());
  const extension = Object.fromEntries(
    Object.entries({
      auth0UserId: state.auth0UserId ?? undefined,
      status: state.status,
      appliedAt: iso(state.appliedAt),
      pendingSince: iso(state.pendingSince),
      lastError: state.lastError ?? undefined,
      blocked: state.applied?.exists ? (state.applied.blocked ?? undefined) : undefined,
      member: state.applied?.exists ? state.applied.member : undefined,
      roles: state.applied?.exists && state.applied.roles.length > 0 ? state.applied.roles : undefined,
    }).filter(([, v]) => v !== undefined),
  );
  return { ...document, schemas: [...(document.schemas as string[]), syncStateUrn], [syncStateUrn]: extension };
}

/** `members` undefined: not loaded (excluded by the request), so the attribute is left out. */
export function groupToScim(
  ctx: ScimContext,
  row: GroupRow,
  members?: Pick<MemberRow, "memberId" | "display" | "memberType">[],
): ScimDocument {
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
