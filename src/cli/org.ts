import type { Command } from "commander";
import { listDirectories, scimBaseUrl, type DirectoryRow } from "../directory/directories.js";
import { addDirectory, onboardOrganization, rotateDirectoryToken } from "../admin/onboarding.js";
import { changeBy } from "../directory/write-context.js";
import { listOrganizations, type OrganizationRow, type UserModel } from "../directory/organizations.js";
import type { SqlStore } from "../directory/sql.js";
import { cliOperator, withStore as withOpenStore, type OpenStore } from "./database.js";

/**
 * Operator commands for onboarding (docs/design.md, "Contract"): `org create`, `org list`, `directory create`,
 * `token rotate`. They work against the configured database with or without a running server;
 * opening it applies pending migrations. A token is printed once and never again.
 */
/** How a command reaches the database: the store DATABASE_URL names, and where the bridge is served. */
export interface CliDatabase {
  open: OpenStore;
  publicUrl: string;
}

/** Runs `run` on a freshly opened store, closed once it settles. */
export async function withStore<H extends { open: OpenStore }, T>(
  context: () => H,
  run: (store: SqlStore, context: H) => Promise<T>,
): Promise<T> {
  const ctx = context();
  return withOpenStore(ctx.open, (store) => run(store, ctx));
}

const organizationJson = (o: OrganizationRow) => ({
  id: o.id,
  slug: o.slug,
  name: o.displayName,
  model: o.userModel,
  connection: o.connection,
  auth0OrgId: o.auth0OrgId,
  createdAt: new Date(o.createdAt).toISOString(),
});

const directoryJson = (d: DirectoryRow) => ({
  id: d.id,
  organizationId: d.organizationId,
  name: d.name,
  createdAt: new Date(d.createdAt).toISOString(),
});

/** The lifetime in days as given; the onboarding service checks its range. */
const days = (value: string | undefined): number | undefined => (value === undefined ? undefined : Number(value));

function printIssued(
  json: boolean,
  out: { organization: OrganizationRow; directory: DirectoryRow; token: string; publicUrl: string },
): void {
  const scimBase = scimBaseUrl(out.publicUrl, out.directory.id);
  if (json) {
    console.log(
      JSON.stringify({
        organization: organizationJson(out.organization),
        directory: directoryJson(out.directory),
        scimBaseUrl: scimBase,
        token: out.token,
      }),
    );
    return;
  }
  console.log(`organization  ${out.organization.slug} (${out.organization.id})`);
  console.log(`directory     ${out.directory.id}`);
  console.log(`SCIM base URL ${scimBase}`);
  console.log(`SCIM token    ${out.token}`);
  console.log("The token is shown only this once; store it in the IdP's provisioning settings now.");
}

export function registerOrgCommands(program: Command, openDb: () => CliDatabase): void {
  const org = program
    .command("org")
    .description("manage organizations (one per customer, one Auth0 Organization each)");

  org
    .command("create <slug>")
    .description("create an organization with its first directory and SCIM token")
    .option("--name <name>", "display name (default: the slug)")
    .option("--model <model>", "user model: isolated or shared", "isolated")
    .option("--connection <connection>", "Auth0 connection its users live in")
    .option("--directory-name <name>", "name of the first directory", "default")
    .option("--expires-in-days <days>", "expire the first token after this many days")
    .option("--json", "print machine-readable JSON")
    .action(
      async (
        slug: string,
        opts: {
          name?: string;
          model: string;
          connection?: string;
          directoryName: string;
          expiresInDays?: string;
          json?: boolean;
        },
      ) => {
        await withStore(openDb, async (store, { publicUrl }) => {
          const made = await onboardOrganization(
            store,
            {
              slug,
              displayName: opts.name,
              userModel: opts.model as UserModel,
              connection: opts.connection,
              directoryName: opts.directoryName,
              tokenExpiresInDays: days(opts.expiresInDays),
            },
            changeBy(cliOperator()),
          );
          printIssued(opts.json === true, {
            organization: made.organization,
            directory: made.directory,
            token: made.token.token,
            publicUrl,
          });
        });
      },
    );

  org
    .command("list")
    .description("list organizations and their directories")
    .option("--json", "print machine-readable JSON")
    .action(async (opts: { json?: boolean }) => {
      await withStore(openDb, async (store, { publicUrl }) => {
        // One snapshot: every organization with its directories.
        const listed = await store.read(
          (function* () {
            const out: { org: OrganizationRow; directories: DirectoryRow[] }[] = [];
            for (const org of yield* listOrganizations())
              out.push({ org, directories: yield* listDirectories(org.id) });
            return out;
          })(),
        );
        const rows = listed.map(({ org: o, directories }) => ({
          ...organizationJson(o),
          directories: directories.map((d) => ({
            ...directoryJson(d),
            scimBaseUrl: scimBaseUrl(publicUrl, d.id),
          })),
        }));
        if (opts.json) return console.log(JSON.stringify({ organizations: rows }));
        for (const o of rows) {
          console.log(`${o.slug}\t${o.name}\t${o.model}\t${o.connection}`);
          for (const d of o.directories) console.log(`  ${d.id}\t${d.name}\t${d.scimBaseUrl}`);
        }
      });
    });

  program
    .command("directory")
    .description("manage directories (one SCIM client per IdP)")
    .command("create <org>")
    .description("add a directory, with its first SCIM token, to an organization (slug or id)")
    .option("--name <name>", "directory name", "default")
    .option("--expires-in-days <days>", "expire the token after this many days")
    .option("--json", "print machine-readable JSON")
    .action(async (orgRef: string, opts: { name: string; expiresInDays?: string; json?: boolean }) => {
      await withStore(openDb, async (store, { publicUrl }) => {
        const made = await addDirectory(
          store,
          orgRef,
          { name: opts.name, tokenExpiresInDays: days(opts.expiresInDays) },
          changeBy(cliOperator()),
        );
        printIssued(opts.json === true, {
          organization: made.organization,
          directory: made.directory,
          token: made.token.token,
          publicUrl,
        });
      });
    });

  program
    .command("token")
    .description("manage SCIM tokens")
    .command("rotate <directory>")
    .description("issue a new SCIM token; when two are active, the older is revoked")
    .option("--expires-in-days <days>", "expire the new token after this many days")
    .option("--json", "print machine-readable JSON")
    .action(async (directoryId: string, opts: { expiresInDays?: string; json?: boolean }) => {
      await withStore(openDb, async (store, { publicUrl }) => {
        const { directory, token } = await rotateDirectoryToken(
          store,
          directoryId,
          { expiresInDays: days(opts.expiresInDays) },
          changeBy(cliOperator()),
        );
        const out = {
          directory: directoryJson(directory),
          scimBaseUrl: scimBaseUrl(publicUrl, directory.id),
          token: token.token,
          hint: token.record.hint,
        };
        if (opts.json) return console.log(JSON.stringify(out));
        console.log(`SCIM token    ${out.token}`);
        console.log(`for           ${out.scimBaseUrl}`);
        console.log("Shown only this once. The previous token keeps working until the next rotation revokes it.");
      });
    });
}
