import type pg from "pg";
import { pgUnit } from "../sql.js";
import { inlineParams, later, many, type StoreOp } from "../store-op.js";

/*
 * The shapes below are the rate limiter's AsyncSharedBudget contract (src/auth0/rate-limiter.ts),
 * restated here because the store may not import the Auth0 part (docs/architecture.md); TypeScript
 * checks the two agree wherever a PostgresBudget is handed to a RateLimiter.
 */
export interface PgBucketSpec {
  name: string;
  capacity: number;
  refillPerSecond: number;
}

export interface PgBucketDelta {
  spent: number;
  remaining?: number;
  pausedUntil: number;
  returned: number;
  claim: { urgent: number; ordinary: number; reserve: number };
}

export interface PgBucketState {
  capacity: number;
  tokens: number;
  updatedAt: number;
  pausedUntil: number;
  granted: { urgent: number; ordinary: number };
}

/** The tenant's rows of `count` buckets (parameters: the tenant, then the names), in name order. */
const selectRows = (count: number): string =>
  `SELECT name, capacity, tokens, updated_at::float8 AS "updatedAt", paused_until::float8 AS "pausedUntil"
   FROM rate_buckets WHERE tenant = ? AND name IN (${Array<string>(count).fill("?").join(", ")}) ORDER BY name`;

interface Row {
  name: string;
  capacity: number;
  tokens: number;
  updatedAt: number;
  pausedUntil: number;
}

/** Refill is fractional; the epsilon keeps 1.9999999 tokens from counting as "not yet 2" (as the limiter). */
const EPSILON = 1e-9;

/**
 * One bucket's step of a sync, the arithmetic of the SQLite budget (src/sync/rate-state.ts) plus
 * the claim: refill to `now`, take back held tokens, subtract spending, lower to Auth0's remaining
 * count, extend the 429 pause, then grant the deprovision lane's claim down to an empty bucket and
 * the other lanes' down to the reserve. Nothing is granted while the bucket is paused.
 */
export function stepBucket(
  row: Row | undefined,
  spec: PgBucketSpec,
  delta: PgBucketDelta | undefined,
  now: number,
): PgBucketState {
  const s: PgBucketState = row
    ? {
        capacity: row.capacity,
        tokens: row.tokens,
        updatedAt: row.updatedAt,
        pausedUntil: row.pausedUntil,
        granted: { urgent: 0, ordinary: 0 },
      }
    : {
        capacity: spec.capacity,
        tokens: spec.capacity,
        updatedAt: now,
        pausedUntil: 0,
        granted: { urgent: 0, ordinary: 0 },
      };
  if (now > s.updatedAt) {
    s.tokens = Math.min(s.capacity, s.tokens + ((now - s.updatedAt) / 1000) * spec.refillPerSecond);
    s.updatedAt = now;
  }
  if (!delta) return s;
  if (delta.returned > 0) s.tokens = Math.min(s.capacity, s.tokens + delta.returned);
  // Tokens may go below zero when spent outside claims: the debt is repaid by refill.
  s.tokens -= delta.spent;
  if (delta.remaining !== undefined) s.tokens = Math.min(s.tokens, delta.remaining);
  s.pausedUntil = Math.max(s.pausedUntil, delta.pausedUntil);
  if (now < s.pausedUntil) return s;
  const take = (wanted: number, floor: number): number =>
    Math.max(0, Math.min(Math.floor(wanted), Math.floor(s.tokens - floor + EPSILON)));
  s.granted.urgent = take(delta.claim.urgent, 0);
  s.tokens -= s.granted.urgent;
  s.granted.ordinary = take(delta.claim.ordinary, delta.claim.reserve);
  s.tokens -= s.granted.ordinary;
  return s;
}

const changed = (d: PgBucketDelta | undefined): boolean =>
  d !== undefined &&
  (d.spent !== 0 ||
    d.returned > 0 ||
    d.remaining !== undefined ||
    d.pausedUntil > 0 ||
    d.claim.urgent > 0 ||
    d.claim.ordinary > 0);

