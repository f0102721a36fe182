import { Management } from "auth0";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { DB, createDbUser, expectApiError, startHarness, uniqueEmail, type Harness } from "./helpers.js";

let h: Harness;
beforeAll(async () => {
  h = await startHarness({
    connections: [
      { name: "acme-okta", strategy: "okta" },
      { name: "acme-saml", strategy: "samlp" },
    ],
  });
});
afterAll(() => h.emulator.close());
beforeEach(() => h.emulator.reset());

describe("users through node-auth0 v7", () => {
  it("creates a database user with a lower-cased email, an auth0| id and its identity", async () => {
    const user = await h.client.users.create({
      connection: DB,
      email: "Ann.Smith@Example.TEST",
      password: "Correct-Horse-9",
      app_metadata: { tier: "gold" },
    });
    expect(user.user_id).toMatch(/^auth0\|[0-9a-f]{24}$/);
    expect(user.email).toBe("ann.smith@example.test");
    expect(user.email_verified).toBe(false);
    expect(user.app_metadata).toEqual({ tier: "gold" });
    expect(user.identities).toEqual([
      { connection: DB, provider: "auth0", user_id: user.user_id!.slice(6), isSocial: false },
    ]);
    expect(h.emulator.state.users.get(user.user_id!)?.email).toBe("ann.smith@example.test");
  });

  it("answers 409 auth0_idp_error for a duplicate email in the connection, whatever its case", async () => {
    const email = uniqueEmail();
    await createDbUser(h.client, email);
    const err = await expectApiError(
      h.client.users.create({ connection: DB, email: email.toUpperCase(), password: "Correct-Horse-9" }),
      Management.ConflictError,
      409,
      "auth0_idp_error",
    );
    expect((err.body as { message: string }).message).toBe("The user already exists.");
    expect(h.emulator.state.users.size).toBe(1);
  });

  it("refuses to create users on enterprise connections and on unknown ones", async () => {
    await expectApiError(
      h.client.users.create({ connection: "acme-okta", email: uniqueEmail(), password: "x-Y-z-123" }),
      Management.BadRequestError,
      400,
      "operation_not_supported",
    );
    await expectApiError(
      h.client.users.create({ connection: "nope", email: uniqueEmail(), password: "x-Y-z-123" }),
      Management.BadRequestError,
      400,
      "inexistent_connection",
    );
    expect(h.emulator.state.users.size).toBe(0);
  });

  it("validates the create body as Auth0 does", async () => {
    await expectApiError(
      h.client.users.create({ connection: DB, email: uniqueEmail() }),
      Management.BadRequestError,
      400,
      "invalid_body",
    );
    await expectApiError(
      h.client.users.create({ connection: DB, email: "not-an-email", password: "Correct-Horse-9" }),
      Management.BadRequestError,
      400,
      "invalid_body",
    );
    const unknownProp = {
      connection: DB,
      email: uniqueEmail(),
      password: "Correct-Horse-9",
      favourite_colour: "blue",
    } as unknown as Parameters<typeof h.client.users.create>[0];
    const err = await expectApiError(
      h.client.users.create(unknownProp),
      Management.BadRequestError,
      400,
      "invalid_body",
    );
    expect((err.body as { message: string }).message).toContain("favourite_colour");
  });

  it("gets a user by id (percent-encoded by the SDK) and answers 404 inexistent_user for an unknown one", async () => {
    const id = await createDbUser(h.client);
    expect((await h.client.users.get(id)).user_id).toBe(id);
    expect(h.emulator.calls().some((c) => c.path === `/api/v2/users/${encodeURIComponent(id)}`)).toBe(true);
    await expectApiError(
      h.client.users.get("auth0|000000000000000000000000"),
      Management.NotFoundError,
      404,
      "inexistent_user",
    );
  });

  it("honours fields/include_fields", async () => {
    const id = await createDbUser(h.client);
    const only = await h.client.users.get(id, { fields: "user_id,email", include_fields: true });
    expect(Object.keys(only).sort()).toEqual(["email", "user_id"]);
    const without = await h.client.users.get(id, { fields: "identities", include_fields: false });
    expect(without).not.toHaveProperty("identities");
    expect(without.user_id).toBe(id);
  });

  describe("PATCH", () => {
    it("merges app_metadata at the top level only: nested objects are replaced, null deletes a key", async () => {
      const id = await createDbUser(h.client, uniqueEmail(), {
        app_metadata: { scim: { externalId: "e1", active: true }, keep: "me", drop: 1 },
      });
      const updated = await h.client.users.update(id, { app_metadata: { scim: { externalId: "e2" }, drop: null } });
      expect(updated.app_metadata).toEqual({ scim: { externalId: "e2" }, keep: "me" });
    });

    it("wipes app_metadata when sent {}", async () => {
      const id = await createDbUser(h.client, uniqueEmail(), { app_metadata: { a: 1, b: 2 } });
      const updated = await h.client.users.update(id, { app_metadata: {} });
      expect(updated.app_metadata ?? {}).toEqual({});
      expect(h.emulator.state.users.get(id)!.app_metadata).toEqual({});
    });

    it("refuses reserved app_metadata keys and field names with '.' or '$'", async () => {
      const id = await createDbUser(h.client);
      await expectApiError(
        h.client.users.update(id, { app_metadata: { blocked: true } }),
        Management.BadRequestError,
        400,
        "invalid_body",
      );
      await expectApiError(
        h.client.users.update(id, { app_metadata: { nested: { "a.b": 1 } } }),
        Management.BadRequestError,
        400,
        "invalid_body",
      );
      await expectApiError(
        h.client.users.update(id, { user_metadata: { $where: 1 } }),
        Management.BadRequestError,
        400,
        "invalid_body",
      );
      expect(h.emulator.state.users.get(id)!.app_metadata).toEqual({});
    });

    it("blocks and unblocks; a password change lifts an admin block", async () => {
      const id = await createDbUser(h.client);
      expect((await h.client.users.update(id, { blocked: true })).blocked).toBe(true);
      expect(h.emulator.state.users.get(id)!.blocked).toBe(true);
      expect((await h.client.users.update(id, { password: "Another-Horse-7" })).blocked).toBe(false);
    });

    it("replaces root attributes and unsets them with null; updated_at moves", async () => {
      const id = await createDbUser(h.client, uniqueEmail(), { given_name: "Ann", family_name: "Smith" });
      const before = h.emulator.state.users.get(id)!.updated_at;
      await new Promise((r) => setTimeout(r, 5));
      const updated = await h.client.users.update(id, { given_name: "Anne", family_name: null as unknown as string });
      expect(updated.given_name).toBe("Anne");
      expect(updated).not.toHaveProperty("family_name");
      expect(updated.updated_at! > before).toBe(true);
    });

    it("answers 404 for an unknown user and 400 for a wrong type", async () => {
      await expectApiError(
        h.client.users.update("auth0|nobody", { blocked: true }),
        Management.NotFoundError,
        404,
        "inexistent_user",
      );
      const id = await createDbUser(h.client);
      await expectApiError(
        h.client.users.update(id, { blocked: "yes" as unknown as boolean }),
        Management.BadRequestError,
        400,
        "invalid_body",
      );
    });
  });

  it("deletes a user (204, also when already gone) and drops its memberships", async () => {
    const id = await createDbUser(h.client);
    const org = await h.client.organizations.create({ name: "acme" });
    await h.client.organizations.members.create(org.id!, { members: [id] });
    await h.client.users.delete(id);
    expect(h.emulator.state.users.has(id)).toBe(false);
    expect(h.emulator.state.membersOf(org.id!)).toEqual([]);
    await expect(h.client.users.delete(id)).resolves.toBeUndefined();
    await expectApiError(h.client.users.get(id), Management.NotFoundError, 404);
  });

  it("finds users by email case-sensitively, as a bare array", async () => {
    const email = uniqueEmail("case");
    const id = await createDbUser(h.client, email);
    const found = await h.client.users.listUsersByEmail({ email });
    expect(found.map((u) => u.user_id)).toEqual([id]);
    expect(await h.client.users.listUsersByEmail({ email: email.toUpperCase() })).toEqual([]);
  });
});

