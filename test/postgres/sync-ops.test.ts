/** The sync engine's store ops give the same outcome on SQLite and PostgreSQL. */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { enqueueJob, Lane } from "../../src/directory/outbox.js";
import type { SqlStore } from "../../src/directory/sql.js";
import { exec, many } from "../../src/directory/store-op.js";
import { changeBy } from "../../src/directory/write-context.js";
import { recordObservedState, userScanState, userScanStates } from "../../src/sync/drift.js";
import { enqueueDriftScans } from "../../src/sync/drift-schedule.js";
import { enqueueGroupMembers, enqueueOrganizationUsers } from "../../src/sync/fan-out.js";
import {
  activePause,
  decideGuardPause,
  evaluateGuard,
  listGuardPauses,
  pausedOrganizations,
  tripGuard,
} from "../../src/sync/guard.js";
import {
  countOrganizationUsers,
  heldByOtherOrganizations,
  knownAuth0UsersByEmail,
  linkedAuth0UserId,
  loadUserInputs,
  organizationInputPage,
  organizationRow,
  saveApplied,
  saveSyncError,
} from "../../src/sync/inputs.js";
import {
  deadJobsSince,
  getJob,
  jobCounts,
  listDeadJobs,
  listJobs,
  openJobCount,
  queueDepth,
  requestDriftReconcile,
  retryJob,
  userJobs,
} from "../../src/sync/job-queries.js";
import { findDirectoryUser, findOrganization, linkFirstLogin } from "../../src/sync/post-login.js";
import { budgetRows, syncBudget } from "../../src/sync/rate-state.js";
import { savedAuth0OrgId, setAuth0OrgId } from "../../src/sync/reconcile-user.js";
import { failedUsers, syncStatusCounts, userSyncStates } from "../../src/sync/sync-state.js";
import {
  claimJobs,
  finishJob,
  keysWithPendingDeprovision,
  pruneDoneJobs,
  recoverExpiredLeases,
  releaseJobLeases,
  renewJobLeases,
} from "../../src/sync/worker.js";
import { initialApplied, type AppliedState, type GuardPolicy } from "../../src/mapping/index.js";
import { storeDialects } from "../support/store-dialects.js";

const operator = { type: "operator", id: "adm_1" } as const;

/** Two organizations, a directory each; users u1..u4 in acme, x1 in other. */
async function seed(store: SqlStore): Promise<void> {
  await store.write(
    (function* () {
      for (const [id, slug, auth0] of [
        ["org_a", "acme", "org_auth0_a"],
        ["org_b", "other", null],
      ] as const)
        yield* exec(
          `INSERT INTO organizations (id, slug, display_name, user_model, connection, auth0_org_id, created_at, updated_at)
           VALUES (?, ?, ?, 'isolated', 'db', ?, 1, 1)`,
          [id, slug, slug, auth0],
        );
      yield* exec(`INSERT INTO directories (id, organization_id, name, created_at) VALUES ('dir_a', 'org_a', 'a', 1)`);
      yield* exec(`INSERT INTO directories (id, organization_id, name, created_at) VALUES ('dir_b', 'org_b', 'b', 1)`);
      const user = (
        id: string,
        dir: string,
        name: string,
        active: boolean,
        modifiedAt: number,
        deletedAt: number | null,
      ) =>
        exec(
          `INSERT INTO users (id, directory_id, user_name, user_name_lower, active, resource, version, created_at, modified_at, deleted_at)
           VALUES (?, ?, ?, ?, ?, ?, 1, 1, ?, ?)`,
          [
            id,
            dir,
            name,
            name.toLowerCase(),
            active,
            JSON.stringify({ userName: name, active }),
            modifiedAt,
            deletedAt,
          ],
        );
      yield* user("u1", "dir_a", "Ann@acme.test", true, 10, null);
      yield* user("u2", "dir_a", "bob@acme.test", false, 5000, null);
      yield* user("u3", "dir_a", "cy@acme.test", true, 10, null);
      yield* user("u4", "dir_a", "dee@acme.test", true, 10, 6000);
      yield* user("x1", "dir_b", "ann@other.test", true, 10, null);
      yield* exec(
        `INSERT INTO groups (id, directory_id, display_name, display_name_lower, resource, version, created_at, modified_at)
         VALUES ('g1', 'dir_a', 'Eng', 'eng', '{}', 1, 1, 1)`,
      );
      yield* exec(
        `INSERT INTO group_members (group_id, member_id, directory_id, member_type, added_at)
         VALUES ('g1', 'u1', 'dir_a', 'User', 1), ('g1', 'u3', 'dir_a', 'User', 1)`,
      );
    })(),
  );
}

