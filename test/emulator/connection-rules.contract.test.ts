/**
 * Connection options and the user rules that follow from them, through node-auth0 v7. Each test
 * names the public Auth0 source of the rule it checks.
 */
import { Management } from "auth0";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { passwordPolicyViolations, type ConnectionOptions } from "../../src/emulator/index.js";
import { DB, createDbUser, expectApiError, http, startHarness, uniqueEmail, type Harness } from "./helpers.js";

let h: Harness;
beforeAll(async () => {
  h = await startHarness({
    connections: [
      { name: "acme-okta", strategy: "okta", id: "con_okta" },
      { name: "acme-waad", strategy: "waad", id: "con_waad", options: { set_user_root_attributes: "on_first_login" } },
      { name: "acme-oidc", strategy: "oidc", id: "con_oidc", options: { set_user_root_attributes: "never_on_login" } },
      {
        name: "usernames",
        strategy: "auth0",
        id: "con_usernames",
        options: { passwordPolicy: "good", requires_username: true, validation: { username: { min: 3, max: 10 } } },
      },
    ],
  });
});
afterAll(() => h.emulator.close());
beforeEach(async () => {
  h.emulator.reset();
  await h.client.organizations.create({
    name: "acme",
    enabled_connections: [
      { connection_id: "con_okta", assign_membership_on_login: true },
      { connection_id: "con_waad", assign_membership_on_login: true },
      { connection_id: "con_oidc", assign_membership_on_login: true },
    ],
  });
});

const dbId = () => h.emulator.state.connectionByName(DB)!.id;

/** An enterprise user as a first login creates it. */
async function enterpriseUser(connection: string, email = uniqueEmail("idp")): Promise<string> {
  const result = await h.emulator.login({
    connection,
    email,
    organization: "acme",
    given_name: "Ann",
    family_name: "Smith",
    name: "Ann Smith",
  });
  if (result.decision !== "allow") throw new Error(`login refused: ${result.reason}`);
  return result.user.user_id;
}

describe("connection options (node-auth0 ConnectionOptionsAuth0; Auth0 docs: Configure Connection Sync with Auth0)", () => {
  it("GET /connections and /connections/{id} return options: database policy, enterprise sync setting", async () => {
    const list = await h.client.connections.list();
    const byName = Object.fromEntries(list.data.map((c) => [c.name, c]));
    expect(byName[DB]!.options).toMatchObject({ passwordPolicy: "good", requires_username: false });
    expect(byName["acme-okta"]!.options).toMatchObject({ set_user_root_attributes: "on_each_login" });
    expect((await h.client.connections.get("con_waad")).options).toMatchObject({
      set_user_root_attributes: "on_first_login",
    });
  });

  it("PATCH /connections/{id} replaces the whole options object (node-auth0 reference, connections.update)", async () => {
    const updated = await h.client.connections.update(dbId(), {
      options: { passwordPolicy: "excellent", password_dictionary: { enable: true, dictionary: ["acmecorp2026"] } },
    });
    expect(updated.options).toEqual({
      passwordPolicy: "excellent",
      password_dictionary: { enable: true, dictionary: ["acmecorp2026"] },
    });
    // requires_username and brute_force_protection were not sent: gone, as on Auth0.
    expect((await h.client.connections.get(dbId())).options).not.toHaveProperty("requires_username");
    // An enterprise connection whose options are replaced without the sync setting falls back to on_each_login.
    await h.client.connections.update("con_waad", { options: { domain_aliases: ["acme.test"] } });
    const id = await enterpriseUser("acme-waad");
    await expectApiError(
      h.client.users.update(id, { name: "Other" }),
      Management.BadRequestError,
      400,
      "operation_not_supported",
    );
  });

  it("refuses unknown values and wrong types with 400 invalid_body and changes nothing", async () => {
    const before = structuredClone(h.emulator.state.connections.get(dbId())!.options);
    const bad: Record<string, unknown>[] = [
      { passwordPolicy: "strong" },
      { set_user_root_attributes: "sometimes" },
      { password_complexity_options: { min_length: 0 } },
      { password_complexity_options: { min_length: 73 } },
      { password_history: { enable: true, size: 25 } },
      { password_dictionary: { dictionary: ["x"] } },
      { requires_username: "yes" },
      { validation: { username: { min: 10, max: 3 } } },
      { password_options: { dictionary: { active: true, custom: [1] } } },
      { password_options: { complexity: { character_types: ["emoji"] } } },
    ];
    for (const options of bad) {
      await expectApiError(
        h.client.connections.update(dbId(), { options: options as Management.UpdateConnectionOptions }),
        Management.BadRequestError,
        400,
        "invalid_body",
      );
    }
    const unknownTop = { strategy: "okta" } as unknown as Management.UpdateConnectionRequestContent;
    await expectApiError(
      h.client.connections.update(dbId(), unknownTop),
      Management.BadRequestError,
      400,
      "invalid_body",
    );
    await expectApiError(
      h.client.connections.update("con_nope", { options: {} }),
      Management.NotFoundError,
      404,
      "inexistent_connection",
    );
    expect(h.emulator.state.connections.get(dbId())!.options).toEqual(before);
  });

  it("declares connections with options through the control plane, validated the same way", async () => {
    const ok = await http(h.emulator, "POST", "/__emulator/connections", {
      name: "other-db",
      strategy: "auth0",
      options: { passwordPolicy: "low" },
    });
    expect(ok.status).toBe(201);
    expect(ok.body).toMatchObject({ name: "other-db", options: { passwordPolicy: "low" } });
    const bad = await http(h.emulator, "POST", "/__emulator/connections", {
      name: "bad-db",
      strategy: "auth0",
      options: { passwordPolicy: "great" },
    });
    expect(bad.status).toBe(400);
  });
});

