import { and, eq, inArray } from "drizzle-orm";
import { rateBuckets } from "../../db/schema.js";
import type { BucketState, BucketStore } from "../auth0/rate-limiter.js";
import type { Db } from "../directory/database.js";

/**
 * Rate-limit bucket state in the database (table rate_buckets), keyed by tenant, so that every
 * process calling one Auth0 tenant spends one budget: a `scim-bridge reconcile` beside a running
 * `serve` takes its tokens from the same buckets, and both keep the deprovisioning reserve.
 * Each limiter pass is one short IMMEDIATE transaction (a few rows).
 */
export class DatabaseBucketStore implements BucketStore {
  constructor(private readonly db: Db, private readonly tenant: string) {}

  transact<T>(names: readonly string[], init: (name: string) => BucketState, fn: (states: Map<string, BucketState>) => T): T {
    return this.db.transaction((tx) => {
      const rows = names.length === 0 ? [] : tx.select().from(rateBuckets).where(and(eq(rateBuckets.tenant, this.tenant), inArray(rateBuckets.name, [...names]))).all();
      const found = new Map(rows.map((r) => [r.name, r]));
      const states = new Map<string, BucketState>();
      const before = new Map<string, string>();
      for (const name of names) {
        const r = found.get(name);
        const s: BucketState = r ? { capacity: r.capacity, tokens: r.tokens, updatedAt: r.updatedAt, pausedUntil: r.pausedUntil } : init(name);
        states.set(name, s);
        before.set(name, r ? JSON.stringify(s) : "");
      }
      const result = fn(states);
      for (const [name, s] of states) {
        if (before.get(name) === JSON.stringify(s)) continue;
        tx.insert(rateBuckets)
          .values({ tenant: this.tenant, name, ...s })
          .onConflictDoUpdate({ target: [rateBuckets.tenant, rateBuckets.name], set: { capacity: s.capacity, tokens: s.tokens, updatedAt: s.updatedAt, pausedUntil: s.pausedUntil } })
          .run();
      }
      return result;
    });
  }
}
