/**
 * The post-login decision keeps parsed mappings between logins, yet answers with the mapping that
 * is active now: one applied by another process sharing the database (a second store here: a
 * connection to the same SQLite file, or a pool on the same PostgreSQL database) is what the very
 * next login gets, and so is a rollback.
 */
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { onboardOrganizationOp } from "../../src/admin/onboarding.js";
import { activateMappingVersion, saveMappingVersion } from "../../src/directory/mappings.js";
import { createUser } from "../../src/directory/users.js";
import { changeBy } from "../../src/directory/write-context.js";
import { parseMapping } from "../../src/mapping/index.js";
import { decidePostLogin } from "../../src/sync/post-login.js";
import type { SqlStore } from "../../src/directory/sql.js";
import { openTestStores } from "../support/test-dialect.js";

const DB_CONNECTION = "Username-Password-Authentication";
const operator = { type: "operator" as const, id: "test" };
let opened: Awaited<ReturnType<typeof openTestStores>>;
let server: SqlStore;
let cli: SqlStore;

const mapping = (role: string) =>
  parseMapping({
    connection: { name: DB_CONNECTION, type: "database" },
    userModel: "isolated",
    profile: { email: "userName" },
    roles: { default: [role] },
  });

beforeEach(async () => {
  opened = await openTestStores(2);
  [server, cli] = opened.stores as [SqlStore, SqlStore];
});
afterEach(() => opened.close());

describe("post-login decision and mapping changes", () => {
  it("answers with the mapping another process applied (or rolled back to) at the very next login", async () => {
    const onboarded = await server.write(
      onboardOrganizationOp({ slug: "acme", connection: DB_CONNECTION }, changeBy(operator)),
    );
    await server.write(
      createUser(
        { ...changeBy(operator), organizationId: onboarded.organization.id, directoryId: onboarded.directory.id },
        { schemas: ["urn:ietf:params:scim:schemas:core:2.0:User"], userName: "ada@acme.example", active: true },
      ),
    );
    const login = () =>
      decidePostLogin(server, {
        user: { user_id: "auth0|ada", email: "ada@acme.example" },
        organization: { name: "acme" },
        connection: { name: DB_CONNECTION, strategy: "auth0" },
      });

    await cli.write(saveMappingVersion("acme", mapping("reader"), { actor: operator }));
    expect(await login()).toMatchObject({ decision: "allow", roles: ["reader"] });
    expect(await login()).toMatchObject({ decision: "allow", roles: ["reader"] });

    await cli.write(saveMappingVersion("acme", mapping("writer"), { actor: operator }));
    expect(await login()).toMatchObject({ decision: "allow", roles: ["writer"] });

    await cli.write(activateMappingVersion("acme", 1, operator));
    expect(await login()).toMatchObject({ decision: "allow", roles: ["reader"] });
  });
});
