import type { rateBuckets } from "../../db/schema.js";
import type { BucketDelta, BucketSpec, BucketState, SharedBudget } from "../auth0/rate-limiter.js";
import type { Db } from "../directory/database.js";
import { exec, forUpdate, many, writeSync, type StoreOp } from "../directory/store-op.js";

export type BudgetRow = typeof rateBuckets.$inferSelect;

const bucketColumns = `tenant, name, capacity, tokens, updated_at AS "updatedAt", paused_until AS "pausedUntil"`;

/**
 * One sync of a process's spending with the tenant's shared budget: refills every bucket to `now`,
 * takes the process's spending since its last sync off, and gives the buckets' states. The rows are
 * read and written back, so on PostgreSQL they are locked (SELECT … FOR UPDATE) until the commit;
 * SQLite's IMMEDIATE transaction (writeSync) holds the write lock already.
 */
export function* syncBudget(
  tenant: string,
  now: number,
  specs: ReadonlyMap<string, BucketSpec>,
  deltas: ReadonlyMap<string, BucketDelta>,
): StoreOp<Map<string, BucketState>> {
  const rows = new Map(
    (yield* many<BudgetRow>(`SELECT ${bucketColumns} FROM rate_buckets WHERE tenant = ? ${yield* forUpdate()}`, [
      tenant,
    ])).map((r) => [r.name, r]),
  );
  const out = new Map<string, BucketState>();
  for (const [name, spec] of specs) {
    const row = rows.get(name);
    const s: BucketState = row
      ? { capacity: row.capacity, tokens: row.tokens, updatedAt: row.updatedAt, pausedUntil: row.pausedUntil }
      : { capacity: spec.capacity, tokens: spec.capacity, updatedAt: now, pausedUntil: 0 };
    if (now > s.updatedAt) {
      s.tokens = Math.min(s.capacity, s.tokens + ((now - s.updatedAt) / 1000) * spec.refillPerSecond);
      s.updatedAt = now;
    }
    const d = deltas.get(name);
    if (d) {
      // Tokens may go below zero when processes overspent between syncs: the debt is repaid by refill.
      s.tokens -= d.spent;
      if (d.remaining !== undefined) s.tokens = Math.min(s.tokens, d.remaining);
      s.pausedUntil = Math.max(s.pausedUntil, d.pausedUntil);
    }
    out.set(name, s);
    if (!row || d?.spent || d?.remaining !== undefined || (d && d.pausedUntil > row.pausedUntil)) {
      yield* exec(
        `INSERT INTO rate_buckets (tenant, name, capacity, tokens, updated_at, paused_until)
         VALUES (?, ?, ?, ?, ?, ?)
         ON CONFLICT (tenant, name) DO UPDATE SET capacity = excluded.capacity, tokens = excluded.tokens,
           updated_at = excluded.updated_at, paused_until = excluded.paused_until`,
        [tenant, name, s.capacity, s.tokens, s.updatedAt, s.pausedUntil],
      );
    }
  }
  return out;
}

/**
 * The tenant's rate-limit budget in the database (table rate_buckets, keyed by tenant), so that
 * every process calling one Auth0 tenant spends one budget: a `scim-bridge reconcile` beside a
 * running `serve` takes its tokens from the same buckets, and both keep the deprovisioning reserve.
 * Each process syncs a few times a second in one short transaction (syncBudget).
 */
export class DatabaseBudget implements SharedBudget {
  constructor(
    private readonly db: Db,
    private readonly tenant: string,
  ) {}

  sync(
    now: number,
    specs: ReadonlyMap<string, BucketSpec>,
    deltas: ReadonlyMap<string, BucketDelta>,
  ): Map<string, BucketState> {
    return writeSync(this.db, syncBudget(this.tenant, now, specs, deltas));
  }
}

/** Rows of one tenant, for tests and tools. */
export function* budgetRows(tenant: string): StoreOp<BudgetRow[]> {
  return yield* many<BudgetRow>(`SELECT ${bucketColumns} FROM rate_buckets WHERE tenant = ? ORDER BY name`, [tenant]);
}