describe.each(storeDialects())("sync store ops on $name", (dialect) => {
  let store: SqlStore;
  beforeAll(async () => {
    store = await dialect.open();
    await seed(store);
  });
  afterAll(() => dialect.cleanup());

  it("writes and reads back user sync state, inputs, links and the JSON-derived facts", async () => {
    const org = (await store.read(organizationRow("org_a")))!;
    expect(org).toMatchObject({ id: "org_a", slug: "acme", auth0OrgId: "org_auth0_a" });
    const inputs = (await store.read(loadUserInputs("u1")))!;
    expect(inputs.row).toMatchObject({ id: "u1", active: true, deletedAt: null });
    expect(inputs.groups).toEqual([{ id: "g1", displayName: "Eng", externalId: null }]);
    expect(inputs.applied).toEqual(initialApplied());

    await store.write(
      saveApplied(
        inputs,
        {
          ...initialApplied(),
          exists: true,
          auth0UserId: "auth0|1",
          profile: { email: "Ann@Acme.test" },
        } as AppliedState,
        100,
      ),
    );
    const x1 = (await store.read(loadUserInputs("x1")))!;
    await store.write(saveApplied(x1, { ...initialApplied(), exists: true, auth0UserId: "auth0|1" }, 100));
    await store.write(saveSyncError(inputs, "boom", 200));
    const u3 = (await store.read(loadUserInputs("u3")))!;
    await store.write(saveApplied(u3, { ...initialApplied(), awaitingFirstLogin: true } as AppliedState, 100));

    expect(await store.read(linkedAuth0UserId("u1"))).toBe("auth0|1");
    expect(await store.read(userScanState("u1"))).toMatchObject({ appliedAt: 100 });
    expect([...(await store.read(heldByOtherOrganizations(["auth0|1", "auth0|9"], "org_a")))]).toEqual(["auth0|1"]);
    expect((await store.read(loadUserInputs("u1")))!.memberOfOtherOrganizations).toBe(true);
    expect([...(await store.read(knownAuth0UsersByEmail(["ann@acme.test", "nobody@acme.test"])))]).toEqual([
      ["ann@acme.test", { auth0UserId: "auth0|1", blocked: false }],
    ]);
    expect(await store.read(countOrganizationUsers("org_a"))).toBe(4);
    const page = await store.read(organizationInputPage(org, "u1", 2));
    expect(page.map((p) => [p.row.id, p.row.active])).toEqual([
      ["u2", false],
      ["u3", true],
    ]);

    const states = await store.read(userSyncStates("org_a", ["u1", "u2", "u3"]));
    expect(states.get("u1")).toMatchObject({
      status: "failed",
      auth0UserId: "auth0|1",
      lastError: "boom",
      lastErrorAt: 200,
    });
    expect(states.get("u2")).toMatchObject({ status: "notSynced", applied: null });
    expect(states.get("u3")).toMatchObject({ status: "awaitingFirstLogin" });
    expect(await store.read(syncStatusCounts("org_a"))).toEqual({
      total: 3,
      active: 2,
      synced: 0,
      pending: 0,
      failed: 1,
      awaitingFirstLogin: 1,
      notSynced: 1,
    });
    expect(await store.read(failedUsers("org_a", 10))).toEqual([
      { userId: "u1", userName: "Ann@acme.test", lastError: "boom", lastErrorAt: 200 },
    ]);
  });

  it("lists, counts and retries jobs, auditing the retry and merging into a pending job", async () => {
    await store.write(
      enqueueJob({
        organizationId: "org_a",
        directoryId: "dir_a",
        kind: "user",
        subjectId: "u2",
        lane: Lane.provision,
        now: 1000,
      }),
    );
    await store.write(
      enqueueJob({
        organizationId: "org_a",
        directoryId: "dir_a",
        kind: "user",
        subjectId: "u3",
        lane: Lane.background,
        now: 2000,
      }),
    );
    const [u2Job] = (await store.read(listJobs({ organizationId: "org_a", kind: "user", limit: 1 }))).jobs;
    expect(u2Job).toMatchObject({ subjectId: "u3", lane: Lane.background, state: "pending", firstEnqueuedAt: 2000 });
    // u2's job gives up; a new change of u2 enqueues a pending job beside the dead one.
    const first = (await store.read(listJobs({ kind: "user", state: "pending" }))).jobs.find(
      (j) => j.subjectId === "u2",
    )!;
    await store.write(
      exec(`UPDATE jobs SET state = 'dead', attempts = 3, last_error = 'nope' WHERE id = ?`, [first.id]),
    );
    await store.write(
      enqueueJob({
        organizationId: "org_a",
        directoryId: "dir_a",
        kind: "user",
        subjectId: "u2",
        lane: Lane.background,
        now: 3000,
      }),
    );

    const page = await store.read(listJobs({ organizationId: "org_a", limit: 2 }));
    expect(page.jobs.map((j) => j.subjectId)).toEqual(["u2", "u3"]);
    expect(page.next).toBe(page.jobs[1]!.id);
    expect((await store.read(listJobs({ organizationId: "org_a", before: page.next! }))).jobs.map((j) => j.id)).toEqual(
      [first.id],
    );
    expect((await store.read(listDeadJobs())).jobs.map((j) => j.id)).toEqual([first.id]);
    expect(await store.read(getJob(first.id))).toMatchObject({ state: "dead", lastError: "nope" });
    const jobsOf = await store.read(userJobs("org_a", ["u2", "u3"]));
    expect(jobsOf.get("u2")?.dead?.id).toBe(first.id);
    expect(jobsOf.get("u2")?.open?.firstEnqueuedAt).toBe(3000);
    expect(await store.read(jobCounts("org_a"))).toEqual([
      { organizationId: "org_a", state: "dead", lane: Lane.provision, count: 1, oldestFirstEnqueuedAt: 1000 },
      { organizationId: "org_a", state: "pending", lane: Lane.background, count: 2, oldestFirstEnqueuedAt: 2000 },
    ]);
    expect(await store.read(queueDepth())).toEqual([
      { lane: Lane.provision, state: "dead", count: 1, oldestFirstEnqueuedAt: 1000 },
      { lane: Lane.background, state: "pending", count: 2, oldestFirstEnqueuedAt: 2000 },
    ]);
    expect((await store.read(userSyncStates("org_a", ["u2"]))).get("u2")?.status).toBe("pending");

    const retried = await store.write(retryJob(first.id, changeBy(operator, { at: 9000, requestId: "req_1" })));
    expect(retried.mergedInto).not.toBeNull();
    expect(retried.job).toMatchObject({
      subjectId: "u2",
      lane: Lane.provision,
      firstEnqueuedAt: 1000,
      runAfter: 9000,
      attempts: 0,
    });
    expect(await store.read(getJob(first.id))).toBeUndefined();
    await expect(store.write(retryJob(first.id, changeBy(operator)))).rejects.toThrow(`job ${first.id} not found`);
    await expect(
      store.write(retryJob(retried.job.id, changeBy(operator), { organizationId: "org_b" })),
    ).rejects.toThrow("not found");
    const audit = await store.read(
      many<{ action: string; after: string; requestId: string }>(
        `SELECT action, after, request_id AS "requestId" FROM audit_entries WHERE action = 'job.retry'`,
      ),
    );
    expect(audit).toEqual([
      {
        action: "job.retry",
        after: JSON.stringify({ state: "pending", attempts: 0, mergedInto: retried.mergedInto }),
        requestId: "req_1",
      },
    ]);

    const drift = await store.write(requestDriftReconcile("org_a", { actor: operator, requestId: null, at: 9500 }));
    expect(drift).toMatchObject({ kind: "drift", subjectId: "org_a", state: "pending", lane: Lane.background });
    expect(await store.write(enqueueDriftScans(9600))).toBe(2);
    expect((await store.read(listJobs({ kind: "drift" }))).jobs.map((j) => j.subjectId).sort()).toEqual([
      "org_a",
      "org_b",
    ]);
  });

  it("claims, renews, finishes, requeues and prunes jobs as the SQLite queue does", async () => {
    await store.write(exec(`DELETE FROM jobs`));
    await store.write(
      enqueueJob({ organizationId: "org_a", kind: "user", subjectId: "u1", lane: Lane.provision, now: 100 }),
    );
    await store.write(
      enqueueJob({ organizationId: "org_a", kind: "user", subjectId: "u4", lane: Lane.deprovision, now: 100 }),
    );
    await store.write(
      enqueueJob({ organizationId: "org_a", kind: "user", subjectId: "u3", lane: Lane.background, now: 100 }),
    );
    // Everything is due at the database's clock on PostgreSQL; claim at a time past both clocks.
    const at = Date.now() + 60_000;
    const claimed = await store.write(
      claimJobs({ owner: "w1", now: at, leaseMs: 1000, limit: 3, nonUrgent: 1, scans: false }),
    );
    expect(claimed.map((j) => [j.subjectId, j.state, j.leaseOwner])).toEqual([
      ["u4", "running", "w1"],
      ["u1", "running", "w1"],
    ]);
    expect(await store.read(keysWithPendingDeprovision(["user:u1", "user:u3"]))).toEqual(new Set());
    await store.write(
      enqueueJob({ organizationId: "org_a", kind: "user", subjectId: "u1", lane: Lane.deprovision, now: 200 }),
    );
    expect(await store.read(keysWithPendingDeprovision(["user:u1", "user:u3"]))).toEqual(new Set(["user:u1"]));
    expect(
      await store.write(
        renewJobLeases(
          claimed.map((j) => j.id),
          "w1",
          at + 5000,
        ),
      ),
    ).toBe(2);
    expect(
      await store.write(
        renewJobLeases(
          claimed.map((j) => j.id),
          "w2",
          at + 5000,
        ),
      ),
    ).toBe(0);

    const [u4, u1] = claimed;
    const request = { owner: "w1", now: at + 10, maxAttempts: 2, retryAt: () => at + 500 };
    expect(await store.write(finishJob(u4!, { status: "done" }, request))).toEqual({ outcome: { status: "done" } });
    expect(await store.write(finishJob(u4!, { status: "done" }, request))).toBeUndefined();
    // u1's retry merges into the pending deprovision job of the same key.
    expect(await store.write(finishJob(u1!, { status: "retry", reason: "busy" }, request))).toEqual({
      outcome: { status: "retry", reason: "busy" },
      retryAt: at + 500,
    });
    const u1Jobs = await store.read(
      many<{ lane: number; attempts: number; lastError: string; firstEnqueuedAt: number }>(
        `SELECT lane, attempts, last_error AS "lastError", first_enqueued_at AS "firstEnqueuedAt" FROM jobs WHERE key = 'user:u1'`,
      ),
    );
    expect(u1Jobs).toEqual([{ lane: Lane.deprovision, attempts: 1, lastError: "busy", firstEnqueuedAt: 100 }]);

    // Out of attempts: dead; then a later success supersedes the dead job.
    const [u3] = await store.write(
      claimJobs({ owner: "w1", now: at + 20, leaseMs: 1000, limit: 1, nonUrgent: 1, scans: false }),
    );
    expect(u3?.subjectId).toBe("u1");
    const [bg] = await store.write(
      claimJobs({ owner: "w1", now: at + 20, leaseMs: 1000, limit: 1, nonUrgent: 1, scans: false }),
    );
    expect(bg?.subjectId).toBe("u3");
    expect(
      await store.write(finishJob(bg!, { status: "retry", reason: "again" }, { ...request, maxAttempts: 1 })),
    ).toEqual({
      outcome: { status: "dead", reason: "gave up after 1 attempts: again" },
    });
    await store.write(
      enqueueJob({ organizationId: "org_a", kind: "user", subjectId: "u3", lane: Lane.background, now: 300 }),
    );
    const [next] = await store.write(
      claimJobs({ owner: "w1", now: at + 30, leaseMs: 1000, limit: 5, nonUrgent: 5, scans: false }),
    );
    expect(next?.subjectId).toBe("u3");
    await store.write(finishJob(next!, { status: "done" }, request));
    expect(await store.read(getJob(bg!.id))).toMatchObject({
      state: "done",
      lastError: `superseded by job ${next!.id}, which succeeded; it had failed: gave up after 1 attempts: again`,
    });

    // Hand-back and lease expiry put running jobs back to pending without counting an attempt.
    await store.write(releaseJobLeases([u3!.id], "w1", at + 40));
    expect(await store.read(getJob(u3!.id))).toMatchObject({ state: "pending", leaseOwner: null, attempts: 1 });
    const [again] = await store.write(
      claimJobs({ owner: "w2", now: at + 50, leaseMs: 10, limit: 1, nonUrgent: 1, scans: false }),
    );
    await store.write(recoverExpiredLeases(at + 100));
    expect(await store.read(getJob(again!.id))).toMatchObject({ state: "pending", leaseOwner: null });
    expect(await store.write(pruneDoneJobs(at + 1000))).toBe(3);
  });

  it("trips, lists and decides guard pauses, re-enqueueing the deprovisioned users", async () => {
    await store.write(exec(`DELETE FROM jobs`));
    const policy: GuardPolicy = { enabled: true, percent: 20, minUsers: 1, windowMinutes: 10 } as GuardPolicy;
    expect(await store.read(evaluateGuard("org_a", { ...policy, enabled: false }, 0, 6000))).toEqual({
      allowIrreversible: true,
    });
    const evaluation = await store.read(evaluateGuard("org_a", policy, 5000, 6000));
    if (!("trip" in evaluation)) throw new Error("expected the guard to trip");
    expect(evaluation.trip.reason).toMatch(/^2 of 4 users \(50\.0%\)/);
    const pause = await store.write(tripGuard(evaluation.trip));
    // A second trip finds the first pause waiting and records nothing.
    const second = await store.write(tripGuard({ ...evaluation.trip, id: "gp_other" }));
    expect(second.id).toBe(pause.id);
    expect(await store.read(activePause("org_a"))).toEqual(pause);
    expect(await store.read(evaluateGuard("org_a", policy, 5000, 6000))).toEqual({ allowIrreversible: false, pause });
    expect(await store.read(pausedOrganizations())).toEqual(["org_a"]);

    const decided = await store.write(decideGuardPause("org_a", "rejected", operator, "req_2", 7000));
    expect(decided).toMatchObject({ state: "rejected", decidedBy: "adm_1", decidedAt: 7000 });
    await expect(store.write(decideGuardPause("org_a", "approved", operator))).rejects.toThrow("no paused");
    expect(await store.read(listGuardPauses("org_a"))).toEqual([decided]);
    expect(await store.read(pausedOrganizations())).toEqual([]);
    // A rejected pause keeps covering the changes made before the decision.
    expect(await store.read(evaluateGuard("org_a", policy, 6500, 8000))).toEqual({
      allowIrreversible: false,
      pause: decided,
    });
    expect(await store.read(many(`SELECT subject_id AS "subjectId", lane FROM jobs ORDER BY subject_id`))).toEqual([
      { subjectId: "u2", lane: Lane.deprovision },
      { subjectId: "u4", lane: Lane.deprovision },
    ]);
    expect(await store.read(many(`SELECT action FROM audit_entries WHERE action LIKE 'guard.%' ORDER BY id`))).toEqual([
      { action: "guard.trip" },
      { action: "guard.reject" },
    ]);
  });

  it("decides a login from directory rows and links a first login in one write", async () => {
    await store.write(exec(`DELETE FROM jobs`));
    expect(await store.read(findOrganization({ id: "org_auth0_a" }))).toBe("org_a");
    expect(await store.read(findOrganization({ name: "other" }))).toBe("org_b");
    expect(await store.read(findOrganization({ id: "nope", name: "acme" }))).toBe("org_a");
    expect(await store.read(findOrganization({ id: "nope" }))).toBeUndefined();
    expect(await store.read(findDirectoryUser("org_a", "auth0|1", null))).toBe("u1");
    expect(await store.read(findDirectoryUser("org_a", "auth0|new", "CY@acme.test"))).toBe("u3");
    expect(await store.read(findDirectoryUser("org_a", "auth0|new", "dee@acme.test"))).toBeUndefined();
    expect(await store.read(findDirectoryUser("org_a", "auth0|new", ""))).toBeUndefined();

    const u3 = (await store.read(loadUserInputs("u3")))!;
    await store.write(linkFirstLogin(u3, { auth0UserId: "auth0|3", connection: "db", email: "cy@acme.test" }, "req_3"));
    expect(await store.read(linkedAuth0UserId("u3"))).toBe("auth0|3");
    expect(await store.read(findDirectoryUser("org_a", "auth0|3", null))).toBe("u3");
    expect(await store.read(many(`SELECT key, lane FROM jobs`))).toEqual([{ key: "user:u3", lane: Lane.provision }]);
    expect(
      await store.read(many(`SELECT action, request_id AS "requestId" FROM audit_entries WHERE action = 'user.link'`)),
    ).toEqual([{ action: "user.link", requestId: "req_3" }]);
  });

  it("keeps drift bookkeeping, fan-out enqueues, the Auth0 organization id and the shared rate budget", async () => {
    await store.write(exec(`DELETE FROM jobs`));
    expect(await store.read(userScanState("u1"))).toMatchObject({ open: false, running: false });
    expect(await store.read(userScanState("nobody"))).toEqual({
      userId: "nobody",
      applied: null,
      appliedAt: null,
      open: false,
      running: false,
    });
    const observed = { ...initialApplied(), exists: true, auth0UserId: "auth0|1b", blocked: false };
    await store.write(recordObservedState({ id: "u1", directoryId: "dir_a" }, "org_a", observed, true));
    expect(JSON.parse((await store.read(userScanState("u1"))).applied!)).toEqual(observed);
    expect(await store.read(linkedAuth0UserId("u1"))).toBe("auth0|1b");
    expect(await store.read(userScanState("u1"))).toMatchObject({ open: true, running: false });
    await store.write(exec(`UPDATE jobs SET state = 'running' WHERE key = 'user:u1'`));
    expect(await store.readCommitted(userScanState("u1"))).toMatchObject({ open: true, running: true });
    await store.write(exec(`UPDATE jobs SET state = 'pending' WHERE key = 'user:u1'`));
    const states = await store.readCommitted(userScanStates(["u1", "nobody", "u2"]));
    expect(states.map((st) => [st.userId, st.open]).sort()).toEqual([
      ["nobody", false],
      ["u1", true],
      ["u2", false],
    ]);

    expect(await store.write(enqueueOrganizationUsers("org_a", 500))).toBe(4);
    expect(await store.write(enqueueGroupMembers("g1", Lane.provision, 600))).toBe(2);
    expect(await store.write(enqueueGroupMembers("g_missing", Lane.provision, 600))).toBe(0);
    expect(await store.read(many(`SELECT subject_id AS "subjectId", lane FROM jobs ORDER BY subject_id`))).toEqual([
      { subjectId: "u1", lane: Lane.deprovision },
      { subjectId: "u2", lane: Lane.background },
      { subjectId: "u3", lane: Lane.provision },
      { subjectId: "u4", lane: Lane.background },
    ]);

    expect(await store.read(savedAuth0OrgId("org_b"))).toBeNull();
    expect(await store.write(setAuth0OrgId("org_b", "org_auth0_b", 700))).toBe(1);
    expect(await store.read(savedAuth0OrgId("org_b"))).toBe("org_auth0_b");

    const specs = new Map([
      ["global", { name: "global", capacity: 10, refillPerSecond: 2 }],
      ["users", { name: "users", capacity: 4, refillPerSecond: 1 }],
    ]);
    const first = await store.write(syncBudget("t1", 1000, specs, new Map([["global", { spent: 3, pausedUntil: 0 }]])));
    expect(first.get("global")).toEqual({ capacity: 10, tokens: 7, updatedAt: 1000, pausedUntil: 0 });
    const second = await store.write(
      syncBudget("t1", 1500, specs, new Map([["global", { spent: 1, remaining: 5, pausedUntil: 4000 }]])),
    );
    expect(second.get("global")).toEqual({ capacity: 10, tokens: 5, updatedAt: 1500, pausedUntil: 4000 });
    expect(await store.read(budgetRows("t1"))).toEqual([
      { tenant: "t1", name: "global", capacity: 10, tokens: 5, updatedAt: 1500, pausedUntil: 4000 },
      { tenant: "t1", name: "users", capacity: 4, tokens: 4, updatedAt: 1000, pausedUntil: 0 },
    ]);
    expect(await store.read(budgetRows("t2"))).toEqual([]);
  });

  it("counts an organization's open jobs and names the ones that went dead since a time, by userName when known", async () => {
    const job = (subjectId: string) =>
      enqueueJob({
        organizationId: "org_b",
        directoryId: "dir_b",
        kind: "user",
        subjectId,
        lane: Lane.provision,
        now: 1,
      });
    await store.write(
      (function* () {
        yield* job("x1");
        yield* job("gone");
        yield* job("old");
      })(),
    );
    expect(await store.read(openJobCount("org_b"))).toBe(3);
    await store.write(
      exec(
        `UPDATE jobs SET state = 'dead', last_error = 'refused', updated_at = 9000 WHERE key IN ('user:x1', 'user:gone')`,
      ),
    );
    await store.write(exec(`UPDATE jobs SET state = 'dead', updated_at = 100 WHERE key = 'user:old'`));
    expect(await store.read(openJobCount("org_b"))).toBe(0);
    const dead = await store.read(deadJobsSince("org_b", 5000));
    expect(dead.map((d) => d.userName ?? d.subjectId).sort()).toEqual(["ann@other.test", "gone"]);
    expect(dead.every((d) => d.lastError === "refused" && d.kind === "user")).toBe(true);
    expect(await store.read(deadJobsSince("org_a", 0))).toEqual([]);
    await store.write(exec(`DELETE FROM jobs WHERE organization_id = 'org_b'`));
  });
});
