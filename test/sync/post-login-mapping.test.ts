/**
 * The post-login decision keeps parsed mappings between logins, yet answers with the mapping that
 * is active now: one applied by another process sharing the database (a second connection here) is
 * what the very next login gets, and so is a rollback.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { onboardOrganizationOp } from "../../src/admin/onboarding.js";
import { openDatabase, type OpenDatabase } from "../../src/directory/database.js";
import { activateMappingVersion, saveMappingVersion } from "../../src/directory/mappings.js";
import { createUser } from "../../src/directory/users.js";
import { changeBy } from "../../src/directory/write-context.js";
import { parseMapping } from "../../src/mapping/index.js";
import { decidePostLogin } from "../../src/sync/post-login.js";
import { runSync, writeSync } from "../../src/directory/store-op.js";
import { sqliteStore } from "../../src/directory/sql.js";

const DB_CONNECTION = "Username-Password-Authentication";
const operator = { type: "operator" as const, id: "test" };
let dir: string;
let server: OpenDatabase;
let cli: OpenDatabase;

const mapping = (role: string) =>
  parseMapping({
    connection: { name: DB_CONNECTION, type: "database" },
    userModel: "isolated",
    profile: { email: "userName" },
    roles: { default: [role] },
  });

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "scim-bridge-hook-mapping-"));
  const url = `sqlite:${join(dir, "bridge.db")}`;
  server = openDatabase(url);
  cli = openDatabase(url);
});
afterEach(() => {
  server.close();
  cli.close();
  rmSync(dir, { recursive: true, force: true });
});

describe("post-login decision and mapping changes", () => {
  it("answers with the mapping another process applied (or rolled back to) at the very next login", async () => {
    const onboarded = writeSync(
      server.db,
      onboardOrganizationOp({ slug: "acme", connection: DB_CONNECTION }, changeBy(operator)),
    );
    runSync(
      server.db,
      createUser(
        { ...changeBy(operator), organizationId: onboarded.organization.id, directoryId: onboarded.directory.id },
        { schemas: ["urn:ietf:params:scim:schemas:core:2.0:User"], userName: "ada@acme.example", active: true },
      ),
    );
    const login = () =>
      decidePostLogin(sqliteStore(server.sqlite), {
        user: { user_id: "auth0|ada", email: "ada@acme.example" },
        organization: { name: "acme" },
        connection: { name: DB_CONNECTION, strategy: "auth0" },
      });

    writeSync(cli.db, saveMappingVersion("acme", mapping("reader"), { actor: operator }));
    expect(await login()).toMatchObject({ decision: "allow", roles: ["reader"] });
    expect(await login()).toMatchObject({ decision: "allow", roles: ["reader"] });

    writeSync(cli.db, saveMappingVersion("acme", mapping("writer"), { actor: operator }));
    expect(await login()).toMatchObject({ decision: "allow", roles: ["writer"] });

    writeSync(cli.db, activateMappingVersion("acme", 1, operator));
    expect(await login()).toMatchObject({ decision: "allow", roles: ["reader"] });
  });
});