/**
 * The tenant's Auth0 rate budget in PostgreSQL (table rate_buckets), shared by every instance behind
 * the load balancer. Each sync is one short READ COMMITTED transaction of two round trips: the tenant's
 * bucket rows are locked with SELECT … FOR UPDATE in name order (one order for every instance, so two
 * syncs never deadlock), stepped here, then written back with the COMMIT; concurrent syncs queue on
 * the row locks and each sees the rows the previous one committed. A sync that only reads locks
 * nothing and writes nothing.
 *
 * Bucket rows commit with synchronous_commit off (PostgreSQL documentation, "Asynchronous Commit"):
 * a server crash may forget the last fraction of a second of spending, which costs at worst a 429,
 * and the sync does not wait for a WAL flush while it holds the rows.
 *
 * Times are the callers' clocks (epoch ms), as with the SQLite budget: instances whose clocks differ
 * refill a little early or late, never twice, because refill only moves forward from updated_at.
 *
 * The limiter grants nothing while a sync is under way, so give the pool a connectionTimeoutMillis
 * (node-postgres waits for a free connection forever by default) and a statement_timeout: a sync
 * that fails is retried, one that hangs holds every call back.
 */
export class PostgresBudget {
  readonly asynchronous = true as const;
  constructor(
    private readonly pool: pg.Pool,
    private readonly tenant: string,
  ) {}

  async sync(
    now: number,
    specs: ReadonlyMap<string, PgBucketSpec>,
    deltas: ReadonlyMap<string, PgBucketDelta>,
  ): Promise<Map<string, PgBucketState>> {
    // One lock order for every instance, so that two syncs never deadlock.
    const names = [...specs.keys()].sort();
    const writing = names.some((n) => changed(deltas.get(n)));
    if (!writing) {
      // Nothing to take or record: one plain read, no lock, no transaction.
      const rows = await pgUnit(this.pool, undefined, many<Row>(selectRows(names.length), [this.tenant, ...names]));
      const byName = new Map(rows.map((r) => [r.name, r]));
      return new Map(names.map((n) => [n, stepBucket(byName.get(n), specs.get(n)!, undefined, now)]));
    }
    // Two round trips, the rows locked only between them: the BEGIN, the missing rows' INSERT (full,
    // as the SQLite budget creates them; rows another instance inserted are kept) and the locking
    // read go as one text; the write goes with the COMMIT (pgUnit in ../sql.ts).
    const missing = inlineParams(
      `INSERT INTO rate_buckets (tenant, name, capacity, tokens, updated_at, paused_until)
       VALUES ${names.map(() => "(?, ?, ?::float8, ?::float8, ?::bigint, 0)").join(", ")}
       ON CONFLICT (tenant, name) DO NOTHING`,
      names.flatMap((n) => [this.tenant, n, specs.get(n)!.capacity, specs.get(n)!.capacity, Math.ceil(now)]),
    );
    const tenant = this.tenant;
    return pgUnit(
      this.pool,
      `BEGIN; SET LOCAL synchronous_commit TO OFF; ${missing}`,
      (function* (): StoreOp<Map<string, PgBucketState>> {
        const rows = yield* many<Row>(`${selectRows(names.length)} FOR UPDATE`, [tenant, ...names]);
        // Only a concurrent DELETE gets here; a grant without its row would be spent twice.
        if (rows.length < names.length) throw new Error("rate_buckets rows vanished during a budget sync");
        const byName = new Map(rows.map((r) => [r.name, r]));
        const out = new Map<string, PgBucketState>();
        const updates: Row[] = [];
        for (const name of names) {
          const delta = deltas.get(name);
          const s = stepBucket(byName.get(name), specs.get(name)!, delta, now);
          out.set(name, s);
          if (changed(delta)) updates.push({ name, ...s });
        }
        if (updates.length > 0)
          yield* later(
            `UPDATE rate_buckets AS b SET capacity = u.capacity, tokens = u.tokens, updated_at = u.updated_at,
               paused_until = u.paused_until
             FROM (VALUES ${updates.map(() => "(?, ?::float8, ?::float8, ?::bigint, ?::bigint)").join(", ")})
               AS u(name, capacity, tokens, updated_at, paused_until)
             WHERE b.tenant = ? AND b.name = u.name`,
            [
              // bigint columns refuse fractions; rounding up errs towards refilling later, pausing longer.
              ...updates.flatMap((u) => [
                u.name,
                u.capacity,
                u.tokens,
                Math.ceil(u.updatedAt),
                Math.ceil(u.pausedUntil),
              ]),
              tenant,
            ],
          );
        return out;
      })(),
    );
  }
}
