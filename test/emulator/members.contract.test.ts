import { Management } from "auth0";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { createDbUser, expectApiError, startHarness, uniqueEmail, type Harness } from "./helpers.js";

let h: Harness;
let orgId: string;
beforeAll(async () => {
  h = await startHarness();
});
afterAll(() => h.emulator.close());
beforeEach(async () => {
  h.emulator.reset();
  orgId = (await h.client.organizations.create({ name: "acme" })).id!;
});

async function users(n: number): Promise<string[]> {
  const ids: string[] = [];
  for (let i = 0; i < n; i++) ids.push(await createDbUser(h.client, uniqueEmail(`m${i}`)));
  return ids;
}

describe("organization members", () => {
  it("adds up to 10 members per call (204) and refuses 11 with 400 invalid_body", async () => {
    const ids = await users(11);
    await expect(h.client.organizations.members.create(orgId, { members: ids.slice(0, 10) })).resolves.toBeUndefined();
    expect(h.emulator.state.membersOf(orgId)).toEqual(ids.slice(0, 10));
    const err = await expectApiError(
      h.client.organizations.members.create(orgId, { members: ids }),
      Management.BadRequestError,
      400,
      "invalid_body",
    );
    expect((err.body as { message: string }).message).toContain("maximum 10");
    expect(h.emulator.state.membersOf(orgId)).toHaveLength(10);
  });

  it("refuses users that do not exist and an empty list; answers 404 for an unknown organization", async () => {
    const [id] = await users(1);
    await expectApiError(
      h.client.organizations.members.create(orgId, { members: [id!, "auth0|ghost"] }),
      Management.BadRequestError,
      400,
      "invalid_body",
    );
    await expectApiError(
      h.client.organizations.members.create(orgId, { members: [] }),
      Management.BadRequestError,
      400,
      "invalid_body",
    );
    expect(h.emulator.state.membersOf(orgId)).toEqual([]);
    const err = await h.client.organizations.members.create("org_missing", { members: [id!] }).catch((e: unknown) => e);
    expect((err as { statusCode: number }).statusCode).toBe(404);
  });

  it("removes members with a JSON body on DELETE (10 at most); the user stays", async () => {
    const ids = await users(3);
    await h.client.organizations.members.create(orgId, { members: ids });
    await h.client.organizations.members.delete(orgId, { members: [ids[0]!, ids[2]!] });
    expect(h.emulator.state.membersOf(orgId)).toEqual([ids[1]]);
    expect(h.emulator.state.users.has(ids[0]!)).toBe(true);
    const call = h.emulator.calls().find((c) => c.method === "DELETE");
    expect(call?.body).toEqual({ members: [ids[0], ids[2]] });
    await expectApiError(
      h.client.organizations.members.delete(orgId, { members: Array.from({ length: 11 }, (_, i) => `auth0|${i}`) }),
      Management.BadRequestError,
      400,
      "invalid_body",
    );
  });

  it("lists members with checkpoint paging across pages, and roles with fields=roles", async () => {
    const ids = await users(55);
    for (let i = 0; i < ids.length; i += 10)
      await h.client.organizations.members.create(orgId, { members: ids.slice(i, i + 10) });
    const first = await h.client.organizations.members.list(orgId);
    expect(first.data).toHaveLength(50);
    expect(first.data[0]).toMatchObject({
      user_id: expect.any(String),
      email: expect.stringContaining("@example.test"),
    });
    const seen: string[] = [];
    for await (const member of await h.client.organizations.members.list(orgId)) seen.push(member.user_id!);
    expect(seen.sort()).toEqual([...ids].sort());
    expect(
      h.emulator
        .calls()
        .filter((c) => c.method === "GET" && c.path.endsWith("/members"))
        .map((c) => c.query.includes("from=")),
    ).toEqual([false, false, true]);

    const role = await h.client.roles.create({ name: "viewer" });
    const holder = first.data[0]!.user_id!;
    await h.client.organizations.members.roles.assign(orgId, holder, { roles: [role.id!] });
    const withRoles = await h.client.organizations.members.list(orgId, {
      fields: "roles",
      include_fields: true,
      take: 50,
    });
    expect(withRoles.data.find((m) => m.user_id === holder)?.roles).toEqual([{ id: role.id, name: "viewer" }]);
    expect(withRoles.data.filter((m) => (m.roles ?? []).length > 0)).toHaveLength(1);
  });

  it("answers 400 invalid_paging for page paging past 1,000 records", async () => {
    const [id] = await users(1);
    await h.client.organizations.members.create(orgId, { members: [id!] });
    const page19 = await h.client.organizations.members.list(orgId, {}, { queryParams: { page: 19, per_page: 50 } });
    expect(page19.data).toEqual([]);
    const err = await expectApiError(
      h.client.organizations.members.list(orgId, {}, { queryParams: { page: 20, per_page: 50 } }),
      Management.BadRequestError,
      400,
      "invalid_paging",
    );
    expect((err.body as { message: string }).message).toBe(
      "Requesting page exceeds the allowed maximum of 1000 records.",
    );
  });
});