describe("password policies (Auth0 docs: Password Strength in Auth0 Database Connections; Configure Password Policies)", () => {
  const setPolicy = (options: ConnectionOptions) =>
    h.client.connections.update(dbId(), { options: options as Management.UpdateConnectionOptions });

  it("a new tenant's database connection refuses a weak password with 400 PasswordStrengthError, and creates nothing", async () => {
    const err = await expectApiError(
      h.client.users.create({ connection: DB, email: uniqueEmail(), password: "hello" }),
      Management.BadRequestError,
      400,
    );
    expect((err.body as { message: string }).message).toBe("PasswordStrengthError: Password is too weak");
    expect(h.emulator.state.users.size).toBe(0);
  });

  it("excellent refuses three identical characters in a row and fewer than 10 characters; good accepts both", async () => {
    await setPolicy({ passwordPolicy: "excellent" });
    await expectApiError(
      h.client.users.create({ connection: DB, email: uniqueEmail(), password: "Abc-xyz-1110" }),
      Management.BadRequestError,
      400,
    );
    await expectApiError(
      h.client.users.create({ connection: DB, email: uniqueEmail(), password: "Ab-xy-19" }),
      Management.BadRequestError,
      400,
    );
    await createDbUser(h.client, uniqueEmail(), { password: "Abc-xyz-1109" });
    await setPolicy({ passwordPolicy: "good" });
    await createDbUser(h.client, uniqueEmail(), { password: "Abc-xyz-1110" });
  });

  it("applies to PATCH password too, and a refused PATCH leaves the user (and its block) as it was", async () => {
    const id = await createDbUser(h.client);
    await h.client.users.update(id, { blocked: true });
    const err = await expectApiError(h.client.users.update(id, { password: "weak" }), Management.BadRequestError, 400);
    expect((err.body as { message: string }).message).toBe("PasswordStrengthError: Password is too weak");
    expect(h.emulator.state.users.get(id)!.blocked).toBe(true);
  });

  it("min_length supersedes the level's minimum; the dictionary and personal-data options answer their own errors", async () => {
    await setPolicy({
      passwordPolicy: "low",
      password_complexity_options: { min_length: 12 },
      password_dictionary: { enable: true, dictionary: ["Acme-Rocks-2026"] },
      password_no_personal_info: { enable: true },
    });
    await expectApiError(
      h.client.users.create({ connection: DB, email: uniqueEmail(), password: "elevenchars" }),
      Management.BadRequestError,
      400,
    );
    const common = await expectApiError(
      h.client.users.create({ connection: DB, email: uniqueEmail(), password: "acme-rocks-2026" }),
      Management.BadRequestError,
      400,
    );
    expect((common.body as { message: string }).message).toBe("PasswordDictionaryError: Password is too common");
    const personal = await expectApiError(
      h.client.users.create({ connection: DB, email: "margaret@example.test", password: "xx-margaret-xx" }),
      Management.BadRequestError,
      400,
    );
    expect((personal.body as { message: string }).message).toBe(
      "PasswordNoUserInfoError: Password contains user information",
    );
  });

  it("password history refuses a recent password", async () => {
    await setPolicy({ passwordPolicy: "good", password_history: { enable: true, size: 2 } });
    const id = await createDbUser(h.client, uniqueEmail(), { password: "First-Pass-1" });
    await h.client.users.update(id, { password: "Second-Pass-2" });
    const err = await expectApiError(
      h.client.users.update(id, { password: "First-Pass-1" }),
      Management.BadRequestError,
      400,
    );
    expect((err.body as { message: string }).message).toBe("PasswordHistoryError: Password has previously been used");
  });

  it("the exported checker names each violated rule", () => {
    expect(passwordPolicyViolations("Correct-Horse-9", { passwordPolicy: "excellent" })).toEqual([]);
    expect(passwordPolicyViolations("aaa", { passwordPolicy: "none" })).toEqual([]);
    expect(passwordPolicyViolations("", { passwordPolicy: "none" })).toHaveLength(1);
    expect(passwordPolicyViolations("abcdefgh", { passwordPolicy: "fair" })).toEqual([
      expect.stringMatching(/^PasswordStrengthError: Contain at least 3/),
    ]);
    expect(passwordPolicyViolations("abcdefgH1", { passwordPolicy: "fair" })).toEqual([]);
    expect(passwordPolicyViolations("Xyz-1115-abcd", { passwordPolicy: "excellent" })).toEqual([
      expect.stringMatching(/identical/),
    ]);
    expect(
      passwordPolicyViolations("Xy-12-ab", { passwordPolicy: "good", password_complexity_options: { min_length: 9 } }),
    ).toEqual([expect.stringMatching(/At least 9 characters/)]);
    expect(
      passwordPolicyViolations(
        "Ann-Smith-2026",
        { password_no_personal_info: { enable: true } },
        { given_name: "Ann", family_name: "Smith" },
      ),
    ).toEqual(["PasswordNoUserInfoError: Password contains user information"]);
    expect(passwordPolicyViolations("PASSWORD", { password_dictionary: { enable: true } })).toEqual([
      "PasswordDictionaryError: Password is too common",
    ]);
    // Flexible Password Policy: block three or more sequential or identical characters.
    const flexible: ConnectionOptions = {
      password_options: {
        complexity: {
          min_length: 8,
          character_types: ["uppercase", "lowercase", "number"],
          character_type_rule: "all",
          sequential_characters: "block",
          identical_characters: "block",
          max_length_exceeded: "error",
        },
      },
    };
    expect(passwordPolicyViolations("Xq7-abc-Zt", flexible)).toEqual([expect.stringMatching(/sequential/)]);
    expect(passwordPolicyViolations("Xq7-cba-Zt", flexible)).toEqual([expect.stringMatching(/sequential/)]);
    expect(passwordPolicyViolations("Xq7-acb-Zt", flexible)).toEqual([]);
    expect(passwordPolicyViolations(`Xq7${"ab".repeat(40)}`, flexible)).toEqual([expect.stringMatching(/72 bytes/)]);
  });
});

