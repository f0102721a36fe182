import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Command } from "commander";
import { and, eq, isNull } from "drizzle-orm";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { guardPauses, jobs, userSync, users } from "../../db/schema.js";
import { registerStatusCommands } from "../../src/cli/status.js";
import { openStore } from "../../src/cli/database.js";
import { openDatabase, type Db } from "../../src/directory/database.js";
import { onboardOrganizationOp } from "../../src/admin/onboarding.js";
import { changeBy } from "../../src/directory/write-context.js";
import { listDirectories } from "../../src/directory/directories.js";
import { getOrganization } from "../../src/directory/organizations.js";
import { enqueueJob, Lane } from "../../src/directory/outbox.js";
import { userSyncStates } from "../../src/sync/sync-state.js";
import { sqliteStore } from "../../src/directory/sql.js";
import { connectionOf } from "../../src/directory/statements.js";
import { runSync, writeSync } from "../../src/directory/store-op.js";

let dir: string;
let url: string;
let out: string[];
let err: string[];
const operator = { type: "operator" as const, id: "test" };

function addUser(db: Db, directoryId: string, id: string, userName: string, active = true, deleted = false): void {
  const t = Date.now();
  db.insert(users)
    .values({
      id,
      directoryId,
      userName,
      userNameLower: userName.toLowerCase(),
      active,
      resource: JSON.stringify({ userName, active }),
      version: 1,
      createdAt: t,
      modifiedAt: t,
      deletedAt: deleted ? t : null,
    })
    .run();
}

function sync(
  db: Db,
  userId: string,
  directoryId: string,
  organizationId: string,
  auth0UserId: string | null,
  lastError: string | null = null,
): void {
  db.insert(userSync)
    .values({
      userId,
      directoryId,
      organizationId,
      auth0UserId,
      applied: "{}",
      appliedAt: Date.now(),
      lastError,
      lastErrorAt: lastError ? Date.now() : null,
    })
    .run();
}

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "status-cli-"));
  url = `sqlite:${join(dir, "bridge.db")}`;
  const { db, close } = openDatabase(url);
  const acme = writeSync(db, onboardOrganizationOp({ slug: "acme", displayName: "Acme Inc." }, changeBy(operator)));
  const orgId = acme.organization.id;
  const dirId = acme.directory.id;
  db.delete(jobs).run(); // the onboarding's own "organization" job; the test sets the queue up itself
  // ann, bob: linked; cat: linked but re-queued (pending); dan: failed; eve: inactive, awaiting a deprovision; fay: never synced; gus: deleted.
  for (const [id, name, active] of [
    ["u-ann", "ann@acme.test", true],
    ["u-bob", "bob@acme.test", true],
    ["u-cat", "cat@acme.test", true],
    ["u-dan", "dan@acme.test", true],
    ["u-eve", "eve@acme.test", false],
    ["u-fay", "fay@acme.test", true],
  ] as const)
    addUser(db, dirId, id, name, active);
  addUser(db, dirId, "u-gus", "gus@acme.test", false, true);
  sync(db, "u-ann", dirId, orgId, "auth0|ann");
  sync(db, "u-bob", dirId, orgId, "auth0|bob");
  sync(db, "u-cat", dirId, orgId, "auth0|cat");
  sync(db, "u-dan", dirId, orgId, null, "Auth0 rejected the email: invalid");
  sync(db, "u-eve", dirId, orgId, "auth0|eve");
  runSync(
    db,
    enqueueJob({ organizationId: orgId, directoryId: dirId, kind: "user", subjectId: "u-cat", lane: Lane.provision }),
  );
  runSync(
    db,
    enqueueJob({
      organizationId: orgId,
      directoryId: dirId,
      kind: "user",
      subjectId: "u-eve",
      lane: Lane.deprovision,
      now: Date.now() - 90_000,
    }),
  );
  runSync(
    db,
    enqueueJob({
      organizationId: orgId,
      directoryId: dirId,
      kind: "user",
      subjectId: "u-gus",
      lane: Lane.deprovision,
    }),
  );
  db.update(jobs)
    .set({ state: "dead", attempts: 12, lastError: "gave up after 12 attempts: Auth0 503" })
    .where(eq(jobs.subjectId, "u-gus"))
    .run();
  db.insert(guardPauses)
    .values({
      id: "gp1",
      organizationId: orgId,
      trippedAt: Date.now(),
      reason: "40 of 100 users deactivated within 10 minutes",
      state: "paused",
    })
    .run();
  // A second organization whose jobs must not show up under acme.
  writeSync(db, onboardOrganizationOp({ slug: "globex" }, changeBy(operator)));
  close();
  out = [];
  err = [];
  vi.spyOn(console, "log").mockImplementation((...a: unknown[]) => void out.push(a.join(" ")));
  vi.spyOn(console, "error").mockImplementation((...a: unknown[]) => void err.push(a.join(" ")));
});
afterEach(() => {
  vi.restoreAllMocks();
  process.exitCode = undefined;
  rmSync(dir, { recursive: true, force: true });
});