describe("user search (GET /users)", () => {
  beforeEach(async () => {
    await createDbUser(h.client, "ann@acme.test", {
      given_name: "Ann",
      name: "Ann Smith",
      app_metadata: { scim: { externalId: "x-1" }, orgs: ["acme"] },
    });
    await createDbUser(h.client, "bob@acme.test", { name: "Bob Jones", app_metadata: { scim: { externalId: "x-2" } } });
    await createDbUser(h.client, "carol@other.test", { name: "Carol King" });
  });

  const search = async (q: string) =>
    (await h.client.users.list({ q, search_engine: "v3" })).data.map((u) => u.email).sort();

  it("matches fields, phrases, nested metadata, _exists_, wildcards and boolean operators", async () => {
    expect(await search('email:"ANN@acme.test"')).toEqual(["ann@acme.test"]);
    expect(await search('name:"ann smith"')).toEqual(["ann@acme.test"]);
    expect(await search('app_metadata.scim.externalId:"x-2"')).toEqual(["bob@acme.test"]);
    expect(await search("_exists_:app_metadata.scim")).toEqual(["ann@acme.test", "bob@acme.test"]);
    expect(await search("email.domain:acme.test AND NOT name:bob")).toEqual(["ann@acme.test"]);
    expect(await search("name:car*")).toEqual(["carol@other.test"]);
    expect(await search('app_metadata.orgs:"acme" OR email:"carol@other.test"')).toEqual([
      "ann@acme.test",
      "carol@other.test",
    ]);
    expect(await search('identities.connection:"Username-Password-Authentication"')).toHaveLength(3);
    expect(await search('email:("ann@acme.test" OR "bob@acme.test")')).toEqual(["ann@acme.test", "bob@acme.test"]);
    // metadata values are case-sensitive
    expect(await search('app_metadata.scim.externalId:"X-1"')).toEqual([]);
  });

  it("pages with page/per_page and answers the include_totals wrapper", async () => {
    const first = await h.client.users.list({ page: 0, per_page: 2, sort: "email:1" });
    expect(first.response).toMatchObject({ start: 0, limit: 2, length: 2, total: 3 });
    expect(first.data.map((u) => u.email)).toEqual(["ann@acme.test", "bob@acme.test"]);
    const all: string[] = [];
    for await (const user of await h.client.users.list({ per_page: 2, sort: "email:1" })) all.push(user.email!);
    expect(all).toEqual(["ann@acme.test", "bob@acme.test", "carol@other.test"]);
  });

  it("refuses per_page above 50, paging past 1,000 results, bad queries and short suffix wildcards", async () => {
    await expectApiError(
      h.client.users.list({ per_page: 51 }),
      Management.BadRequestError,
      400,
      "invalid_query_string",
    );
    await expectApiError(
      h.client.users.list({ page: 20, per_page: 50 }),
      Management.BadRequestError,
      400,
      "invalid_paging",
    );
    await expectApiError(
      h.client.users.list({ q: 'email:"unterminated' }),
      Management.BadRequestError,
      400,
      "invalid_query_string",
    );
    await expectApiError(
      h.client.users.list({ q: "name:*th" }),
      Management.BadRequestError,
      400,
      "invalid_query_string",
    );
    expect(await search("name:*ith")).toEqual(["ann@acme.test"]);
  });
});

describe("eventually consistent search", () => {
  it("shows writes to GET /users only after the consistency delay, while users-by-email sees them at once", async () => {
    const slow = await startHarness({ searchConsistencyDelayMs: 300 });
    try {
      const email = uniqueEmail("late");
      const id = await createDbUser(slow.client, email);
      expect((await slow.client.users.list({ q: `email:"${email}"` })).data).toEqual([]);
      expect((await slow.client.users.listUsersByEmail({ email })).map((u) => u.user_id)).toEqual([id]);
      await new Promise((r) => setTimeout(r, 350));
      expect((await slow.client.users.list({ q: `email:"${email}"` })).data.map((u) => u.user_id)).toEqual([id]);
    } finally {
      await slow.emulator.close();
    }
  });
});
