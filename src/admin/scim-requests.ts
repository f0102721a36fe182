import { z } from "zod";
import { listScimRequestLog } from "../directory/scim-request-log.js";
import { directoryOfOrganization } from "./onboarding.js";
import { iso, type AdminRoutes } from "./routes.js";

/**
 * A directory's last SCIM requests (recorded by src/http/scim-request-log.ts, at most 1,000 kept), so a
 * customer can debug its IdP setup itself: what the IdP sent, what we answered, and why it failed.
 */
export function scimRequestRoutes(routes: AdminRoutes): void {
  routes.add(
    {
      method: "get",
      path: "/organizations/:org/directories/:dir/scim-requests",
      access: "organization",
      tag: "directories",
      summary:
        "The directory's last N SCIM requests, newest first: method, path (query parameter names only), status, SCIM error type and detail",
      query: z.strictObject({
        limit: z.coerce.number().int().min(1).max(1000).default(100),
        errorsOnly: z.enum(["true", "false"]).optional().describe("only answers with status 400 or above"),
      }),
      status: 200,
    },
    async (ctx) => {
      const organizationId = ctx.organization.id;
      const directoryId = ctx.param("dir");
      const options = { limit: ctx.query.limit, errorsOnly: ctx.query.errorsOnly === "true" };
      const rows = await ctx.deps.store.read(
        (function* () {
          const directory = yield* directoryOfOrganization(organizationId, directoryId);
          return yield* listScimRequestLog(directory.id, options);
        })(),
      );
      return {
        requests: rows.map((r) => ({
          at: iso(r.at),
          method: r.method,
          path: r.path,
          status: r.status,
          scimType: r.scimType,
          detail: r.detail,
          requestId: r.requestId,
          durationMs: r.durationMs,
        })),
      };
    },
  );
}
