import { Management, ManagementError } from "auth0";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { expectApiError, startHarness, type Harness } from "./helpers.js";

let h: Harness;
beforeAll(async () => {
  h = await startHarness({
    connections: [
      { name: "acme-okta", strategy: "okta", id: "con_okta" },
      { name: "acme-entra", strategy: "waad", id: "con_entra" },
    ],
  });
});
afterAll(() => h.emulator.close());
beforeEach(() => h.emulator.reset());

describe("organizations through node-auth0 v7", () => {
  it("creates an organization (org_ id, 201) and reads it by id and by name", async () => {
    const org = await h.client.organizations.create({
      name: "acme-corp_1",
      display_name: "Acme Corp",
      metadata: { tier: "gold" },
    });
    expect(org.id).toMatch(/^org_[A-Za-z0-9]{16}$/);
    expect(org).toMatchObject({ name: "acme-corp_1", display_name: "Acme Corp", metadata: { tier: "gold" } });
    expect(await h.client.organizations.get(org.id!)).toMatchObject({ id: org.id, name: "acme-corp_1" });
    expect(await h.client.organizations.getByName("acme-corp_1")).toMatchObject({ id: org.id });
    expect(
      h.emulator
        .calls()
        .filter((c) => c.status === 201)
        .map((c) => c.path),
    ).toEqual(["/api/v2/organizations"]);
  });

  it("answers 409 organization_conflict for a duplicate name", async () => {
    await h.client.organizations.create({ name: "acme" });
    const err = await expectApiError(
      h.client.organizations.create({ name: "acme", display_name: "Other" }),
      Management.ConflictError,
      409,
      "organization_conflict",
    );
    expect((err.body as { message: string }).message).toBe("An organization with the same name already exists.");
    expect(h.emulator.state.organizations.size).toBe(1);
  });

  it.each([
    ["upper case", "Acme"],
    ["a space", "acme corp"],
    ["a dot", "acme.corp"],
    ["51 characters", "a".repeat(51)],
    ["nothing", ""],
  ])("refuses a name with %s (400 invalid_body)", async (_what, name) => {
    await expectApiError(h.client.organizations.create({ name }), Management.BadRequestError, 400, "invalid_body");
    expect(h.emulator.state.organizations.size).toBe(0);
  });

  it("accepts a 50-character name and refuses more than 25 metadata pairs or 10 connections", async () => {
    await expect(h.client.organizations.create({ name: "a".repeat(50) })).resolves.toMatchObject({
      name: "a".repeat(50),
    });
    const metadata = Object.fromEntries(Array.from({ length: 26 }, (_, i) => [`k${i}`, "v"]));
    await expectApiError(
      h.client.organizations.create({ name: "meta", metadata }),
      Management.BadRequestError,
      400,
      "invalid_body",
    );
    const enabled_connections = Array.from({ length: 11 }, () => ({ connection_id: "con_okta" }));
    await expectApiError(
      h.client.organizations.create({ name: "conns", enabled_connections }),
      Management.BadRequestError,
      400,
      "invalid_body",
    );
  });

  it("answers 404 for an unknown id or name", async () => {
    await expectApiError(
      h.client.organizations.get("org_doesnotexist0000"),
      Management.NotFoundError,
      404,
      "inexistent_organization",
    );
    await expectApiError(
      h.client.organizations.getByName("nobody"),
      Management.NotFoundError,
      404,
      "inexistent_organization",
    );
    await expectApiError(h.client.organizations.delete("org_doesnotexist0000"), Management.NotFoundError, 404);
  });

  it("lists with checkpoint paging: `next` only while more remain, and the SDK iterates every page", async () => {
    const names = Array.from({ length: 53 }, (_, i) => `org-${String(i).padStart(2, "0")}`);
    for (const name of names) await h.client.organizations.create({ name });
    const first = await h.client.organizations.list();
    expect(first.data).toHaveLength(50);
    expect(typeof (first.response as { next?: string }).next).toBe("string");
    const seen: string[] = [];
    for await (const org of await h.client.organizations.list()) seen.push(org.name!);
    expect(seen).toEqual(names);
    const last = await h.client.organizations.list({ take: 10, from: (first.response as { next: string }).next });
    expect(last.data.map((o) => o.name)).toEqual(names.slice(50));
    expect(last.response).not.toHaveProperty("next");
    await expectApiError(
      h.client.organizations.list({ take: 51 }),
      Management.BadRequestError,
      400,
      "invalid_query_string",
    );
    await expectApiError(
      h.client.organizations.list({ from: "not-a-checkpoint" }),
      Management.BadRequestError,
      400,
      "invalid_query_string",
    );
  });

  it("updates display_name, name and metadata (null deletes a key); a taken name is 409", async () => {
    const org = await h.client.organizations.create({ name: "acme", metadata: { a: "1", b: "2" } });
    await h.client.organizations.create({ name: "taken" });
    const updated = await h.client.organizations.update(org.id!, {
      display_name: "Acme Inc",
      name: "acme-inc",
      metadata: { b: null, c: "3" },
    });
    expect(updated).toMatchObject({
      id: org.id,
      name: "acme-inc",
      display_name: "Acme Inc",
      metadata: { a: "1", c: "3" },
    });
    expect(h.emulator.state.organizationByName("acme-inc")?.metadata).toEqual({ a: "1", c: "3" });
    await expectApiError(
      h.client.organizations.update(org.id!, { name: "taken" }),
      ManagementError,
      409,
      "organization_conflict",
    );
  });

  it("deletes an organization with its memberships and enabled connections", async () => {
    const org = await h.client.organizations.create({
      name: "gone",
      enabled_connections: [{ connection_id: "con_okta" }],
    });
    await h.client.organizations.delete(org.id!);
    expect(h.emulator.state.organizations.has(org.id!)).toBe(false);
    expect(h.emulator.state.enabledConnectionsOf(org.id!)).toEqual([]);
    await expectApiError(h.client.organizations.get(org.id!), Management.NotFoundError, 404);
  });
});

