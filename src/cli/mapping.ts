/**
 * `scim-bridge mapping …`: validate, apply, preview, show, history, rollback, schema.
 * Exit codes: 0 done; 1 refused (invalid mapping, unknown organization or version); 66 the file
 * cannot be read (EX_NOINPUT). Problems name the file, line and column, then the path in the document.
 */
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { InvalidArgumentError, type Command } from "commander";
import { stringify } from "yaml";
import {
  activateMappingVersion,
  activeMapping,
  listMappingVersions,
  mappingCacheOf,
  saveMappingVersion,
  type MappingCache,
} from "../directory/mappings.js";
import { getOrganization } from "../directory/organizations.js";
import { connectionTypeOf } from "../directory/settings.js";
import { notFound } from "../errors.js";
import { isBridgeError } from "../errors.js";
import { checkMappingFile, mappingJsonSchemaText, type MappingDocument, MappingError } from "../mapping/index.js";
import { packageRoot } from "../paths.js";
import { previewMapping, type PreviewResult, type PreviewUser } from "../sync/preview.js";
import { cliOperator, withStore, type OpenStore } from "./database.js";
import { createProgress } from "./progress.js";

const exitRefused = 1;
const exitNoInput = 66;

/** Signals a handled failure: its message is already printed; the action sets the exit code. */
class Refused extends Error {
  constructor(
    readonly exitCode: number,
    message: string,
  ) {
    super(message);
  }
}

const print = (json: boolean | undefined, value: unknown, text: () => string): void => {
  console.log(json ? JSON.stringify(value, null, 2) : text());
};

function readMapping(file: string, json: boolean | undefined): MappingDocument {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (e) {
    throw new Refused(exitNoInput, `cannot read ${file}: ${(e as Error).message}`);
  }
  const result = checkMappingFile(text, file);
  if (result.ok) return result.mapping;
  if (json) console.log(JSON.stringify({ ok: false, file, issues: result.issues }, null, 2));
  const lines = result.issues.map(
    (i) => `${file}:${i.line ?? 1}:${i.column ?? 1}: ${i.path === "(document)" ? "" : `${i.path}: `}${i.message}`,
  );
  throw new Refused(exitRefused, `${file}: ${result.issues.length} problem(s)\n${lines.join("\n")}`);
}

/** Runs an action with a uniform failure path: message on stderr, exit code set, database closed. */
async function run(action: () => void | Promise<void>): Promise<void> {
  try {
    await action();
  } catch (e) {
    refused(e);
  }
}

/** A refusal's message on stderr and its exit code; anything else is rethrown. */
function refused(e: unknown): void {
  if (e instanceof Refused) {
    console.error(e.message);
    process.exitCode = e.exitCode;
  } else if (isBridgeError(e)) {
    console.error(e instanceof MappingError ? e.message : `${e.kind}: ${e.message}`);
    process.exitCode = exitRefused;
  } else throw e;
}

function parseVersion(value: string): number {
  if (!/^[1-9]\d*$/.test(value)) throw new InvalidArgumentError("a version is a positive whole number");
  return Number(value);
}

function summary(m: MappingDocument): string {
  const keys = Object.keys(m.app_metadata?.keys ?? {}).length;
  return [
    `connection ${m.connection.name} (${m.connection.type})`,
    `user model ${m.userModel}`,
    `${Object.keys(m.profile).length} profile field(s)`,
    `${keys} app_metadata key(s)${m.app_metadata?.namespace ? ` under "${m.app_metadata.namespace}"` : ""}`,
    `${m.roles.rules.length} role rule(s)`,
  ].join(", ");
}