describe('usernames (node-auth0 UserCreate.username: "Only valid if the connection requires a username")', () => {
  it("refuses a username on a connection that does not require one", async () => {
    const err = await expectApiError(
      h.client.users.create({ connection: DB, email: uniqueEmail(), password: "Correct-Horse-9", username: "ann" }),
      Management.BadRequestError,
      400,
      "operation_not_supported",
    );
    expect((err.body as { message: string }).message).toContain("requires_username");
    const id = await createDbUser(h.client);
    await expectApiError(
      h.client.users.update(id, { username: "ann" }),
      Management.BadRequestError,
      400,
      "operation_not_supported",
    );
  });

  it("requires one where the connection does, within its length bounds, unique in the connection", async () => {
    await expectApiError(
      h.client.users.create({ connection: "usernames", email: uniqueEmail(), password: "Correct-Horse-9" }),
      Management.BadRequestError,
      400,
      "invalid_body",
    );
    await expectApiError(
      h.client.users.create({
        connection: "usernames",
        email: uniqueEmail(),
        password: "Correct-Horse-9",
        username: "al",
      }),
      Management.BadRequestError,
      400,
      "invalid_body",
    );
    const user = await h.client.users.create({
      connection: "usernames",
      email: uniqueEmail(),
      password: "Correct-Horse-9",
      username: "ann_s",
    });
    expect(user.username).toBe("ann_s");
    await expectApiError(
      h.client.users.create({
        connection: "usernames",
        email: uniqueEmail(),
        password: "Correct-Horse-9",
        username: "ann_s",
      }),
      Management.ConflictError,
      409,
    );
  });
});

