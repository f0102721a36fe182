import type { holds } from "../../db/schema.js";
import { conflict, invalidValue, notFound } from "../errors.js";
import { enqueueJob, Lane } from "./outbox.js";
import { recordAudit, type Actor } from "./audit.js";
import { newResourceId } from "./ids.js";
import type { Change } from "./write-context.js";
import { forUpdate, jsonTextList, many, one, type StoreOp } from "./store-op.js";

/**
 * Holds (docs/design.md, "Concepts"): a block placed by a customer admin or an operator that wins over the IdP until
 * someone releases it; a later `active: true` does not undo it. desired() treats an active hold as
 * deprovisioning, so placing or releasing one is a reconcile job like any IdP change. Each is ONE
 * op, run as one transaction: hold row, audit entry and job commit together or not at all.
 */
export type HoldRow = typeof holds.$inferSelect;

export interface HoldRequest {
  organizationId: string;
  userId: string;
}

const actorName = (a: Actor): string => `${a.type}:${a.id}`;

const holdColumns = `id, organization_id AS "organizationId", directory_id AS "directoryId", user_id AS "userId", reason,
  placed_by AS "placedBy", placed_at AS "placedAt", released_by AS "releasedBy", released_at AS "releasedAt"`;

/** A live user of the organization (any of its directories), or 404: ids of other tenants do not exist here. */
function* userOfOrganization(organizationId: string, userId: string): StoreOp<{ id: string; directoryId: string }> {
  const user = yield* one<{ id: string; directoryId: string }>(
    `SELECT u.id, u.directory_id AS "directoryId" FROM users u JOIN directories d ON d.id = u.directory_id
     WHERE u.id = ? AND d.organization_id = ? AND u.deleted_at IS NULL`,
    [userId, organizationId],
  );
  if (!user) throw notFound(`user "${userId}" not found`);
  return user;
}

/**
 * The user's active holds, oldest first. `lock` (for a read that decides a write) takes them FOR
 * UPDATE on PostgreSQL, so two releases of one hold do not both go ahead.
 */
export function* activeHoldsOf(organizationId: string, userId: string, lock = false): StoreOp<HoldRow[]> {
  return yield* many<HoldRow>(
    `SELECT ${holdColumns} FROM holds WHERE organization_id = ? AND user_id = ? AND released_at IS NULL
     ORDER BY placed_at, id ${lock ? yield* forUpdate() : ""}`,
    [organizationId, userId],
  );
}

/**
 * Serializes hold changes of one user on PostgreSQL: the user row is locked before the holds are
 * read, so two concurrent "place" calls cannot both see none and both insert one (on SQLite, write
 * transactions already run one at a time).
 */
function* lockUser(userId: string): StoreOp<void> {
  const lock = yield* forUpdate();
  if (lock) yield* one(`SELECT id FROM users WHERE id = ? ${lock}`, [userId]);
}

/** Blocks a user now: the reconcile runs in the deprovision lane (docs/design.md, invariant 3). */
export function* placeHold(request: HoldRequest & { reason: string }, change: Change): StoreOp<HoldRow> {
  const { actor, requestId, at: now } = change;
  const reason = request.reason.trim();
  if (reason.length === 0 || reason.length > 500) throw invalidValue("reason must be 1 to 500 characters");
  const user = yield* userOfOrganization(request.organizationId, request.userId);
  yield* lockUser(user.id);
  const existing = (yield* activeHoldsOf(request.organizationId, user.id))[0];
  if (existing) throw conflict(`user "${user.id}" is already blocked (hold ${existing.id}: ${existing.reason})`);
  const hold = (yield* one<HoldRow>(
    `INSERT INTO holds (id, organization_id, directory_id, user_id, reason, placed_by, placed_at)
     VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING ${holdColumns}`,
    [newResourceId(), request.organizationId, user.directoryId, user.id, reason, actorName(actor), now],
  ))!;
  yield* recordAudit({
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
  });
  yield* enqueueJob({
    organizationId: request.organizationId,
    directoryId: user.directoryId,
    kind: "user",
    subjectId: user.id,
    lane: Lane.deprovision,
    now,
  });
  return hold;
}

/**
 * Releases every active hold on a user; the reconcile (provision lane) then restores whatever the IdP
 * says: access again if the IdP has the user active, still blocked if it does not.
 */
export function* releaseHold(request: HoldRequest & { note?: string }, change: Change): StoreOp<HoldRow[]> {
  const { actor, requestId, at: now } = change;
  const note = request.note?.trim() || null;
  if (note !== null && note.length > 500) throw invalidValue("reason must be at most 500 characters");
  const user = yield* userOfOrganization(request.organizationId, request.userId);
  yield* lockUser(user.id);
  const active = yield* activeHoldsOf(request.organizationId, user.id, true);
  if (active.length === 0) throw conflict(`user "${user.id}" is not blocked`);
  const released: HoldRow[] = [];
  for (const h of active) {
    released.push(
      (yield* one<HoldRow>(`UPDATE holds SET released_by = ?, released_at = ? WHERE id = ? RETURNING ${holdColumns}`, [
        actorName(actor),
        now,
        h.id,
      ]))!,
    );
  }
  yield* recordAudit({
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
  });
  yield* enqueueJob({
    organizationId: request.organizationId,
    directoryId: user.directoryId,
    kind: "user",
    subjectId: user.id,
    lane: Lane.provision,
    now,
  });
  return released;
}

/** Every hold (active and released) on users of an organization, in the order placed; optionally one user's. */
export function* listHolds(organizationId: string, userId?: string): StoreOp<HoldRow[]> {
  return userId === undefined
    ? yield* many<HoldRow>(`SELECT ${holdColumns} FROM holds WHERE organization_id = ? ORDER BY placed_at, id`, [
        organizationId,
      ])
    : yield* many<HoldRow>(
        `SELECT ${holdColumns} FROM holds WHERE organization_id = ? AND user_id = ? ORDER BY placed_at, id`,
        [organizationId, userId],
      );
}

/** The active holds of several users of an organization (one query for a page of users), oldest first. */
export function* activeHoldsOfUsers(organizationId: string, userIds: readonly string[]): StoreOp<HoldRow[]> {
  if (userIds.length === 0) return [];
  return yield* many<HoldRow>(
    `SELECT ${holdColumns} FROM holds WHERE organization_id = ? AND user_id IN (${yield* jsonTextList()})
     AND released_at IS NULL ORDER BY placed_at, id`,
    [organizationId, JSON.stringify(userIds)],
  );
}
