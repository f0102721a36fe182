/**
 * The store ops of organizations, mapping versions, bridge settings, holds, the admin read models,
 * the SCIM request log and the health and metrics lookups give the same outcome on SQLite and on
 * PostgreSQL, including the ones that must stay safe when two instances run them at once.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { queryAudit } from "../../src/directory/audit.js";
import { createDirectory } from "../../src/directory/directories.js";
import { activeHoldsOfUsers, listHolds, placeHold, releaseHold } from "../../src/directory/holds.js";
import {
  activateMappingVersion,
  activeMapping,
  activeMappings,
  getMappingVersion,
  listMappingVersions,
  saveMappingVersion,
} from "../../src/directory/mappings.js";
import { ping, queueJobs } from "../../src/directory/operator-views.js";
import {
  createOrganization,
  deleteOrganization,
  forgetAuth0Links,
  getOrganization,
  listOrganizations,
  organizationSlug,
  updateOrganization,
} from "../../src/directory/organizations.js";
import { insertScimRequestLog, listScimRequestLog, trimScimRequestLog } from "../../src/directory/scim-request-log.js";
import {
  connectionTypeOf,
  knownConnections,
  linkedTenant,
  recordConnection,
  recordTenantLink,
  sandboxRefusal,
  takeDueDriftScan,
} from "../../src/directory/settings.js";
import type { SqlStore } from "../../src/directory/sql.js";
import { exec, many, one } from "../../src/directory/store-op.js";
import { findUser, listOrganizationGroups, searchUsers } from "../../src/directory/user-queries.js";
import { changeBy } from "../../src/directory/write-context.js";
import type { UserModel } from "../../src/mapping/defaults.js";
import { defaultMapping, parseMapping, type MappingDocument } from "../../src/mapping/index.js";
import { reconcileInputs } from "../../src/sync/reconcile-user.js";
import { storeDialects } from "../support/store-dialects.js";

const operator = { type: "operator", id: "adm_1" } as const;
const at = (ms: number) => changeBy(operator, { at: ms });

const mapping = (defaultRole: string): MappingDocument =>
  parseMapping({
    connection: { name: "acme-db" },
    userModel: "isolated",
    profile: { email: "userName" },
    roles: { rules: [], default: [defaultRole] },
  });

function* insertUser(id: string, directoryId: string, userName: string, active: boolean, extra = "") {
  yield* exec(
    `INSERT INTO users (id, directory_id, user_name, user_name_lower, display_name, external_id, active, resource,
       version, created_at, modified_at)
     VALUES (?, ?, ?, ?, ?, ?, ?, ?, 1, 1000, 1000)`,
    [
      id,
      directoryId,
      userName,
      userName.toLowerCase(),
      `${userName} ${extra}`.trim(),
      `ext-${id}`,
      active,
      JSON.stringify({ userName, emails: [{ value: `${id}@mail.example`, primary: true }] }),
    ],
  );
}

describe.each(storeDialects())("configuration and admin store ops on $name", (dialect) => {
  let store: SqlStore;
  beforeAll(async () => {
    store = await dialect.open();
  });
  afterAll(() => dialect.cleanup());

  const jobsOf = (organizationId: string) =>
    store.read(
      many<{ key: string; lane: number; kind: string }>(
        `SELECT key, lane, kind FROM jobs WHERE organization_id = ? ORDER BY key`,
        [organizationId],
      ),
    );
  const auditOf = (organizationId: string) =>
    store.read(
      many<{ action: string; before: string | null; after: string | null }>(
        `SELECT action, before, after FROM audit_entries WHERE organization_id = ? ORDER BY id`,
        [organizationId],
      ),
    );

  it("creates, finds, lists, updates and deletes organizations with their audit entries and jobs", async () => {
    const org = await store.write(
      createOrganization({ slug: "org-crud", displayName: " Crud Inc ", connection: "crud-db" }, at(1000)),
    );
    expect(org).toMatchObject({
      slug: "org-crud",
      displayName: "Crud Inc",
      userModel: "isolated",
      connection: "crud-db",
      auth0OrgId: null,
      activeMappingVersion: null,
      createdAt: 1000,
      updatedAt: 1000,
    });
    expect(await store.read(getOrganization("org-crud"))).toEqual(org);
    expect(await store.read(getOrganization(org.id))).toEqual(org);
    expect(await store.read(getOrganization("missing"))).toBeUndefined();
    expect(await store.read(organizationSlug(org.id))).toBe("org-crud");
    expect(await store.read(organizationSlug("org-crud"))).toBeUndefined();
    await expect(store.write(createOrganization({ slug: "org-crud" }, at(1001)))).rejects.toMatchObject({
      status: 409,
    });
    await expect(store.write(createOrganization({ slug: "Not Valid" }, at(1001)))).rejects.toMatchObject({
      status: 400,
    });

    const updated = await store.write(updateOrganization(org, { connection: "other-db" }, at(2000)));
    expect(updated).toMatchObject({ displayName: "Crud Inc", connection: "other-db", updatedAt: 2000 });
    // The create's provision-lane job absorbed the update's background enqueue.
    expect(await jobsOf(org.id)).toEqual([{ key: `organization:${org.id}`, lane: 1, kind: "organization" }]);

    // A live user refuses the delete; a tombstone does not.
    const dir = await store.write(createDirectory({ organizationId: org.id }, at(2500)));
    await store.write(insertUser("u-crud", dir.id, "crud@x.example", true));
    await expect(store.write(deleteOrganization(updated, at(3000)))).rejects.toMatchObject({ status: 409 });
    await store.write(exec("UPDATE users SET deleted_at = 1 WHERE id = 'u-crud'"));
    await expect(store.write(deleteOrganization(updated, at(3000)))).rejects.toThrow("unfinished job");
    await store.write(exec("UPDATE jobs SET state = 'done' WHERE organization_id = ?", [org.id]));
    await store.write(
      insertScimRequestLog([{ directoryId: dir.id, at: 1, method: "GET", path: "/Users", status: 200, durationMs: 1 }]),
    );
    await store.write(saveMappingVersion(org.id, mapping("member"), { actor: operator, now: 2600 }));
    await store.write(exec("UPDATE jobs SET state = 'done' WHERE organization_id = ?", [org.id]));
    await store.write(deleteOrganization(updated, at(3000)));

    expect(await store.read(getOrganization(org.id))).toBeUndefined();
    const left = await store.read(
      one<{ dirs: number; users: number; versions: number; log: number; jobs: number }>(
        `SELECT (SELECT count(*) FROM directories WHERE organization_id = ?) AS dirs,
           (SELECT count(*) FROM users WHERE directory_id = ?) AS users,
           (SELECT count(*) FROM mapping_versions WHERE organization_id = ?) AS versions,
           (SELECT count(*) FROM scim_request_log WHERE directory_id = ?) AS log,
           (SELECT count(*) FROM jobs WHERE organization_id = ?) AS jobs`,
        [org.id, dir.id, org.id, dir.id, org.id],
      ),
    );
    expect(left).toEqual({ dirs: 0, users: 0, versions: 0, log: 0, jobs: 0 });
    expect((await auditOf(org.id)).map((a) => a.action)).toEqual([
      "organization.create",
      "organization.update",
      "directory.create",
      "mapping.apply",
      "organization.delete",
    ]);
    expect((await store.read(listOrganizations())).map((o) => o.slug)).not.toContain("org-crud");
  });

  it("saves and activates mapping versions, each with its audit entry and background reconcile", async () => {
    const org = await store.write(createOrganization({ slug: "org-map", connection: "acme-db" }, at(1000)));
    const initial = await store.read(activeMapping("org-map"));
    expect(initial).toMatchObject({ organizationId: org.id, version: null });
    expect(initial!.document.connection.name).toBe("acme-db");
    expect(await store.read(activeMapping("nope"))).toBeNull();

    const first = await store.write(
      saveMappingVersion("org-map", mapping("member"), { actor: operator, comment: "first", now: 2000 }),
    );
    expect(first).toEqual({ organizationId: org.id, version: 1, changed: true });
    // The same document again is no new version.
    expect(await store.write(saveMappingVersion("org-map", mapping("member"), { actor: operator }))).toEqual({
      organizationId: org.id,
      version: 1,
      changed: false,
    });
    await store.write(saveMappingVersion(org.id, mapping("admin"), { actor: operator, now: 3000 }));
    expect(await store.read(activeMapping(org.id))).toMatchObject({ version: 2, document: mapping("admin") });
    expect(await store.read(getMappingVersion("org-map", 1))).toEqual(mapping("member"));
    await expect(store.read(getMappingVersion("org-map", 9))).rejects.toMatchObject({ status: 404 });

    expect(await store.write(activateMappingVersion("org-map", 1, operator, { now: 4000 }))).toEqual({
      organizationId: org.id,
      version: 1,
      changed: true,
    });
    expect(await store.write(activateMappingVersion("org-map", 1, operator))).toMatchObject({ changed: false });
    await expect(store.write(activateMappingVersion("org-map", 7, operator))).rejects.toMatchObject({ status: 404 });
    expect(await store.read(listMappingVersions("org-map"))).toEqual([
      { version: 2, createdBy: "operator:adm_1", createdAt: 3000, comment: null, active: false },
      { version: 1, createdBy: "operator:adm_1", createdAt: 2000, comment: "first", active: true },
    ]);
    const audit = (await auditOf(org.id)).filter((a) => a.action.startsWith("mapping."));
    expect(audit).toEqual([
      { action: "mapping.apply", before: '{"activeVersion":null}', after: '{"activeVersion":1,"comment":"first"}' },
      { action: "mapping.apply", before: '{"activeVersion":1}', after: '{"activeVersion":2,"comment":null}' },
      { action: "mapping.activate", before: '{"activeVersion":2}', after: '{"activeVersion":1}' },
    ]);
    expect(await jobsOf(org.id)).toEqual([{ key: `organization:${org.id}`, lane: 1, kind: "organization" }]);
    const all = await store.read(activeMappings());
    expect(all.find((m) => m.slug === "org-map")).toMatchObject({ version: 1, document: mapping("member") });
  });

  it("gives concurrent saves consecutive versions and leaves exactly one of them active", async () => {
    const org = await store.write(createOrganization({ slug: "org-race", connection: "acme-db" }, at(1000)));
    const roles = ["a", "b", "c", "d"];
    const saved = await Promise.all(
      roles.map((r) => store.write(saveMappingVersion(org.id, mapping(r), { actor: operator }))),
    );
    expect(saved.map((s) => s.version).sort()).toEqual([1, 2, 3, 4]);
    const versions = await store.read(listMappingVersions(org.id));
    expect(versions.map((v) => v.version)).toEqual([4, 3, 2, 1]);
    expect(versions.filter((v) => v.active)).toEqual([expect.objectContaining({ version: 4 })]);
    // Each apply saw the version the one before it made active.
    const befores = (await auditOf(org.id))
      .filter((a) => a.action === "mapping.apply")
      .map((a) => (JSON.parse(a.before!) as { activeVersion: number | null }).activeVersion);
    expect(befores).toEqual([null, 1, 2, 3]);

    const activations = await Promise.all(
      [1, 2, 3].map((v) => store.write(activateMappingVersion(org.id, v, operator))),
    );
    expect(activations.every((a) => a.changed)).toBe(true);
    const active = (await store.read(listMappingVersions(org.id))).filter((v) => v.active);
    expect(active).toHaveLength(1);
    const last = await store.read(
      one<{ after: string }>(
        `SELECT after FROM audit_entries WHERE organization_id = ? AND action = 'mapping.activate' ORDER BY id DESC`,
        [org.id],
      ),
    );
    expect(JSON.parse(last!.after)).toEqual({ activeVersion: active[0]!.version });
  });

  it("takes a due drift scan with a compare-and-set: of two concurrent takers exactly one wins", async () => {
    const period = 60_000;
    expect(await store.write(takeDueDriftScan(1000, period))).toBe(false); // only schedules the first scan
    expect(await store.write(takeDueDriftScan(2000, period))).toBe(false); // not due yet
    const due = 1000 + period;
    const takers = await Promise.all([
      store.write(takeDueDriftScan(due + 5, period)),
      store.write(takeDueDriftScan(due + 5, period)),
    ]);
    expect(takers.filter(Boolean)).toHaveLength(1);
    const next = await store.read(
      one<{ value: string }>("SELECT value FROM bridge_settings WHERE key = 'schedule.drift.next_at'"),
    );
    expect(JSON.parse(next!.value)).toBe(due + 5 + period);
    // A due time further out than one period (the interval was shortened) is pulled in, not taken.
    expect(await store.write(takeDueDriftScan(due + 10, 1000))).toBe(false);
    expect(await store.write(takeDueDriftScan(due + 20, 1000))).toBe(false);
    expect(await store.write(takeDueDriftScan(due + 1010, 1000))).toBe(true);
  });

  it("records the tenant link and known connections", async () => {
    expect(await store.read(linkedTenant())).toBeUndefined();
    await store.write(exec("UPDATE organizations SET auth0_org_id = NULL"));
    expect(await store.read(sandboxRefusal())).toBeUndefined();
    await store.write(recordTenantLink("sandbox", 100));
    expect(await store.read(sandboxRefusal())).toBeUndefined();
    await store.write(recordTenantLink("acme.eu.auth0.com", 200));
    await store.write(recordTenantLink("acme.eu.auth0.com", 300));
    expect(await store.read(linkedTenant())).toEqual({ tenant: "acme.eu.auth0.com", linkedAt: 200 });
    expect(await store.read(sandboxRefusal())).toContain("acme.eu.auth0.com");

    expect(await store.read(connectionTypeOf("Username-Password-Authentication"))).toEqual({
      type: "database",
      known: true,
    });
    expect(await store.read(connectionTypeOf("okta"))).toEqual({ type: "database", known: false });
    const okta = { name: "okta", strategy: "okta", type: "enterprise", checkedAt: 5 } as const;
    await store.write(recordConnection(okta));
    await store.write(recordConnection({ ...okta, name: "db_1", strategy: "auth0", type: "database" }));
    await store.write(recordConnection({ ...okta, checkedAt: 6 }));
    expect(await store.read(connectionTypeOf("okta"))).toEqual({ type: "enterprise", known: true });
    expect((await store.read(knownConnections())).map((c) => [c.name, c.checkedAt])).toEqual([
      ["db_1", 5],
      ["okta", 6],
    ]);
  });

  it("loads a user with the recorded type of its organization's connection, and maps it by that type", async () => {
    const org = await store.write(createOrganization({ slug: "org-conn", connection: "entra-conn" }, at(1000)));
    const dir = await store.write(createDirectory({ organizationId: org.id }, at(1000)));
    await store.write(insertUser("u-conn", dir.id, "conn@x.example", true));
    const defaultOf = (connectionType: "database" | "enterprise") =>
      defaultMapping({ connection: "entra-conn", userModel: org.userModel as UserModel, connectionType });
    // Not seen in the tenant yet: a database connection, as connectionTypeOf answers.
    let loaded = (await store.read(reconcileInputs("u-conn", store)))!;
    expect(loaded.inputs.connectionType).toBe("database");
    expect(loaded.mapping).toEqual(defaultOf("database"));
    await store.write(recordConnection({ name: "entra-conn", strategy: "waad", type: "enterprise", checkedAt: 7 }));
    loaded = (await store.read(reconcileInputs("u-conn", store)))!;
    expect(loaded.inputs.connectionType).toBe("enterprise");
    expect(loaded.mapping).toEqual(defaultOf("enterprise"));
    expect(loaded.mapping).not.toEqual(defaultOf("database"));
  });

  it("places and releases holds with their audit entries and reconcile jobs, all or nothing", async () => {
    const org = await store.write(createOrganization({ slug: "org-hold" }, at(1000)));
    const other = await store.write(createOrganization({ slug: "org-other" }, at(1000)));
    const dir = await store.write(createDirectory({ organizationId: org.id }, at(1000)));
    await store.write(insertUser("u-hold", dir.id, "held@x.example", true));
    const request = { organizationId: org.id, userId: "u-hold" };

    const hold = await store.write(placeHold({ ...request, reason: " review " }, at(2000)));
    expect(hold).toMatchObject({ userId: "u-hold", directoryId: dir.id, reason: "review", placedBy: "operator:adm_1" });
    await expect(store.write(placeHold({ ...request, reason: "again" }, at(2100)))).rejects.toMatchObject({
      status: 409,
    });
    await expect(
      store.write(placeHold({ organizationId: other.id, userId: "u-hold", reason: "x" }, at(2100))),
    ).rejects.toMatchObject({ status: 404 });
    await expect(store.write(placeHold({ ...request, reason: " " }, at(2100)))).rejects.toMatchObject({
      status: 400,
    });
    expect(await store.read(activeHoldsOfUsers(org.id, ["u-hold", "u-none"]))).toEqual([hold]);
    expect(await store.read(activeHoldsOfUsers(org.id, []))).toEqual([]);

    const released = await store.write(releaseHold({ ...request, note: "cleared" }, at(3000)));
    expect(released).toEqual([{ ...hold, releasedBy: "operator:adm_1", releasedAt: 3000 }]);
    await expect(store.write(releaseHold(request, at(3100)))).rejects.toMatchObject({ status: 409 });
    await store.write(placeHold({ ...request, reason: "second" }, at(4000)));
    expect((await store.read(listHolds(org.id))).map((h) => [h.reason, h.releasedAt])).toEqual([
      ["review", 3000],
      ["second", null],
    ]);
    expect(await store.read(listHolds(org.id, "u-other"))).toEqual([]);

    const audit = (await auditOf(org.id)).filter((a) => a.action.startsWith("hold."));
    expect(audit.map((a) => a.action)).toEqual(["hold.place", "hold.release", "hold.place"]);
    expect(JSON.parse(audit[1]!.after!)).toEqual({ held: false, reason: "cleared" });
    // The user's job was merged: the most urgent lane (deprovision) of the three enqueues.
    expect((await jobsOf(org.id)).filter((j) => j.kind === "user")).toEqual([
      { key: "user:u-hold", lane: 0, kind: "user" },
    ]);
  });

  it("searches an organization's users with filters, ordering and keyset paging", async () => {
    const org = await store.write(createOrganization({ slug: "org-users" }, at(1000)));
    const d1 = await store.write(createDirectory({ organizationId: org.id, name: "one" }, at(1000)));
    const d2 = await store.write(createDirectory({ organizationId: org.id, name: "two" }, at(1000)));
    const users: [string, string, string, boolean][] = [
      ["u-a", d1.id, "Ann@x.example", true],
      ["u-b", d2.id, "bob_smith@x.example", true],
      ["u-c", d1.id, "carol@x.example", false],
      ["u-d", d2.id, "dave@x.example", true],
      ["u-e", d1.id, "bob%x@x.example", true],
    ];
    for (const [id, dir, name, active] of users) await store.write(insertUser(id, dir, name, active));
    await store.write(exec("UPDATE users SET deleted_at = 5 WHERE id = 'u-d'"));
    await store.write(placeHold({ organizationId: org.id, userId: "u-a", reason: "r" }, at(2000)));
    await store.write(
      exec(
        `INSERT INTO user_sync (user_id, organization_id, directory_id, last_error, last_error_at)
         VALUES ('u-b', ?, ?, 'boom', 1)`,
        [org.id, d2.id],
      ),
    );
    const ids = async (s: Partial<Parameters<typeof searchUsers>[0]>) =>
      (await store.read(searchUsers({ organizationId: org.id, limit: 10, ...s }))).users.map((u) => u.id);

    expect(await ids({})).toEqual(["u-a", "u-b", "u-c", "u-e"]);
    const page1 = await store.read(searchUsers({ organizationId: org.id, limit: 2 }));
    expect(page1.users.map((u) => u.id)).toEqual(["u-a", "u-b"]);
    expect(page1.next).toBe("u-b");
    const page2 = await store.read(searchUsers({ organizationId: org.id, limit: 2, after: "u-b" }));
    expect(page2).toMatchObject({ next: null });
    expect(page2.users.map((u) => u.id)).toEqual(["u-c", "u-e"]);
    expect(await ids({ directoryId: d2.id })).toEqual(["u-b"]);
    expect(await ids({ q: "ANN" })).toEqual(["u-a"]);
    expect(await ids({ q: "b_s" })).toEqual(["u-b"]); // "_" is literal, not a wildcard
    expect(await ids({ q: "%" })).toEqual(["u-e"]);
    await store.write(
      exec(
        `INSERT INTO user_emails (user_id, directory_id, position, value_lower, "primary")
         VALUES ('u-c', ?, 0, 'carol.work@mail.example', TRUE)`,
        [d1.id],
      ),
    );
    expect(await ids({ q: "WORK@mail" })).toEqual(["u-c"]); // by email
    expect(await ids({ q: "ext-u-e" })).toEqual(["u-e"]); // by externalId
    expect(await ids({ state: "active" })).toEqual(["u-b", "u-e"]);
    expect(await ids({ state: "inactive" })).toEqual(["u-c"]);
    expect(await ids({ state: "held" })).toEqual(["u-a"]);
    expect(await ids({ state: "error" })).toEqual(["u-b"]);
    expect(await ids({ sync: "error" })).toEqual(["u-b"]);
    expect(await ids({ sync: "pending" })).toEqual(["u-a"]); // the hold's reconcile job
    expect(await ids({ sync: "unlinked" })).toEqual(["u-a", "u-b", "u-c", "u-e"]);

    const found = await store.read(findUser(org.id, "u-c"));
    expect(found).toMatchObject({ id: "u-c", directoryId: d1.id, userName: "carol@x.example", active: false });
    expect((await store.read(findUser(org.id, "u-a")))!.active).toBe(true);
    expect(await store.read(findUser(org.id, "u-d"))).toBeUndefined();
    expect(await store.read(findUser("other", "u-a"))).toBeUndefined();

    for (const [id, dir, name] of [
      ["g-2", d1.id, "Zeta"],
      ["g-1", d2.id, "alpha"],
      ["g-3", d1.id, "Beta"],
    ] as const) {
      await store.write(
        exec(
          `INSERT INTO groups (id, directory_id, display_name, display_name_lower, resource, version, member_count,
             created_at, modified_at) VALUES (?, ?, ?, ?, '{}', 1, 0, 1, 1)`,
          [id, dir, name, name.toLowerCase()],
        ),
      );
    }
    await store.write(
      exec(
        `INSERT INTO group_members (group_id, member_id, directory_id, member_type, added_at)
         VALUES ('g-3', 'u-a', ?, 'User', 1)`,
        [d1.id],
      ),
    );
    expect((await store.read(listOrganizationGroups(org.id, 10))).map((g) => g.displayName)).toEqual([
      "alpha",
      "Beta",
      "Zeta",
    ]);
    expect(await store.read(listOrganizationGroups(org.id, 2))).toHaveLength(2);
    expect(await store.read(listOrganizationGroups(org.id, 10, "u-a"))).toEqual([
      { id: "g-3", directoryId: d1.id, displayName: "Beta", memberCount: 0 },
    ]);
    expect(await ids({ group: "g-3" })).toEqual(["u-a"]);
  });

  it("pages the audit trail newest first with its filters", async () => {
    const org = await store.write(createOrganization({ slug: "org-audit" }, at(1000)));
    await store.write(updateOrganization(org, { displayName: "Audited" }, at(2000)));
    const dir = await store.write(createDirectory({ organizationId: org.id }, at(3000)));
    const all = await store.read(queryAudit({ organizationId: org.id, limit: 10 }));
    expect(all.entries.map((e) => e.action)).toEqual([
      "directory.create",
      "organization.update",
      "organization.create",
    ]);
    expect(all.next).toBeNull();
    expect(all.entries[0]).toMatchObject({ actorType: "operator", actorId: "adm_1", directoryId: dir.id, at: 3000 });
    const first = await store.read(queryAudit({ organizationId: org.id, limit: 2 }));
    expect(first.next).toBe(all.entries[1]!.id);
    expect((await store.read(queryAudit({ organizationId: org.id, limit: 2, before: first.next! }))).entries).toEqual([
      all.entries[2],
    ]);
    const actions = async (q: Partial<Parameters<typeof queryAudit>[0]>) =>
      (await store.read(queryAudit({ organizationId: org.id, limit: 10, ...q }))).entries.map((e) => e.action);
    expect(await actions({ action: "organization." })).toEqual(["organization.update", "organization.create"]);
    expect(await actions({ action: "organization" })).toEqual([]);
    expect(await actions({ since: 2000, until: 2000 })).toEqual(["organization.update"]);
    expect(await actions({ directory: dir.id, targetType: "directory" })).toEqual(["directory.create"]);
    expect(await actions({ actorType: "system" })).toEqual([]);
  });

  it("writes, trims and reads the SCIM request log", async () => {
    const org = await store.write(createOrganization({ slug: "org-log" }, at(1000)));
    const dir = await store.write(createDirectory({ organizationId: org.id }, at(1000)));
    const row = (i: number) => ({
      directoryId: dir.id,
      at: 1000 + i,
      method: "GET",
      path: `/Users/${i}`,
      status: i % 3 === 0 ? 400 : 200,
      scimType: i % 3 === 0 ? "invalidFilter" : null,
      detail: null,
      requestId: `req-${i}`,
      durationMs: i,
    });
    await store.write(insertScimRequestLog(Array.from({ length: 10 }, (_, i) => row(i))));
    await store.write(insertScimRequestLog([{ ...row(99), directoryId: "dir-other" }]));
    expect(await store.write(trimScimRequestLog(dir.id, 20))).toBe(0);
    expect(await store.write(trimScimRequestLog(dir.id, 4))).toBe(6);
    const kept = await store.read(listScimRequestLog(dir.id, { limit: 100 }));
    expect(kept.map((r) => r.path)).toEqual(["/Users/9", "/Users/8", "/Users/7", "/Users/6"]);
    expect(kept[0]).toMatchObject({
      directoryId: dir.id,
      at: 1009,
      status: 400,
      scimType: "invalidFilter",
      durationMs: 9,
    });
    expect((await store.read(listScimRequestLog(dir.id, { limit: 100, errorsOnly: true }))).map((r) => r.path)).toEqual(
      ["/Users/9", "/Users/6"],
    );
    expect(await store.read(listScimRequestLog(dir.id, { limit: 1 }))).toHaveLength(1);
    expect(await store.read(listScimRequestLog("dir-other", { limit: 10 }))).toHaveLength(1);
  });

  it("answers the health and queue lookups of the operator tools", async () => {
    expect(await store.read(ping())).toBe(true);
    const org = await store.write(createOrganization({ slug: "org-queue" }, at(1000)));
    const dir = await store.write(createDirectory({ organizationId: org.id }, at(1000)));
    await store.write(insertUser("u-q", dir.id, "queued@x.example", true));
    await store.write(placeHold({ organizationId: org.id, userId: "u-q", reason: "r" }, at(2000)));
    await store.write(exec("UPDATE jobs SET state = 'dead' WHERE key = ?", [`organization:${org.id}`]));
    const queue = await store.read(
      queueJobs({ states: ["pending", "running", "dead"], organizationId: org.id, limit: 10 }),
    );
    expect(queue.total).toBe(2);
    expect(queue.jobs.map((j) => [j.kind, j.state, j.slug, j.userName])).toEqual([
      ["user", "pending", "org-queue", "queued@x.example"],
      ["organization", "dead", "org-queue", null],
    ]);
    expect((await store.read(queueJobs({ states: ["dead"], organizationId: org.id, limit: 10 }))).total).toBe(1);

    await store.write(exec("UPDATE organizations SET auth0_org_id = 'org_auth0' WHERE id = ?", [org.id]));
    await store.write(forgetAuth0Links(5000));
    expect((await store.read(getOrganization(org.id)))!.auth0OrgId).toBeNull();
    expect(
      (await store.read(queueJobs({ states: ["pending"], organizationId: org.id, limit: 10 }))).jobs.map((j) => j.kind),
    ).toEqual(["user", "organization"]);
  });
});