describe("roles and organization member roles", () => {
  it("creates roles, lists them with a case-insensitive name_filter and gets one by id", async () => {
    const admin = await h.client.roles.create({ name: "Acme Admin", description: "admins" });
    await h.client.roles.create({ name: "viewer" });
    expect(admin.id).toMatch(/^rol_/);
    const found = await h.client.roles.list({ name_filter: "acme admin" });
    expect(found.data.map((r) => r.id)).toEqual([admin.id]);
    expect(found.response).toMatchObject({ total: 1 });
    expect(await h.client.roles.get(admin.id!)).toMatchObject({ name: "Acme Admin", description: "admins" });
    await expectApiError(h.client.roles.get("rol_nope"), Management.NotFoundError, 404);
    await expectApiError(h.client.roles.create({ name: "viewer" }), Management.ConflictError, 409);
  });

  it("assigns, lists and removes member roles (JSON body on DELETE)", async () => {
    const [id] = await users(1);
    await h.client.organizations.members.create(orgId, { members: [id!] });
    const a = await h.client.roles.create({ name: "a" });
    const b = await h.client.roles.create({ name: "b" });
    await h.client.organizations.members.roles.assign(orgId, id!, { roles: [a.id!, b.id!] });
    const list = await h.client.organizations.members.roles.list(orgId, id!);
    expect(list.data.map((r) => r.name).sort()).toEqual(["a", "b"]);
    expect(list.response).toMatchObject({ start: 0, total: 2 });
    await h.client.organizations.members.roles.delete(orgId, id!, { roles: [a.id!] });
    expect(h.emulator.state.memberRolesOf(orgId, id!)).toEqual([b.id]);
  });

  it("refuses roles that do not exist, non-members, and more than 50 roles per member", async () => {
    const [member, outsider] = await users(2);
    await h.client.organizations.members.create(orgId, { members: [member!] });
    await expectApiError(
      h.client.organizations.members.roles.assign(orgId, member!, { roles: ["rol_missing"] }),
      Management.BadRequestError,
      400,
      "invalid_body",
    );
    const role = await h.client.roles.create({ name: "r0" });
    await expectApiError(
      h.client.organizations.members.roles.assign(orgId, outsider!, { roles: [role.id!] }),
      Management.BadRequestError,
      400,
    );
    const roleIds = [role.id!];
    for (let i = 1; i < 51; i++) roleIds.push((await h.client.roles.create({ name: `r${i}` })).id!);
    await h.client.organizations.members.roles.assign(orgId, member!, { roles: roleIds.slice(0, 50) });
    const err = await expectApiError(
      h.client.organizations.members.roles.assign(orgId, member!, { roles: [roleIds[50]!] }),
      Management.BadRequestError,
      400,
      "invalid_body",
    );
    expect((err.body as { message: string }).message).toContain("50");
    expect(h.emulator.state.memberRolesOf(orgId, member!)).toHaveLength(50);
  });

  it("deletes a role (404 afterwards) and takes it away from members", async () => {
    const [id] = await users(1);
    await h.client.organizations.members.create(orgId, { members: [id!] });
    const role = await h.client.roles.create({ name: "temp" });
    await h.client.organizations.members.roles.assign(orgId, id!, { roles: [role.id!] });
    await h.client.roles.delete(role.id!);
    expect(h.emulator.state.memberRolesOf(orgId, id!)).toEqual([]);
    await expectApiError(h.client.roles.delete(role.id!), Management.NotFoundError, 404, "inexistent_role");
  });

  it("drops a member's roles with the membership", async () => {
    const [id] = await users(1);
    await h.client.organizations.members.create(orgId, { members: [id!] });
    const role = await h.client.roles.create({ name: "editor" });
    await h.client.organizations.members.roles.assign(orgId, id!, { roles: [role.id!] });
    await h.client.organizations.members.delete(orgId, { members: [id!] });
    await h.client.organizations.members.create(orgId, { members: [id!] });
    expect(h.emulator.state.memberRolesOf(orgId, id!)).toEqual([]);
  });
});