function describeChanges(u: PreviewUser): string {
  const c = u.changes;
  const parts: string[] = [];
  if (c.membership) parts.push(`membership ${c.membership.before}→${c.membership.after}`);
  if (c.roles)
    parts.push(`roles ${[...c.roles.added.map((r) => `+${r}`), ...c.roles.removed.map((r) => `-${r}`)].join(" ")}`);
  if (c.profile) parts.push(`profile ${c.profile.fields.join(",")}`);
  if (c.metadata) parts.push(`app_metadata ${c.metadata.keys.join(",")}`);
  if (c.blocked) parts.push(c.blocked.after ? "blocked" : "unblocked");
  if (u.problems.length > 0) parts.push(`problem: ${u.problems.join("; ")}`);
  return parts.join("; ");
}

function previewText(org: string, p: PreviewResult, limit: number): string {
  const n = (x: number): string => x.toLocaleString("en-US");
  const against =
    p.activeVersion === null ? "the default mapping (none applied yet)" : `active version ${p.activeVersion}`;
  const lines = [
    `Preview for ${org}: candidate vs ${against}. Auth0 was not contacted.`,
    `${n(p.changed.users)} of ${n(p.total)} user(s) would change:`,
    ...(["membership", "roles", "profile", "metadata", "blocked"] as const).map(
      (k) => `  ${k.padEnd(11)} ${n(p.changed[k]).padStart(8)}`,
    ),
    `  ${"problems".padEnd(11)} ${n(p.withProblems).padStart(8)}`,
  ];
  const shown = p.users.slice(0, limit);
  if (shown.length > 0) {
    const width = Math.min(40, Math.max(...shown.map((u) => u.userName.length)));
    lines.push("", ...shown.map((u) => `${u.userName.padEnd(width)}  ${u.status.padEnd(11)}  ${describeChanges(u)}`));
    if (p.users.length > shown.length)
      lines.push(`… ${n(p.users.length - shown.length)} more (--limit, or --json for all)`);
  }
  return lines.join("\n");
}

/** What `mapping show` prints, read in one snapshot; null when there is no such organization. */
function* shownMapping(org: string, cache: MappingCache) {
  const row = yield* getOrganization(org);
  const active = yield* activeMapping(org, cache);
  if (!row || !active) return null;
  return { slug: row.slug, active, connection: yield* connectionTypeOf(active.document.connection.name) };
}

