import { and, eq } from "drizzle-orm";
import { rateBuckets } from "../../db/schema.js";
import type { BucketDelta, BucketSpec, BucketState, SharedBudget } from "../auth0/rate-limiter.js";
import type { Db } from "../directory/database.js";
import { prepared } from "../directory/statements.js";

/**
 * The tenant's rate-limit budget in the database (table rate_buckets, keyed by tenant), so that
 * every process calling one Auth0 tenant spends one budget: a `scim-bridge reconcile` beside a
 * running `serve` takes its tokens from the same buckets, and both keep the deprovisioning reserve.
 * Each process syncs a few times a second in one short IMMEDIATE transaction; on PostgreSQL the
 * same rows would be read with SELECT … FOR UPDATE.
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
    return this.db.transaction((tx) => {
      // A few times a second per process: cached statements rather than drizzle's builder.
      const rows = new Map(
        (
          prepared(
            tx,
            `SELECT tenant, name, capacity, tokens, updated_at AS updatedAt, paused_until AS pausedUntil
             FROM rate_buckets WHERE tenant = ?`,
          ).all(this.tenant) as (typeof rateBuckets.$inferSelect)[]
        ).map((r) => [r.name, r]),
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
          prepared(
            tx,
            `INSERT INTO rate_buckets (tenant, name, capacity, tokens, updated_at, paused_until)
             VALUES (@tenant, @name, @capacity, @tokens, @updatedAt, @pausedUntil)
             ON CONFLICT (tenant, name) DO UPDATE SET capacity = excluded.capacity, tokens = excluded.tokens,
               updated_at = excluded.updated_at, paused_until = excluded.paused_until`,
          ).run({ tenant: this.tenant, name, ...s });
        }
      }
      return out;
    });
  }
}

/** Rows of one tenant, for tests and tools. */
export function budgetRows(db: Db, tenant: string): (typeof rateBuckets.$inferSelect)[] {
  return db
    .select()
    .from(rateBuckets)
    .where(and(eq(rateBuckets.tenant, tenant)))
    .all();
}
