import { randomUUID } from "node:crypto";
import { and, desc, eq, isNotNull, or, sql } from "drizzle-orm";
import { directories, guardPauses, users } from "../../db/schema.js";
import type { Db } from "../directory/database.js";
import { recordAudit, type Actor } from "../directory/audit.js";
import type { GuardPolicy } from "../mapping/index.js";
import { conflict, notFound } from "../errors.js";
import { enqueueJob, Lane } from "../directory/outbox.js";
import { runSync } from "../directory/store-op.js";

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

function deprovisionedSince(db: Db, organizationId: string, since: number): { changed: number; total: number } {
  const row = db
    .select({
      changed: sql<number>`sum(case when (${users.active} = 0 or ${users.deletedAt} is not null) and ${users.modifiedAt} >= ${since} then 1 else 0 end)`,
      total: sql<number>`sum(case when ${users.deletedAt} is null or ${users.deletedAt} >= ${since} then 1 else 0 end)`,
    })
    .from(users)
    .innerJoin(directories, eq(directories.id, users.directoryId))
    .where(eq(directories.organizationId, organizationId))
    .get();
  return { changed: Number(row?.changed ?? 0), total: Number(row?.total ?? 0) };
}

export function activePause(db: Db, organizationId: string): GuardPause | undefined {
  return db
    .select()
    .from(guardPauses)
    .where(and(eq(guardPauses.organizationId, organizationId), eq(guardPauses.state, "paused")))
    .get();
}

/** Evaluates (and trips) the guard for an organization before an irreversible operation. */
export function checkGuard(
  db: Db,
  organizationId: string,
  policy: GuardPolicy,
  userModifiedAt: number,
  now = Date.now(),
): GuardVerdict {
  if (!policy.enabled) return { allowIrreversible: true };
  const paused = activePause(db, organizationId);
  if (paused) return { allowIrreversible: false, pause: paused };
  const last = db
    .select()
    .from(guardPauses)
    .where(and(eq(guardPauses.organizationId, organizationId), isNotNull(guardPauses.decidedAt)))
    .orderBy(desc(guardPauses.decidedAt))
    .get();
  // A rejected pause keeps the irreversible part of the changes it covered from running.
  if (last?.state === "rejected" && last.decidedAt !== null && userModifiedAt <= last.decidedAt)
    return { allowIrreversible: false, pause: last };
  const since = Math.max(now - policy.windowMinutes * 60_000, last?.decidedAt ?? 0);
  const { changed, total } = deprovisionedSince(db, organizationId, since);
  const share = total === 0 ? 0 : (changed / total) * 100;
  if (changed < policy.minUsers || share < policy.percent) return { allowIrreversible: true };
  const pause: GuardPause = {
    id: `gp_${randomUUID()}`,
    organizationId,
    trippedAt: now,
    reason: `${changed} of ${total} users (${share.toFixed(1)}%) deactivated or deleted within ${policy.windowMinutes} minutes (threshold ${policy.percent}%, at least ${policy.minUsers} users)`,
    state: "paused",
    decidedBy: null,
    decidedAt: null,
  };
  db.transaction((tx) => {
    tx.insert(guardPauses).values(pause).run();
    runSync(
      tx,
      recordAudit({
        actor: { type: "system", id: "mass-deprovision-guard" },
        organizationId,
        action: "guard.trip",
        targetType: "organization",
        targetId: organizationId,
        after: { reason: pause.reason },
      }),
    );
  });
  return { allowIrreversible: false, pause };
}

/**
 * An operator approves (the irreversible operations run) or rejects (they stay undone) a pause.
 * Either way the organization's deprovisioned users are reconciled again so the decision takes effect.
 */
export function decideGuardPause(
  db: Db,
  organizationId: string,
  decision: "approved" | "rejected",
  actor: Actor,
  requestId?: string,
  now = Date.now(),
): GuardPause {
  return db.transaction((tx) => {
    const pause = tx
      .select()
      .from(guardPauses)
      .where(and(eq(guardPauses.organizationId, organizationId), eq(guardPauses.state, "paused")))
      .get();
    if (!pause) throw notFound("no paused irreversible operations for this organization");
    if (pause.state !== "paused") throw conflict("this pause was already decided");
    tx.update(guardPauses)
      .set({ state: decision, decidedBy: actor.id, decidedAt: now })
      .where(eq(guardPauses.id, pause.id))
      .run();
    runSync(
      tx,
      recordAudit({
        actor,
        organizationId,
        action: `guard.${decision === "approved" ? "approve" : "reject"}`,
        targetType: "organization",
        targetId: organizationId,
        before: { state: "paused" },
        after: { state: decision },
        requestId: requestId ?? null,
      }),
    );
    const affected = tx
      .select({ id: users.id, directoryId: users.directoryId })
      .from(users)
      .innerJoin(directories, eq(directories.id, users.directoryId))
      .where(
        and(eq(directories.organizationId, organizationId), or(eq(users.active, false), isNotNull(users.deletedAt))),
      )
      .all();
    for (const u of affected)
      runSync(
        tx,
        enqueueJob({
          organizationId,
          directoryId: u.directoryId,
          kind: "user",
          subjectId: u.id,
          lane: Lane.deprovision,
          now,
        }),
      );
    return { ...pause, state: decision, decidedBy: actor.id, decidedAt: now };
  });
}

export function listGuardPauses(db: Db, organizationId: string): GuardPause[] {
  return db
    .select()
    .from(guardPauses)
    .where(eq(guardPauses.organizationId, organizationId))
    .orderBy(desc(guardPauses.trippedAt))
    .all();
}

/** Organizations with a pause waiting for an operator's decision (status and metrics). */
export function pausedOrganizations(db: Db): string[] {
  return db
    .selectDistinct({ id: guardPauses.organizationId })
    .from(guardPauses)
    .where(eq(guardPauses.state, "paused"))
    .all()
    .map((r) => r.id);
}
