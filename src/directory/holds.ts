import { and, asc, eq, isNull } from "drizzle-orm";
import { directories, holds, users } from "../../db/schema.js";
import { conflict, invalidValue, notFound } from "../errors.js";
import { enqueueJob, Lane } from "./outbox.js";
import { recordAudit, type Actor } from "./audit.js";
import type { Db, DbOrTx } from "./database.js";
import { newResourceId } from "./ids.js";
import type { Change } from "./write-context.js";
import { runSync } from "./store-op.js";

/**
 * Holds (docs/design.md, "Concepts"): a block placed by a customer admin or an operator that wins over the IdP until
 * someone releases it; a later `active: true` does not undo it. desired() treats an active hold as
 * deprovisioning, so placing or releasing one is a reconcile job like any IdP change. Each is ONE
 * transaction: hold row, audit entry and job commit together or not at all.
 */
export type HoldRow = typeof holds.$inferSelect;

export interface HoldRequest {
  organizationId: string;
  userId: string;
}

const actorName = (a: Actor): string => `${a.type}:${a.id}`;

/** A live user of the organization (any of its directories), or 404: ids of other tenants do not exist here. */
function userOfOrganization(tx: DbOrTx, organizationId: string, userId: string): { id: string; directoryId: string } {
  const user = tx
    .select({ id: users.id, directoryId: users.directoryId })
    .from(users)
    .innerJoin(directories, eq(directories.id, users.directoryId))
    .where(and(eq(users.id, userId), eq(directories.organizationId, organizationId), isNull(users.deletedAt)))
    .get();
  if (!user) throw notFound(`user "${userId}" not found`);
  return user;
}

export function activeHoldsOf(db: DbOrTx, organizationId: string, userId: string): HoldRow[] {
  return db
    .select()
    .from(holds)
    .where(and(eq(holds.organizationId, organizationId), eq(holds.userId, userId), isNull(holds.releasedAt)))
    .orderBy(asc(holds.placedAt))
    .all();
}

/** Blocks a user now: the reconcile runs in the deprovision lane (docs/design.md, invariant 3). */
export function placeHold(db: Db, request: HoldRequest & { reason: string }, change: Change): HoldRow {
  const { actor, requestId, at: now } = change;
  const reason = request.reason.trim();
  if (reason.length === 0 || reason.length > 500) throw invalidValue("reason must be 1 to 500 characters");
  return db.transaction(
    (tx) => {
      const user = userOfOrganization(tx, request.organizationId, request.userId);
      const existing = activeHoldsOf(tx, request.organizationId, user.id)[0];
      if (existing) throw conflict(`user "${user.id}" is already blocked (hold ${existing.id}: ${existing.reason})`);
      const hold = tx
        .insert(holds)
        .values({
          id: newResourceId(),
          organizationId: request.organizationId,
          directoryId: user.directoryId,
          userId: user.id,
          reason,
          placedBy: actorName(actor),
          placedAt: now,
        })
        .returning()
        .get();
      runSync(
        tx,
        recordAudit({
          actor,
          organizationId: request.organizationId,
          directoryId: user.directoryId,
          action: "hold.place",
          targetType: "user",
          targetId: user.id,
          before: { held: false },
          after: { held: true, holdId: hold.id, reason },
          requestId,
          at: now,
        }),
      );
      runSync(
        tx,
        enqueueJob({
          organizationId: request.organizationId,
          directoryId: user.directoryId,
          kind: "user",
          subjectId: user.id,
          lane: Lane.deprovision,
          now,
        }),
      );
      return hold;
    },
    { behavior: "immediate" },
  );
}

/**
 * Releases every active hold on a user; the reconcile (provision lane) then restores whatever the IdP
 * says: access again if the IdP has the user active, still blocked if it does not.
 */
export function releaseHold(db: Db, request: HoldRequest & { note?: string }, change: Change): HoldRow[] {
  const { actor, requestId, at: now } = change;
  const note = request.note?.trim() || null;
  if (note !== null && note.length > 500) throw invalidValue("reason must be at most 500 characters");
  return db.transaction(
    (tx) => {
      const user = userOfOrganization(tx, request.organizationId, request.userId);
      const active = activeHoldsOf(tx, request.organizationId, user.id);
      if (active.length === 0) throw conflict(`user "${user.id}" is not blocked`);
      const released = active.map((h) =>
        tx
          .update(holds)
          .set({ releasedBy: actorName(actor), releasedAt: now })
          .where(eq(holds.id, h.id))
          .returning()
          .get(),
      );
      runSync(
        tx,
        recordAudit({
          actor,
          organizationId: request.organizationId,
          directoryId: user.directoryId,
          action: "hold.release",
          targetType: "user",
          targetId: user.id,
          before: { held: true, holds: active.map((h) => ({ holdId: h.id, reason: h.reason, placedBy: h.placedBy })) },
          after: { held: false, ...(note ? { reason: note } : {}) },
          requestId,
          at: now,
        }),
      );
      runSync(
        tx,
        enqueueJob({
          organizationId: request.organizationId,
          directoryId: user.directoryId,
          kind: "user",
          subjectId: user.id,
          lane: Lane.provision,
          now,
        }),
      );
      return released;
    },
    { behavior: "immediate" },
  );
}

/** Every hold (active and released) on users of an organization, in the order placed; optionally one user's. */
export function listHolds(db: DbOrTx, organizationId: string, userId?: string): HoldRow[] {
  return db
    .select()
    .from(holds)
    .where(and(eq(holds.organizationId, organizationId), userId ? eq(holds.userId, userId) : undefined))
    .orderBy(asc(holds.placedAt))
    .all();
}