describe("enabled connections of an organization", () => {
  it("adds, lists, reads, updates and removes them", async () => {
    const org = await h.client.organizations.create({
      name: "acme",
      enabled_connections: [{ connection_id: "con_okta", assign_membership_on_login: true }],
    });
    const added = await h.client.organizations.enabledConnections.add(org.id!, { connection_id: "con_entra" });
    expect(added).toMatchObject({
      connection_id: "con_entra",
      assign_membership_on_login: false,
      connection: { name: "acme-entra", strategy: "waad" },
    });
    const list = await h.client.organizations.enabledConnections.list(org.id!);
    expect(list.data.map((c) => c.connection_id).sort()).toEqual(["con_entra", "con_okta"]);
    expect(list.response).toMatchObject({ start: 0, limit: 50, total: 2 });
    expect(await h.client.organizations.enabledConnections.get(org.id!, "con_okta")).toMatchObject({
      assign_membership_on_login: true,
    });
    await h.client.organizations.enabledConnections.update(org.id!, "con_okta", { assign_membership_on_login: false });
    expect(
      h.emulator.state.enabledConnectionsOf(org.id!).find((c) => c.connection_id === "con_okta")
        ?.assign_membership_on_login,
    ).toBe(false);
    await h.client.organizations.enabledConnections.delete(org.id!, "con_entra");
    expect(h.emulator.state.enabledConnectionsOf(org.id!).map((c) => c.connection_id)).toEqual(["con_okta"]);
  });

  it("answers 409 for a connection already enabled and 404 for unknown connections", async () => {
    const org = await h.client.organizations.create({
      name: "acme",
      enabled_connections: [{ connection_id: "con_okta" }],
    });
    await expectApiError(
      h.client.organizations.enabledConnections.add(org.id!, { connection_id: "con_okta" }),
      Management.ConflictError,
      409,
    );
    await expectApiError(
      h.client.organizations.enabledConnections.add(org.id!, { connection_id: "con_nope" }),
      Management.NotFoundError,
      404,
      "inexistent_connection",
    );
    await expectApiError(
      h.client.organizations.enabledConnections.get(org.id!, "con_entra"),
      Management.NotFoundError,
      404,
    );
  });

  it("lets the bridge turn a connection name into its id", async () => {
    const page = await h.client.connections.list({ name: "acme-okta" });
    expect(page.data.map((c) => [c.id, c.strategy])).toEqual([["con_okta", "okta"]]);
    expect((await h.client.connections.list({ strategy: ["auth0"] })).data.map((c) => c.name)).toEqual([
      "Username-Password-Authentication",
    ]);
    expect(await h.client.connections.get("con_entra")).toMatchObject({
      id: "con_entra",
      name: "acme-entra",
      strategy: "waad",
    });
    await expectApiError(h.client.connections.get("con_nope"), Management.NotFoundError, 404, "inexistent_connection");
  });
});