async function cli(...args: string[]): Promise<number> {
  const program = new Command("scim-bridge").exitOverride().configureOutput({ writeErr: (s) => void err.push(s) });
  registerStatusCommands(
    program,
    () => openStore(url),
    () => "https://bridge.example.com",
  );
  process.exitCode = undefined;
  await program.parseAsync(["node", "scim-bridge", ...args]);
  return Number(process.exitCode ?? 0);
}

describe("scim-bridge status <org>", () => {
  it("reports users by sync state, the queue by lane, dead jobs and the guard, as JSON", async () => {
    expect(await cli("status", "acme", "--json")).toBe(0);
    const status = JSON.parse(out.join("\n"));
    expect(status.organization).toMatchObject({
      slug: "acme",
      displayName: "Acme Inc.",
      userModel: "isolated",
      auth0OrgId: null,
    });
    expect(status.directories).toHaveLength(1);
    expect(status.directories[0]).toMatchObject({ name: "default", activeTokens: 1, lastUsedAt: null });
    expect(status.directories[0].scimBaseUrl).toBe(`https://bridge.example.com/scim/v2/${status.directories[0].id}`);
    // gus is deleted (a tombstone): not a live user, but its dead job counts.
    expect(status.users).toEqual({
      total: 6,
      active: 5,
      inactive: 1,
      synced: 2,
      pending: 2,
      failed: 1,
      awaitingFirstLogin: 0,
      notSynced: 1,
    });
    expect(status.failedUsers).toEqual([
      expect.objectContaining({ userName: "dan@acme.test", lastError: "Auth0 rejected the email: invalid" }),
    ]);
    expect(status.queue).toEqual({
      deprovision: { pending: 1, running: 0, dead: 1 },
      provision: { pending: 1, running: 0, dead: 0 },
      background: { pending: 0, running: 0, dead: 0 },
    });
    expect(status.deadJobs).toBe(1);
    expect(Date.now() - Date.parse(status.oldestDeprovisionWaitingSince)).toBeGreaterThanOrEqual(90_000);
    expect(status.guard).toMatchObject({ paused: true, reason: "40 of 100 users deactivated within 10 minutes" });
  });

  it("ranks every user as the admin API and SCIM do: a dead job is a failure, queued work outranks a recorded error", async () => {
    const { db, close } = openDatabase(url);
    const org = runSync(db, getOrganization("acme"))!;
    const dirId = runSync(db, listDirectories(org.id))[0]!.id;
    // hal: applied, but his last job gave up (no error on the sync row); ida: an error recorded, and a retry queued.
    addUser(db, dirId, "u-hal", "hal@acme.test");
    sync(db, "u-hal", dirId, org.id, "auth0|hal");
    runSync(
      db,
      enqueueJob({
        organizationId: org.id,
        directoryId: dirId,
        kind: "user",
        subjectId: "u-hal",
        lane: Lane.provision,
      }),
    );
    db.update(jobs)
      .set({ state: "dead", attempts: 12, lastError: "gave up: Auth0 409 conflict" })
      .where(eq(jobs.subjectId, "u-hal"))
      .run();
    addUser(db, dirId, "u-ida", "ida@acme.test");
    sync(db, "u-ida", dirId, org.id, null, "Auth0 429: too many requests");
    runSync(
      db,
      enqueueJob({
        organizationId: org.id,
        directoryId: dirId,
        kind: "user",
        subjectId: "u-ida",
        lane: Lane.provision,
      }),
    );
    const live = db
      .select({ id: users.id })
      .from(users)
      .where(and(eq(users.directoryId, dirId), isNull(users.deletedAt)))
      .all();
    const perUser = await sqliteStore(connectionOf(db)).read(
      userSyncStates(
        org.id,
        live.map((u) => u.id),
      ),
    );
    close();

    expect(perUser.get("u-hal")?.status).toBe("failed");
    expect(perUser.get("u-ida")?.status).toBe("pending");
    const tally = { synced: 0, pending: 0, failed: 0, awaitingFirstLogin: 0, notSynced: 0 };
    for (const state of perUser.values()) tally[state.status] += 1;
    expect(await cli("status", "acme", "--json")).toBe(0);
    const status = JSON.parse(out.join("\n"));
    expect(status.users).toMatchObject({ ...tally, total: perUser.size });
    const failedNames = status.failedUsers.map((f: { userName: string }) => f.userName);
    expect(failedNames.sort()).toEqual(["dan@acme.test", "hal@acme.test"]);
    expect(status.failedUsers.find((f: { userName: string }) => f.userName === "hal@acme.test").lastError).toBe(
      "gave up: Auth0 409 conflict",
    );
  });

  it("prints readable tables", async () => {
    expect(await cli("status", "acme")).toBe(0);
    const text = out.join("\n");
    expect(text).toContain("Organization acme (Acme Inc.)");
    expect(text).toContain("Auth0 org   not created yet");
    expect(text).toMatch(/guard\s+PAUSED since .*40 of 100 users deactivated/);
    expect(text).toMatch(/synced\s+2\n\s+pending\s+2\n\s+failed\s+1\n\s+awaiting first login\s+0\n\s+not synced\s+1/);
    expect(text).toMatch(/deprovision\s+1\s+0\s+1/);
    expect(text).toContain("oldest deprovision waiting since 2m ago");
    expect(text).toContain("1 dead job(s): scim-bridge jobs --org acme --state dead");
    expect(text).toContain("dan@acme.test: Auth0 rejected the email: invalid");
  });

  it("exits 1 with a clear message for an unknown organization", async () => {
    expect(await cli("status", "initech")).toBe(1);
    expect(out).toEqual([]);
    expect(err.join("\n")).toContain('organization "initech" not found');
  });
});