describe("root attributes of IdP users (Auth0 docs: Configure Connection Sync with Auth0; support article Updating User Profile Root Attributes)", () => {
  it("on_each_login (the default): name, given_name, family_name, nickname, picture → 400 operation_not_supported with Auth0's message; metadata and blocked stay writable", async () => {
    const id = await enterpriseUser("acme-okta");
    const err = await expectApiError(
      h.client.users.update(id, { given_name: "Anne", family_name: "Smyth", name: "Anne Smyth" }),
      Management.BadRequestError,
      400,
      "operation_not_supported",
    );
    expect(err.body).toEqual({
      statusCode: 400,
      error: "Bad Request",
      message:
        "The following user attributes cannot be updated: family_name, given_name, name. The connection (acme-okta) must either be a database connection (using the Auth0 store), a passwordless connection (email or sms) or has disabled 'Sync user profile attributes at each login'. For more information, see https://auth0.com/docs/dashboard/guides/connections/configure-connection-sync",
      errorCode: "operation_not_supported",
    });
    for (const attr of ["nickname", "picture"] as const) {
      await expectApiError(
        h.client.users.update(id, { [attr]: attr === "picture" ? "https://example.test/p.png" : "x" }),
        Management.BadRequestError,
        400,
        "operation_not_supported",
      );
    }
    expect(h.emulator.state.users.get(id)!.given_name).toBe("Ann");
    const ok = await h.client.users.update(id, {
      app_metadata: { scim: { active: true } },
      user_metadata: { a: 1 },
      blocked: true,
    });
    expect(ok).toMatchObject({ blocked: true, app_metadata: { scim: { active: true } } });
  });

  it("an IdP user's email is not updatable whatever the sync setting", async () => {
    for (const connection of ["acme-okta", "acme-waad"]) {
      const id = await enterpriseUser(connection);
      const err = await expectApiError(
        h.client.users.update(id, { email: "new@acme.test" }),
        Management.BadRequestError,
        400,
        "operation_not_supported",
      );
      expect((err.body as { message: string }).message).toMatch(
        /^The following user attributes cannot be updated: email\./,
      );
    }
  });

  it("on_first_login allows root-attribute updates, and later logins keep them", async () => {
    const email = uniqueEmail("first");
    const id = await enterpriseUser("acme-waad", email);
    const updated = await h.client.users.update(id, {
      given_name: "Anne",
      name: "Anne Smith",
      picture: "https://example.test/anne.png",
    });
    expect(updated).toMatchObject({ given_name: "Anne", picture: "https://example.test/anne.png" });
    await h.emulator.login({
      connection: "acme-waad",
      email,
      organization: "acme",
      given_name: "Ann",
      name: "Ann Smith",
    });
    expect(h.emulator.state.users.get(id)!.given_name).toBe("Anne");
  });

  it("on_each_login overwrites root attributes at every login; never_on_login does not create users at login", async () => {
    const email = uniqueEmail("each");
    const id = await enterpriseUser("acme-okta", email);
    await h.emulator.login({ connection: "acme-okta", email, organization: "acme", given_name: "Annie" });
    expect(h.emulator.state.users.get(id)!.given_name).toBe("Annie");
    const never = await h.emulator.login({
      connection: "acme-oidc",
      email: uniqueEmail("never"),
      organization: "acme",
    });
    expect(never).toMatchObject({ decision: "deny", created: false });
  });

  it("database users keep writable root attributes", async () => {
    const id = await createDbUser(h.client);
    expect(await h.client.users.update(id, { given_name: "Bo", nickname: "bo" })).toMatchObject({
      given_name: "Bo",
      nickname: "bo",
    });
  });
});

describe("profile shape (Auth0 docs: Migrate Oversized User Profiles; node-auth0 UserCreate.picture)", () => {
  it("picture must be a URI", async () => {
    await expectApiError(
      h.client.users.create({
        connection: DB,
        email: uniqueEmail(),
        password: "Correct-Horse-9",
        picture: "not a uri",
      }),
      Management.BadRequestError,
      400,
      "invalid_body",
    );
    const id = await createDbUser(h.client);
    await expectApiError(
      h.client.users.update(id, { picture: "/relative.png" }),
      Management.BadRequestError,
      400,
      "invalid_body",
    );
    expect((await h.client.users.update(id, { picture: "https://cdn.example.test/a.png" })).picture).toBe(
      "https://cdn.example.test/a.png",
    );
  });

  it("refuses a write that takes the serialized profile over 10 KB, and keeps the user as it was", async () => {
    const id = await createDbUser(h.client, uniqueEmail(), { app_metadata: { small: "x" } });
    await expectApiError(
      h.client.users.update(id, { user_metadata: { blob: "x".repeat(11 * 1024) } }),
      Management.BadRequestError,
      400,
      "invalid_body",
    );
    expect(h.emulator.state.users.get(id)!.user_metadata).toEqual({});
    await expectApiError(
      h.client.users.create({
        connection: DB,
        email: uniqueEmail(),
        password: "Correct-Horse-9",
        app_metadata: { blob: "y".repeat(11 * 1024) },
      }),
      Management.BadRequestError,
      400,
      "invalid_body",
    );
    await h.client.users.update(id, { user_metadata: { blob: "x".repeat(8 * 1024) } });
  });
});
