import { randomUUID } from "node:crypto";
import type { guardPauses } from "../../db/schema.js";
import { recordAudit, type Actor } from "../directory/audit.js";
import type { GuardPolicy } from "../mapping/index.js";
import { conflict, notFound } from "../errors.js";
import { enqueueJobs, Lane } from "../directory/outbox.js";
import type { SqlStore } from "../directory/sql.js";
import { exec, forUpdate, many, one, type StoreOp } from "../directory/store-op.js";

export type GuardPause = typeof guardPauses.$inferSelect;

/**
 * Mass-deprovision guard (docs/design.md, invariant 8). When a directory deactivates or deletes an
 * unusual share of an organization within the window, irreversible Auth0 operations (delete user,
 * remove membership) pause until an operator decides; blocking and sign-out go ahead regardless.
 * A decision covers the changes made before it; the window for the next trip starts at the decision.
 */
export interface GuardVerdict {
  allowIrreversible: boolean;
  pause?: GuardPause;
}

const pauseColumns = `id, organization_id AS "organizationId", tripped_at AS "trippedAt", reason, state,
  decided_by AS "decidedBy", decided_at AS "decidedAt"`;

function* deprovisionedSince(organizationId: string, since: number): StoreOp<{ changed: number; total: number }> {
  const row = yield* one<{ changed: number | null; total: number | null }>(
    `SELECT CAST(sum(CASE WHEN (NOT u.active OR u.deleted_at IS NOT NULL) AND u.modified_at >= ? THEN 1 ELSE 0 END) AS bigint) AS changed,
       CAST(sum(CASE WHEN u.deleted_at IS NULL OR u.deleted_at >= ? THEN 1 ELSE 0 END) AS bigint) AS total
     FROM users u JOIN directories d ON d.id = u.directory_id
     WHERE d.organization_id = ?`,
    [since, since, organizationId],
  );
  return { changed: Number(row?.changed ?? 0), total: Number(row?.total ?? 0) };
}

/** The organization's pause waiting for a decision, if any. */
export function* activePause(organizationId: string): StoreOp<GuardPause | undefined> {
  return yield* one<GuardPause>(
    `SELECT ${pauseColumns} FROM guard_pauses WHERE organization_id = ? AND state = 'paused'
     ORDER BY tripped_at, id LIMIT 1`,
    [organizationId],
  );
}

/** What evaluateGuard found: a verdict, or a pause to record (tripGuard) before refusing. */
export type GuardEvaluation = GuardVerdict | { trip: GuardPause };

/** The guard's read: whether irreversible operations may run, or the pause the guard must trip. */
export function* evaluateGuard(
  organizationId: string,
  policy: GuardPolicy,
  userModifiedAt: number,
  now: number,
): StoreOp<GuardEvaluation> {
  if (!policy.enabled) return { allowIrreversible: true };
  const paused = yield* activePause(organizationId);
  if (paused) return { allowIrreversible: false, pause: paused };
  const last = yield* one<GuardPause>(
    `SELECT ${pauseColumns} FROM guard_pauses WHERE organization_id = ? AND decided_at IS NOT NULL
     ORDER BY decided_at DESC, id DESC LIMIT 1`,
    [organizationId],
  );
  // A rejected pause keeps the irreversible part of the changes it covered from running.
  if (last?.state === "rejected" && last.decidedAt !== null && userModifiedAt <= last.decidedAt)
    return { allowIrreversible: false, pause: last };
  const since = Math.max(now - policy.windowMinutes * 60_000, last?.decidedAt ?? 0);
  const { changed, total } = yield* deprovisionedSince(organizationId, since);
  const share = total === 0 ? 0 : (changed / total) * 100;
  if (changed < policy.minUsers || share < policy.percent) return { allowIrreversible: true };
  return {
    trip: {
      id: `gp_${randomUUID()}`,
      organizationId,
      trippedAt: now,
      reason: `${changed} of ${total} users (${share.toFixed(1)}%) deactivated or deleted within ${policy.windowMinutes} minutes (threshold ${policy.percent}%, at least ${policy.minUsers} users)`,
      state: "paused",
      decidedBy: null,
      decidedAt: null,
    },
  };
}

/**
 * Records the pause evaluateGuard asked for, with its audit entry, unless one is already waiting
 * (another worker tripped the guard since the read): gives the pause that stands. The
 * organization's row is locked on PostgreSQL so two instances cannot both trip it; SQLite's write
 * transactions already run one at a time.
 */
