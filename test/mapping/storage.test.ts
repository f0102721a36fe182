import { eq } from "drizzle-orm";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { auditEntries, jobs, mappingVersions } from "../../db/schema.js";
import type { OpenDatabase } from "../../src/directory/database.js";
import {
  activateMappingVersion,
  listMappingVersions,
  readActiveMapping,
  saveMappingVersion,
} from "../../src/directory/mappings.js";
import { sqliteStore } from "../../src/directory/sql.js";
import { recordConnection } from "../../src/directory/settings.js";
import type { BridgeError } from "../../src/errors.js";
import { parseMapping, type MappingDocument } from "../../src/mapping/index.js";
import { openMemoryDb, seedOrganization } from "./seed.js";
import { runSync, writeSync } from "../../src/directory/store-op.js";

const alice = { type: "operator" as const, id: "alice" };
const v = (defaultRole: string): MappingDocument =>
  parseMapping({
    connection: { name: "acme-db" },
    userModel: "isolated",
    profile: { email: "userName" },
    roles: { rules: [], default: [defaultRole] },
  });

let handle: OpenDatabase;
let orgId: string;
beforeEach(() => {
  handle = openMemoryDb();
  orgId = seedOrganization(handle.db, "acme").orgId;
});
afterEach(() => handle.close());
/** The store over the test's connection (the one the seeding helpers write through). */
const store = () => sqliteStore(handle.sqlite);

describe("versioned mapping storage", () => {
  it("an organization without a mapping gets the default for its user model and connection", async () => {
    const active = await readActiveMapping(store(), "acme");
    expect(active).toMatchObject({ organizationId: orgId, version: null });
    expect(active?.document.connection.name).toBe("acme-db");
    expect(active?.document.connection.type).toBe("database");
    // The default never deletes Auth0 users: a mapping has to say so.
    expect(active?.document.policies.deletion.deleteUser).toBe(false);
    expect(await readActiveMapping(store(), "nope")).toBeNull();
  });

  it("the default follows the connection's type once the bridge has read it from the tenant", async () => {
    runSync(
      handle.db,
      recordConnection({
        name: "acme-db",
        strategy: "okta",
        type: "enterprise",
        setUserRootAttributes: "on_each_login",
        checkedAt: 1,
      }),
    );
    const active = await readActiveMapping(store(), "acme");
    expect(active?.document.connection).toEqual({ name: "acme-db", type: "enterprise" });
    expect(Object.keys(active?.document.profile ?? {})).toEqual(["email"]);
  });

  it("apply stores a new active version, with an audit entry and a background organization reconcile job", async () => {
    const saved = writeSync(
      handle.db,
      saveMappingVersion("acme", v("member"), {
        actor: alice,
        comment: "onboarding",
        now: 1000,
      }),
    );
    expect(saved).toEqual({ organizationId: orgId, version: 1, changed: true });
    expect(await readActiveMapping(store(), orgId)).toMatchObject({ version: 1, document: v("member") });
    expect(handle.db.select().from(auditEntries).all()).toMatchObject([
      {
        action: "mapping.apply",
        actorType: "operator",
        actorId: "alice",
        organizationId: orgId,
        targetId: "1",
        at: 1000,
      },
    ]);
    expect(handle.db.select().from(jobs).all()).toMatchObject([
      { kind: "organization", subjectId: orgId, lane: 2, state: "pending" },
    ]);
  });

  it("applying the active document again writes nothing", () => {
    writeSync(handle.db, saveMappingVersion("acme", v("member"), { actor: alice }));
    expect(writeSync(handle.db, saveMappingVersion("acme", v("member"), { actor: alice }))).toEqual({
      organizationId: orgId,
      version: 1,
      changed: false,
    });
    expect(handle.db.select().from(mappingVersions).all()).toHaveLength(1);
    expect(handle.db.select().from(auditEntries).all()).toHaveLength(1);
  });

  it("keeps every version with who and when; rollback makes an earlier one active again", async () => {
    writeSync(handle.db, saveMappingVersion("acme", v("member"), { actor: alice, comment: "first", now: 1 }));
    writeSync(handle.db, saveMappingVersion("acme", v("viewer"), { actor: { type: "operator", id: "bob" }, now: 2 }));
    expect(runSync(handle.db, listMappingVersions("acme"))).toEqual([
      { version: 2, createdBy: "operator:bob", createdAt: 2, comment: null, active: true },
      { version: 1, createdBy: "operator:alice", createdAt: 1, comment: "first", active: false },
    ]);
    expect(writeSync(handle.db, activateMappingVersion("acme", 1, alice))).toEqual({
      organizationId: orgId,
      version: 1,
      changed: true,
    });
    expect((await readActiveMapping(store(), "acme"))?.document.roles.default).toEqual(["member"]);
    expect(
      handle.db.select().from(auditEntries).where(eq(auditEntries.action, "mapping.activate")).all(),
    ).toMatchObject([{ targetId: "1", before: JSON.stringify({ activeVersion: 2 }) }]);
    // Applying after a rollback continues the numbering; nothing is overwritten.
    expect(writeSync(handle.db, saveMappingVersion("acme", v("eng"), { actor: alice })).version).toBe(3);
  });

  it("refuses unknown organizations and versions with notFound", () => {
    const kindOf = (fn: () => unknown) => {
      try {
        fn();
      } catch (e) {
        return (e as BridgeError).kind;
      }
      return "no error";
    };
    expect(kindOf(() => writeSync(handle.db, activateMappingVersion("acme", 7, alice)))).toBe("notFound");
    expect(kindOf(() => writeSync(handle.db, saveMappingVersion("nope", v("x"), { actor: alice })))).toBe("notFound");
    expect(kindOf(() => runSync(handle.db, listMappingVersions("nope")))).toBe("notFound");
  });

  it("refuses an invalid document and writes nothing", () => {
    const broken = { ...v("x"), userModel: "tenant" } as unknown as MappingDocument;
    expect(() => writeSync(handle.db, saveMappingVersion("acme", broken, { actor: alice }))).toThrow(/userModel/);
    expect(handle.db.select().from(mappingVersions).all()).toHaveLength(0);
    expect(handle.db.select().from(jobs).all()).toHaveLength(0);
  });
});
