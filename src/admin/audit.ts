import { z } from "zod";
import { queryAudit as queryAuditEntries, type AuditRow } from "../directory/audit.js";
import type { SqlStore } from "../directory/sql.js";
import { getOrganization } from "../directory/organizations.js";
import { notFound } from "../errors.js";
import { iso, limitParam, timeParam, type AdminRoutes } from "./routes.js";

/**
 * The audit trail (append-only; written by every change in its own transaction): who (actor), which
 * organization, what (action), on what (target), a before/after summary without secrets, the request
 * id, and when (UTC). Operators query all of it; a customer admin its own organization's.
 */
const parseJson = (text: string | null): unknown => (text === null ? null : JSON.parse(text));

export const auditView = (e: AuditRow) => ({
  id: e.id,
  at: iso(e.at),
  actor: { type: e.actorType, id: e.actorId },
  organizationId: e.organizationId,
  directoryId: e.directoryId,
  action: e.action,
  target: { type: e.targetType, id: e.targetId },
  before: parseJson(e.before),
  after: parseJson(e.after),
  requestId: e.requestId,
});

const filters = {
  actorType: z.enum(["directory", "operator", "org_admin", "system"]).optional(),
  actorId: z.string().min(1).max(200).optional(),
  action: z.string().min(1).max(100).optional().describe('exact action, or a prefix ending in "." (e.g. "hold.")'),
  targetType: z.string().min(1).max(50).optional(),
  targetId: z.string().min(1).max(200).optional(),
  directory: z.string().min(1).max(100).optional(),
  requestId: z.string().min(1).max(128).optional(),
  since: timeParam.optional().describe("ISO 8601 or epoch ms, inclusive"),
  until: timeParam.optional().describe("ISO 8601 or epoch ms, inclusive"),
  limit: limitParam(500, 100),
  before: z.coerce.number().int().min(1).optional().describe("cursor: `next` of the previous page"),
};
const filterSchema = z.strictObject(filters);
type AuditQuery = z.output<typeof filterSchema> & { organizationId?: string };

export async function queryAudit(
  store: SqlStore,
  q: AuditQuery,
): Promise<{ entries: ReturnType<typeof auditView>[]; next: number | null }> {
  const page = await store.read(queryAuditEntries(q));
  return { entries: page.entries.map(auditView), next: page.next };
}

export function auditRoutes(routes: AdminRoutes): void {
  routes.add(
    {
      method: "get",
      path: "/audit",
      access: "operator",
      tag: "audit",
      summary: "Query the audit trail of every organization, newest first",
      query: z.strictObject({
        ...filters,
        organization: z.string().min(1).optional().describe("organization id or slug"),
      }),
      status: 200,
    },
    async ({ deps, query }) => {
      const { organization, ...rest } = query;
      const page = await deps.store.read(
        (function* () {
          let organizationId: string | undefined;
          if (organization !== undefined) {
            // A deleted organization's entries stay queryable by its id.
            organizationId =
              (yield* getOrganization(organization))?.id ??
              (/^[0-9a-f-]{36}$/.test(organization) ? organization : undefined);
            if (organizationId === undefined) throw notFound(`organization "${organization}" not found`);
          }
          return yield* queryAuditEntries({ ...rest, organizationId });
        })(),
      );
      return { entries: page.entries.map(auditView), next: page.next };
    },
  );

  routes.add(
    {
      method: "get",
      path: "/organizations/:org/audit",
      access: "organization",
      tag: "audit",
      summary: "The organization's audit trail, newest first",
      query: filterSchema,
      status: 200,
    },
    ({ deps, organization, query }) => queryAudit(deps.store, { ...query, organizationId: organization.id }),
  );
}
