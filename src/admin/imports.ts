import { createWriteStream, mkdirSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { randomBytes } from "node:crypto";
import { pipeline } from "node:stream/promises";
import type { Request } from "express";
import { z } from "zod";
import { conflict, invalidValue, notFound, payloadTooLarge } from "../errors.js";
import { importFormats, type ImportFormat } from "../sync/import/records.js";
import { importReport, listImports, runImport, type ImportDeps, type ImportReport } from "../sync/import/service.js";
import { iso, type AdminImportDeps, type AdminRoutes } from "./routes.js";

/** What the admin API needs to run imports (composition root: the sync engine's client, limiter and gateway). */
/** Largest upload accepted (a million users with hashes is a few hundred MB). */
const MAX_UPLOAD_BYTES = 1024 * 1024 * 1024;
const spoolDir = join(tmpdir(), "scim-bridge-imports");

/**
 * Uploads spool to a private file (0600, in a 0700 directory) because the import reads the file
 * twice (validate everything, then send); the file is deleted as soon as every job has been built
 * from it, or at once when nothing is sent. Files a dead process left behind are removed at start.
 */
function removeOrphans(): void {
  let names: string[];
  try {
    names = readdirSync(spoolDir);
  } catch {
    return;
  }
  for (const name of names) {
    const pid = Number(name.split("-")[0]);
    let alive: boolean;
    try {
      alive = pid === process.pid || (Number.isInteger(pid) && pid > 0 && process.kill(pid, 0));
    } catch {
      alive = false;
    }
    if (!alive) rmSync(join(spoolDir, name), { force: true });
  }
}

async function spool(req: Request): Promise<string> {
  mkdirSync(spoolDir, { recursive: true, mode: 0o700 });
  const path = join(spoolDir, `${process.pid}-${randomBytes(12).toString("hex")}`);
  let size = 0;
  try {
    await pipeline(
      req,
      async function* (source: AsyncIterable<Buffer>) {
        for await (const chunk of source) {
          size += chunk.length;
          if (size > MAX_UPLOAD_BYTES) throw payloadTooLarge(`the upload exceeds ${MAX_UPLOAD_BYTES} bytes`);
          yield chunk;
        }
      },
      createWriteStream(path, { mode: 0o600 }),
    );
  } catch (err) {
    rmSync(path, { force: true });
    throw err;
  }
  return path;
}

async function spoolText(text: string): Promise<string> {
  mkdirSync(spoolDir, { recursive: true, mode: 0o700 });
  const path = join(spoolDir, `${process.pid}-${randomBytes(12).toString("hex")}`);
  writeFileSync(path, text, { mode: 0o600 });
  return path;
}

const importView = (r: ImportReport) => r;

/**
 * User migration (see docs/migrating-users.md): an operator uploads an organization's legacy users
 * with their password hashes; the import runs in the background and its progress is read here.
 */
export function importRoutes(routes: AdminRoutes, deps: AdminImportDeps | undefined): void {
  removeOrphans();
  routes.add(
    {
      method: "post",
      path: "/organizations/:org/user-imports",
      access: "operator",
      tag: "user imports",
      summary: "Import legacy users with their password hashes into Auth0, then into the organization",
      description:
        "The request body is the file itself, sent as application/octet-stream (or application/x-ndjson, text/csv), in the `format` given. " +
        "Every record is validated first: a file with problems answers 400 with every problem by record number and field, and nothing is sent. " +
        "`dryRun=true` answers 200 with the plan. Otherwise the import starts in the background (202) and its progress is at the returned `location`. " +
        "Uploading the same file again resumes an interrupted import. " +
        "409 while another import of the organization runs; one whose heartbeat is over 5 minutes old (its instance died) is marked failed as abandoned instead, and this one starts.",
      query: z.strictObject({
        format: z.enum(importFormats as [ImportFormat, ...ImportFormat[]]),
        upsert: z.enum(["true", "false"]).default("false"),
        dryRun: z.enum(["true", "false"]).default("false"),
        directory: z
          .string()
          .min(1)
          .optional()
          .describe("the directory the migrated users belong to, when the organization has several"),
      }),
      status: 202,
      errors: [409, 413],
    },
    async ({ req, res, organization, query, actor, deps: adminDeps }) => {
      if (!deps && query.dryRun !== "true") throw conflict("imports need the Auth0 connection of a running server");
      // A small JSON array may come as application/json (already parsed, within the JSON body limit).
      let path: string;
      if (req.is("application/json")) {
        if (query.format !== "json" || !Array.isArray(req.body))
          throw invalidValue(
            "an application/json body must be a JSON array with format=json; send other files as application/octet-stream",
          );
        path = await spoolText(JSON.stringify(req.body));
      } else {
        path = await spool(req);
      }
      let removed = false;
      const remove = () => {
        if (!removed) rmSync(path, { force: true });
        removed = true;
      };
      const importDeps: ImportDeps = {
        store: adminDeps.store,
        api: deps?.api ?? {
          submit: () => Promise.reject(new Error("no Auth0")),
          status: () => Promise.reject(new Error("no Auth0")),
          errors: () => Promise.reject(new Error("no Auth0")),
        },
        gateway: deps?.gateway ?? {
          connectionId: () => Promise.reject(new Error("no Auth0")),
          findUsersByEmail: () => Promise.reject(new Error("no Auth0")),
          getUser: () => Promise.reject(new Error("no Auth0")),
        },
        log: adminDeps.log,
      };
      let started: ((id: string) => void) | undefined;
      const startedId = new Promise<string>((resolve) => (started = resolve));
      const run = runImport(importDeps, {
        organization: organization.id,
        ...(query.directory ? { directory: query.directory } : {}),
        filePath: path,
        fileName: "upload",
        format: query.format,
        upsert: query.upsert === "true",
        dryRun: query.dryRun === "true",
        actor,
        onStarted: (id) => started?.(id),
        onFileRead: remove,
      }).finally(() => {
        remove();
        adminDeps.notifyWorker?.();
      });
      const first = await Promise.race([run.then((report) => ({ report })), startedId.then((id) => ({ id }))]);
      if ("report" in first) {
        const report = first.report;
        if (report.state === "invalid") {
          res.status(400).json({
            error: "invalidValue",
            message: `${report.problemCount} problem(s) in the file; nothing was sent to Auth0`,
            report,
          });
          return;
        }
        res.status(report.state === "planned" ? 200 : 202).json(report);
        return;
      }
      run.catch((err: unknown) =>
        adminDeps.log.error({ err, importId: first.id }, "user import failed; upload the same file again to resume"),
      );
      res.location(`/admin/v1/organizations/${organization.slug}/user-imports/${first.id}`);
      res.status(202).json({
        importId: first.id,
        location: `/admin/v1/organizations/${organization.slug}/user-imports/${first.id}`,
        ...(await adminDeps.store.read(importReport(first.id))),
      });
    },
  );

  routes.add(
    {
      method: "get",
      path: "/organizations/:org/user-imports",
      access: "organization",
      tag: "user imports",
      summary: "The organization's user imports, newest first",
      status: 200,
    },
    async ({ deps, organization }) => ({
      imports: (await deps.store.read(listImports(organization.id))).map((r) => ({
        id: r.id,
        fileName: r.fileName,
        format: r.format,
        upsert: r.upsert,
        state: r.state,
        records: r.records,
        chunks: r.chunks,
        lastError: r.lastError,
        createdBy: r.createdBy,
        createdAt: iso(r.createdAt),
        updatedAt: iso(r.updatedAt),
      })),
    }),
  );

  routes.add(
    {
      method: "get",
      path: "/organizations/:org/user-imports/:importId",
      access: "organization",
      tag: "user imports",
      summary:
        "Progress and outcome of one import: users imported, refused (by record number, field and Auth0's code), and recorded in the directory",
      status: 200,
    },
    async (ctx) => {
      const report = await ctx.deps.store.read(importReport(ctx.param("importId"), ctx.organization.id));
      if (!report) throw notFound(`import "${ctx.param("importId")}" not found`);
      return importView(report);
    },
  );
}