describe("scim-bridge jobs", () => {
  it("lists queued, running and dead jobs with lane, attempts and last error; --org and --state filter", async () => {
    expect(await cli("jobs", "--json")).toBe(0);
    const all = JSON.parse(out.join("\n"));
    // acme's three plus globex's onboarding job; done jobs are not listed.
    expect(all.total).toBe(4);
    out.length = 0;

    expect(await cli("jobs", "--org", "acme", "--state", "dead", "--json")).toBe(0);
    const dead = JSON.parse(out.join("\n"));
    expect(dead.total).toBe(1);
    expect(dead.jobs[0]).toMatchObject({
      organization: "acme",
      kind: "user",
      subjectId: "u-gus",
      userName: "gus@acme.test",
      lane: "deprovision",
      state: "dead",
      attempts: 12,
      lastError: "gave up after 12 attempts: Auth0 503",
    });
    out.length = 0;

    expect(await cli("jobs", "--org", "acme")).toBe(0);
    const lines = out.join("\n").split("\n");
    expect(lines[0]).toMatch(/^ID\s+ORG\s+KIND\s+SUBJECT\s+LANE\s+STATE\s+ATTEMPTS\s+NEXT RUN\s+LAST ERROR$/);
    // Pending before dead, deprovision before provision.
    expect(lines.slice(1).map((l) => l.trim().split(/\s+/).slice(3, 6).join(" "))).toEqual([
      "eve@acme.test deprovision pending",
      "cat@acme.test provision pending",
      "gus@acme.test deprovision dead",
    ]);
    expect(lines[1]).toMatch(/pending\s+0\s+due$/);
    expect(lines[3]).toContain("gave up after 12 attempts: Auth0 503");
  });

  it("limits long lists and says how many are left", async () => {
    expect(await cli("jobs", "--limit", "2")).toBe(0);
    expect(out.at(-1)).toBe("… 2 more (--limit, or --json)");
  });

  it("refuses an unknown organization and an unknown state", async () => {
    expect(await cli("jobs", "--org", "initech")).toBe(1);
    expect(err.join("\n")).toContain('organization "initech" not found');
    await expect(cli("jobs", "--state", "stuck")).rejects.toThrow(/Allowed choices are pending, running, dead/);
  });
});