export function* tripGuard(pause: GuardPause): StoreOp<GuardPause> {
  yield* one(`SELECT id FROM organizations WHERE id = ? ${yield* forUpdate()}`, [pause.organizationId]);
  const existing = yield* activePause(pause.organizationId);
  if (existing) return existing;
  yield* exec(
    `INSERT INTO guard_pauses (id, organization_id, tripped_at, reason, state, decided_by, decided_at)
     VALUES (?, ?, ?, ?, ?, ?, ?)`,
    [pause.id, pause.organizationId, pause.trippedAt, pause.reason, pause.state, pause.decidedBy, pause.decidedAt],
  );
  yield* recordAudit({
    actor: { type: "system", id: "mass-deprovision-guard" },
    organizationId: pause.organizationId,
    action: "guard.trip",
    targetType: "organization",
    targetId: pause.organizationId,
    after: { reason: pause.reason },
    at: pause.trippedAt,
  });
  return pause;
}

/**
 * Evaluates (and trips) the guard for an organization before an irreversible operation: a read,
 * and a write transaction only when the guard trips (the check runs before every irreversible
 * operation, so it holds no write lock while it counts).
 */
export async function checkGuard(
  store: SqlStore,
  organizationId: string,
  policy: GuardPolicy,
  userModifiedAt: number,
  now = Date.now(),
): Promise<GuardVerdict> {
  const evaluation = await store.read(evaluateGuard(organizationId, policy, userModifiedAt, now));
  if (!("trip" in evaluation)) return evaluation;
  return { allowIrreversible: false, pause: await store.write(tripGuard(evaluation.trip)) };
}

/**
 * An operator approves (the irreversible operations run) or rejects (they stay undone) a pause.
 * Either way the organization's deprovisioned users are reconciled again so the decision takes effect.
 */
export function* decideGuardPause(
  organizationId: string,
  decision: "approved" | "rejected",
  actor: Actor,
  requestId?: string,
  now = Date.now(),
): StoreOp<GuardPause> {
  // Read, then decided: locked on PostgreSQL so two operators' decisions cannot both apply.
  const pause = yield* one<GuardPause>(
    `SELECT ${pauseColumns} FROM guard_pauses WHERE organization_id = ? AND state = 'paused'
     ORDER BY tripped_at, id LIMIT 1 ${yield* forUpdate()}`,
    [organizationId],
  );
  if (!pause) throw notFound("no paused irreversible operations for this organization");
  if (pause.state !== "paused") throw conflict("this pause was already decided");
  yield* exec(`UPDATE guard_pauses SET state = ?, decided_by = ?, decided_at = ? WHERE id = ?`, [
    decision,
    actor.id,
    now,
    pause.id,
  ]);
  yield* recordAudit({
    actor,
    organizationId,
    action: `guard.${decision === "approved" ? "approve" : "reject"}`,
    targetType: "organization",
    targetId: organizationId,
    before: { state: "paused" },
    after: { state: decision },
    requestId: requestId ?? null,
    at: now,
  });
  const affected = yield* many<{ id: string; directoryId: string }>(
    `SELECT u.id, u.directory_id AS "directoryId" FROM users u JOIN directories d ON d.id = u.directory_id
     WHERE d.organization_id = ? AND (u.active = FALSE OR u.deleted_at IS NOT NULL)
     ORDER BY u.directory_id, u.id`,
    [organizationId],
  );
  // One enqueue statement per directory rather than one per user.
  const byDirectory = new Map<string, string[]>();
  for (const u of affected) byDirectory.set(u.directoryId, [...(byDirectory.get(u.directoryId) ?? []), u.id]);
  for (const [directoryId, ids] of byDirectory)
    yield* enqueueJobs({ organizationId, directoryId, kind: "user", lane: Lane.deprovision, now }, ids);
  return { ...pause, state: decision, decidedBy: actor.id, decidedAt: now };
}

/** The organization's pauses, latest first. */
export function* listGuardPauses(organizationId: string): StoreOp<GuardPause[]> {
  return yield* many<GuardPause>(
    `SELECT ${pauseColumns} FROM guard_pauses WHERE organization_id = ? ORDER BY tripped_at DESC, id DESC`,
    [organizationId],
  );
}

/** Organizations with a pause waiting for an operator's decision (status and metrics). */
export function* pausedOrganizations(): StoreOp<string[]> {
  const rows = yield* many<{ id: string }>(
    `SELECT DISTINCT organization_id AS id FROM guard_pauses WHERE state = 'paused' ORDER BY organization_id`,
  );
  return rows.map((r) => r.id);
}
