import { z } from "zod";
import {
  activateMappingVersion,
  readActiveMapping,
  getMappingVersion,
  listMappingVersions,
  saveMappingVersion,
} from "../directory/mappings.js";
import { invalidValue } from "../errors.js";
import { validateMapping, type MappingDocument } from "../mapping/index.js";
import { previewMapping } from "../sync/preview.js";
import { intParam, iso, limitParam, type AdminRoutes } from "./routes.js";

/**
 * Live mapping changes (docs/design.md, "Concepts" and the last row of "What Auth0 sees"): validate,
 * preview (dry run, Auth0 is not contacted), apply a new version, history, roll back. Applying or
 * rolling back re-reconciles the whole organization in the background lane.
 */
const mappingField = z.record(z.string(), z.unknown()).describe("a mapping document (mappings/schema.json)");

/** The mapping, or 400 naming every problem by its path inside `mapping`. */
function validMapping(input: unknown): MappingDocument {
  const result = validateMapping(input);
  if (result.ok) return result.mapping;
  throw invalidValue(
    result.issues.map((i) => `mapping${i.path === "(document)" ? "" : `.${i.path}`}: ${i.message}`).join("; "),
  );
}

export function mappingRoutes(routes: AdminRoutes): void {
  routes.add(
    {
      method: "post",
      path: "/mappings/validate",
      access: "operator",
      tag: "mappings",
      summary: "Check a mapping document; answers 200 with every problem by path, or the filled-in document",
      body: z.strictObject({ mapping: mappingField }),
      status: 200,
    },
    ({ body }) => {
      const result = validateMapping(body.mapping);
      return result.ok ? { ok: true, mapping: result.mapping } : { ok: false, issues: result.issues };
    },
  );

  routes.add(
    {
      method: "get",
      path: "/organizations/:org/mappings",
      access: "operator",
      tag: "mappings",
      summary: "Mapping history, newest first",
      status: 200,
    },
    async ({ deps, organization }) => ({
      activeVersion: organization.activeMappingVersion,
      versions: (await deps.store.read(listMappingVersions(organization.id))).map((v) => ({
        ...v,
        createdAt: iso(v.createdAt),
      })),
    }),
  );

  routes.add(
    {
      method: "get",
      path: "/organizations/:org/mappings/active",
      access: "operator",
      tag: "mappings",
      summary: "The active mapping (the default one when none was applied: version null)",
      status: 200,
    },
    async ({ deps, organization }) => {
      const active = (await readActiveMapping(deps.store, organization.id))!;
      return { version: active.version, mapping: active.document };
    },
  );

  routes.add(
    {
      method: "get",
      path: "/organizations/:org/mappings/:version",
      access: "operator",
      tag: "mappings",
      summary: "One stored mapping version",
      status: 200,
    },
    async ({ deps, organization, param }) => {
      const version = intParam(param("version"), "version");
      return {
        version,
        active: organization.activeMappingVersion === version,
        mapping: await deps.store.read(getMappingVersion(organization.id, version)),
      };
    },
  );

  routes.add(
    {
      method: "post",
      path: "/organizations/:org/mappings/preview",
      access: "operator",
      tag: "mappings",
      summary:
        "Dry run: what a candidate mapping would change for every user of the organization, against the active one",
      body: z.strictObject({
        mapping: mappingField,
        limit: limitParam(5000, 100).describe("changed users listed (counts cover all)"),
      }),
      status: 200,
    },
    async ({ deps, organization, body }) => {
      const result = await previewMapping(deps.store, organization.id, validMapping(body.mapping));
      return { ...result, users: result.users.slice(0, body.limit), usersTruncated: result.users.length > body.limit };
    },
  );

  routes.add(
    {
      method: "post",
      path: "/organizations/:org/mappings",
      access: "operator",
      tag: "mappings",
      summary:
        "Apply: store the mapping as the next version, make it active and re-reconcile the organization (unchanged documents are not stored again)",
      body: z.strictObject({ mapping: mappingField, comment: z.string().max(500).optional() }),
      status: 200,
    },
    async ({ deps, organization, body, actor, requestId }) => {
      const mapping = validMapping(body.mapping);
      const saved = await deps.store.write(
        saveMappingVersion(organization.id, mapping, { actor, comment: body.comment ?? null, requestId }),
      );
      if (saved.changed) deps.notifyWorker?.();
      return saved;
    },
  );

  routes.add(
    {
      method: "post",
      path: "/organizations/:org/mappings/:version/activate",
      access: "operator",
      tag: "mappings",
      summary: "Roll back (or forward): make a stored version active again and re-reconcile the organization",
      status: 200,
    },
    async ({ deps, organization, param, actor, requestId, now }) => {
      const version = intParam(param("version"), "version");
      const saved = await deps.store.write(activateMappingVersion(organization.id, version, actor, { now, requestId }));
      if (saved.changed) deps.notifyWorker?.();
      return saved;
    },
  );
}
