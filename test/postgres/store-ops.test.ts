/** The store ops of directories, generations, audit and the outbox give the same outcome on both dialects. */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { recordAudit } from "../../src/directory/audit.js";
import { createDirectory, getDirectory, listDirectories } from "../../src/directory/directories.js";
import { directoryGeneration, recordDirectoryWrite } from "../../src/directory/generations.js";
import { enqueueJob, enqueueJobs, Lane } from "../../src/directory/outbox.js";
import type { SqlStore } from "../../src/directory/sql.js";
import { many } from "../../src/directory/store-op.js";
import { changeBy } from "../../src/directory/write-context.js";
import { seedOrganization, storeDialects } from "../support/store-dialects.js";

const system = { type: "system", id: "test" } as const;

describe.each(storeDialects())("directory store ops on $name", (dialect) => {
  let store: SqlStore;
  beforeAll(async () => {
    store = await dialect.open();
    await store.write(seedOrganization());
  });
  afterAll(() => dialect.cleanup());

  it("creates, lists and counts directories, auditing the create in the same transaction", async () => {
    const first = await store.write(createDirectory({ organizationId: "org_1" }, changeBy(system, { at: 1000 })));
    const second = await store.write(
      createDirectory({ organizationId: "org_1", name: " okta " }, changeBy(system, { at: 2000 })),
    );
    expect(first).toMatchObject({ organizationId: "org_1", name: "default", createdAt: 1000, userCount: 0 });
    expect(second.name).toBe("okta");
    await store.write(recordDirectoryWrite(first.id, { users: 3, groups: 1 }));
    await store.write(recordDirectoryWrite(first.id, { users: -1 }));
    await store.write(recordDirectoryWrite(first.id));
    expect(await store.read(getDirectory(first.id))).toMatchObject({ userCount: 2, groupCount: 1, generation: 3 });
    expect(await store.read(directoryGeneration(first.id))).toBe(3);
    expect(await store.read(directoryGeneration("dir_missing"))).toBe(0);
    expect((await store.read(listDirectories("org_1"))).map((d) => d.name)).toEqual(["default", "okta"]);
    const audit = await store.read(
      many<{ action: string; after: string }>(`SELECT action, after FROM audit_entries ORDER BY id`),
    );
    expect(audit).toEqual([
      { action: "directory.create", after: '{"name":"default"}' },
      { action: "directory.create", after: '{"name":"okta"}' },
    ]);
    await expect(
      store.write(createDirectory({ organizationId: "org_1", name: "  " }, changeBy(system))),
    ).rejects.toThrow("directory name must be 1 to 255 characters");
  });

  it("merges enqueues into the waiting job of their key: most urgent lane, first acknowledgement", async () => {
    const job = (subjectId: string, lane: Lane, now: number) =>
      enqueueJob({ organizationId: "org_1", kind: "user", subjectId, lane, now });
    await store.write(job("u1", Lane.provision, 1000));
    await store.write(job("u1", Lane.deprovision, 2000));
    await store.write(
      enqueueJobs({ organizationId: "org_1", kind: "user", lane: Lane.background, now: 3000 }, ["u1", "u2", "u2"]),
    );
    await store.write(enqueueJobs({ organizationId: "org_1", kind: "user", lane: Lane.background }, []));
    const jobs = await store.read(
      many(`SELECT key, lane, state, first_enqueued_at AS "firstEnqueuedAt" FROM jobs ORDER BY key`),
    );
    expect(jobs).toEqual([
      { key: "user:u1", lane: Lane.deprovision, state: "pending", firstEnqueuedAt: 1000 },
      { key: "user:u2", lane: Lane.background, state: "pending", firstEnqueuedAt: 3000 },
    ]);
  });

  it("keeps an audit entry's fields and JSON summaries as written", async () => {
    await store.write(
      recordAudit({
        actor: { type: "operator", id: "adm_1" },
        organizationId: "org_1",
        action: "hold.place",
        targetType: "user",
        targetId: "u1",
        before: { active: true },
        requestId: "req-1",
        at: 5000,
      }),
    );
    const [entry] = await store.read(
      many(
        `SELECT at, actor_type AS "actorType", actor_id AS "actorId", directory_id AS "directoryId", before, after, request_id AS "requestId"
         FROM audit_entries WHERE action = 'hold.place'`,
      ),
    );
    expect(entry).toEqual({
      at: 5000,
      actorType: "operator",
      actorId: "adm_1",
      directoryId: null,
      before: '{"active":true}',
      after: null,
      requestId: "req-1",
    });
  });
});