export function registerMappingCommands(program: Command, openStore: OpenStore): void {
  const mapping = program
    .command("mapping")
    .description("per-organization mapping: validate, preview, apply, history, rollback");

  mapping
    .command("validate <file>")
    .description("check a mapping file (YAML or JSON) without touching the database")
    .option("--json", "machine-readable output")
    .action((file: string, opts: { json?: boolean }) =>
      run(() => {
        const m = readMapping(file, opts.json);
        print(opts.json, { ok: true, file, mapping: m }, () => `${file}: valid mapping: ${summary(m)}`);
      }),
    );

  mapping
    .command("apply <org> <file>")
    .description(
      "store the file as the organization's next mapping version, make it active and re-reconcile the organization",
    )
    .option("--comment <text>", "why (kept with the version)")
    .option("--actor <name>", "who (default: the OS user)")
    .option("--json", "machine-readable output")
    .action((org: string, file: string, opts: { comment?: string; actor?: string; json?: boolean }) =>
      run(async () => {
        const m = readMapping(file, opts.json);
        const saved = await withStore(openStore, (store) =>
          store.write(saveMappingVersion(org, m, { actor: cliOperator(opts.actor), comment: opts.comment ?? null })),
        );
        print(opts.json, saved, () =>
          saved.changed
            ? `${org}: mapping version ${saved.version} is active; the organization will be re-reconciled`
            : `${org}: unchanged (version ${saved.version} is already this mapping)`,
        );
      }),
    );

  mapping
    .command("preview <org> <file>")
    .description("what the file would change for every user of the organization, without touching Auth0")
    .option("--json", "machine-readable output (every changed user)")
    .option("--limit <n>", "users listed in text output", (v) => Number.parseInt(v, 10), 50)
    .action((org: string, file: string, opts: { json?: boolean; limit: number }) =>
      run(async () => {
        const m = readMapping(file, opts.json);
        const progress = createProgress({ label: "previewing", silent: opts.json === true });
        const result = await withStore(openStore, (store) =>
          previewMapping(store, org, m, (p) => progress.update(p.done, p.total)),
        );
        progress.finish(`${result.total} users`);
        print(opts.json, result, () => previewText(org, result, opts.limit));
      }),
    );

  mapping
    .command("show <org>")
    .description("print the organization's active mapping, or the default one (labelled as such) when none was applied")
    .option("--json", "machine-readable output")
    .action((org: string, opts: { json?: boolean }) =>
      run(async () => {
        const shown = await withStore(openStore, (store) => store.read(shownMapping(org, mappingCacheOf(store, true))));
        if (!shown) throw notFound(`organization "${org}" not found (scim-bridge org list shows the existing ones)`);
        const isDefault = shown.active.version === null;
        const value = {
          organization: shown.slug,
          version: shown.active.version,
          default: isDefault,
          ...(isDefault ? { connectionTypeKnown: shown.connection.known } : {}),
          mapping: shown.active.document,
        };
        print(opts.json, value, () => {
          const doc = shown.active.document;
          const header = isDefault
            ? [
                `# ${shown.slug}: no mapping applied. This is the DEFAULT mapping, derived from the organization's`,
                `# connection "${doc.connection.name}" (${doc.connection.type}${shown.connection.known ? "" : "; its type was not read from Auth0 yet: run scim-bridge doctor"}).`,
                `# It never deletes Auth0 users. Apply your own with: scim-bridge mapping apply ${shown.slug} <file>`,
              ]
            : [
                `# ${shown.slug}: active mapping, version ${shown.active.version} (scim-bridge mapping history ${shown.slug})`,
              ];
          return `${header.join("\n")}\n${stringify(doc).trimEnd()}`;
        });
      }),
    );

  mapping
    .command("history <org>")
    .description("every mapping version of the organization, newest first")
    .option("--json", "machine-readable output")
    .action((org: string, opts: { json?: boolean }) =>
      run(async () => {
        const versions = await withStore(openStore, (store) => store.read(listMappingVersions(org)));
        print(opts.json, versions, () =>
          versions.length === 0
            ? `${org}: no mapping applied yet (the default mapping is in effect)`
            : versions
                .map(
                  (v) =>
                    `${v.active ? "*" : " "} v${v.version}  ${new Date(v.createdAt).toISOString()}  ${v.createdBy}${v.comment ? `  ${v.comment}` : ""}`,
                )
                .join("\n"),
        );
      }),
    );

  mapping
    .command("rollback")
    .argument("<org>", "organization slug or id")
    .argument("<version>", "the version to make active (see mapping history)", parseVersion)
    .description("make an earlier mapping version active again and re-reconcile the organization")
    .option("--actor <name>", "who (default: the OS user)")
    .option("--json", "machine-readable output")
    .action((org: string, version: number, opts: { actor?: string; json?: boolean }) =>
      run(async () => {
        const saved = await withStore(openStore, (store) =>
          store.write(activateMappingVersion(org, version, cliOperator(opts.actor))),
        );
        print(opts.json, saved, () =>
          saved.changed
            ? `${org}: version ${saved.version} is active again; the organization will be re-reconciled`
            : `${org}: version ${saved.version} is already active`,
        );
      }),
    );

  mapping
    .command("schema")
    .description("print the JSON Schema of mapping files (--write: update mappings/schema.json)")
    .option("--write", "write mappings/schema.json instead of printing")
    .action((opts: { write?: boolean }) => {
      const text = mappingJsonSchemaText();
      if (!opts.write) return void process.stdout.write(text);
      writeFileSync(join(packageRoot, "mappings", "schema.json"), text);
      console.log("wrote mappings/schema.json");
    });
}
