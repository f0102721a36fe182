import { dialect, type StoreOp } from "../directory/store-op.js";
import type { WriteQueue } from "../directory/write-queue.js";
import type { StoreUnit } from "../directory/sql.js";
import { BridgeError, invalidFilter, rateLimited } from "../errors.js";
import type { FilterNode } from "./filter/ast.js";
import { resolveAttribute, type ResourceSchema } from "./schema.js";

/**
 * What a list or search will cost before it runs, and who may spend how much.
 *
 * better-sqlite3 runs each statement to completion on the one JavaScript thread and exposes neither
 * sqlite3_interrupt nor a progress handler, so a slow query cannot be cancelled once started; for
 * its whole duration every other tenant and every login waits. Work is therefore bounded before it
 * starts: a filter is priced in units, one unit being one plain column comparison on one stored row
 * (about 0.27 µs measured on the reference machine; a JSON attribute costs 14, a folded text 10, a
 * multi-valued attribute 40), and
 * - a request dearer than maxUnitsPerRequest is refused with 400 invalidFilter "too complex for a
 *   directory of this size", naming the attributes that are indexed (so the client knows what to
 *   filter on instead);
 * - each directory draws from its own budget of unitsPerSecond (token bucket, burst
 *   burstUnits); when it is spent, 429 with Retry-After, so one tenant's affordable but expensive
 *   queries sent back to back cannot take more than a small share of the process.
 *
 * What IdPs filter on is indexed and costs nearly nothing: userName, externalId, id, emails.value,
 * meta.created/lastModified (Users); displayName, externalId, id, members.value, meta (Groups), with
 * eq, sw and range operators. Everything else (co, ew, ne, pr, not, unindexed or extension
 * attributes, Users' displayName) is a scan of the directory: priced at the directory's size.
 */
export const costLimits = {
  /**
   * About 40 ms of SQLite work on the reference machine: `userName co "x"` on 50,000 users, a JSON
   * attribute on 5,000. Bigger directories must filter on an indexed attribute.
   */
  maxUnitsPerRequest: 150_000,
  /** Sustained units per directory per second (about 4% of one core). */
  unitsPerSecond: 150_000,
  /** A directory may spend this much at once after being idle (two of the dearest requests). */
  burstUnits: 300_000,
} as const;

/** The indexed attributes, as named in the "too complex" error. */
const indexedNames: Record<ResourceSchema["resourceType"], string> = {
  User: "userName, externalId, id, emails.value, meta.created, meta.lastModified",
  Group: "displayName, externalId, id, members.value, meta.created, meta.lastModified",
};

/** Rows an index seek is assumed to yield: a page. */
const seekRows = 100;

type Seekable = "eq" | "range";

/** Indexed attributes and the operators their index serves, per resource type (lower-case paths). */
const indexed: Record<ResourceSchema["resourceType"], Record<string, Seekable>> = {
  User: {
    id: "eq",
    username: "range",
    externalid: "range",
    "emails.value": "range",
    "meta.created": "range",
    "meta.lastmodified": "range",
  },
  Group: {
    id: "eq",
    displayname: "range",
    externalid: "range",
    "members.value": "eq",
    "meta.created": "range",
    "meta.lastmodified": "range",
  },
};

/**
 * Per-row weight of one term by how SQL evaluates it (targets.ts), measured on 100,000 users: a
 * column 1, scim_fold() over a column 10 (a call into JavaScript per row), json_extract 14, a
 * multi-valued attribute (a subquery or json_each per row) 40.
 */
function termWeight(rs: ResourceSchema, path: string): number {
  const resolved = resolveAttribute(rs, path);
  if (!resolved) return 1; // unknown: a constant
  if (resolved.schema.extension) return 14;
  if (resolved.attribute.multiValued) return 40;
  const name = resolved.attribute.name;
  if (
    ["id", "userName", "externalId", "active", "meta"].includes(name) ||
    (rs.resourceType === "Group" && name === "displayName")
  )
    return 1;
  if (name === "displayName") return 10;
  return 14;
}

function seekable(rs: ResourceSchema, path: string, op: string): boolean {
  const resolved = resolveAttribute(rs, path);
  if (!resolved) return false;
  const key = (
    resolved.sub
      ? `${resolved.attribute.name}.${resolved.sub.name}`
      : resolved.attribute.multiValued
        ? `${resolved.attribute.name}.value`
        : resolved.attribute.name
  ).toLowerCase();
  const kind = resolved.schema.extension ? undefined : indexed[rs.resourceType][key];
  if (kind === undefined) return false;
  return op === "eq" || (kind === "range" && (op === "sw" || op === "gt" || op === "ge" || op === "lt" || op === "le"));
}

interface Estimate {
  /** An index narrows the rows before the rest is evaluated. */
  selective: boolean;
  /** Units per row examined. */
  weight: number;
  /** Attribute paths that forced a scan, for the error message. */
  scans: Set<string>;
}

function estimate(rs: ResourceSchema, node: FilterNode, prefix = ""): Estimate {
  switch (node.kind) {
    case "and": {
      const l = estimate(rs, node.left, prefix);
      const r = estimate(rs, node.right, prefix);
      return {
        selective: l.selective || r.selective,
        weight: l.weight + r.weight,
        scans: l.selective || r.selective ? new Set() : new Set([...l.scans, ...r.scans]),
      };
    }
    case "or": {
      // SQLite serves an OR from indexes only when every branch can use one.
      const l = estimate(rs, node.left, prefix);
      const r = estimate(rs, node.right, prefix);
      return {
        selective: l.selective && r.selective,
        weight: l.weight + r.weight,
        scans: new Set([...l.scans, ...r.scans]),
      };
    }
    case "not": {
      const e = estimate(rs, node.expr, prefix);
      return { selective: false, weight: e.weight, scans: e.selective ? new Set(["not (…)"]) : e.scans };
    }
    case "valuePath": {
      const inner = estimate(rs, node.filter, `${node.path}.`);
      return { selective: inner.selective, weight: Math.max(inner.weight, 40), scans: inner.scans };
    }
    case "present":
    case "compare": {
      const path = prefix + node.path;
      const op = node.kind === "present" ? "pr" : node.op;
      const selective = node.kind === "compare" && node.value !== null && seekable(rs, path, op);
      return { selective, weight: termWeight(rs, path), scans: selective ? new Set() : new Set([path]) };
    }
  }
}

const sortIndexed: Record<ResourceSchema["resourceType"], Set<string>> = {
  User: new Set(["id", "username", "externalid", "meta.created", "meta.lastmodified"]),
  Group: new Set(["id", "displayname", "externalid", "meta.created", "meta.lastmodified"]),
};

export interface QueryShape {
  filter?: FilterNode;
  sortBy?: string;
  /** Live resources of this type in the directory (the maintained count). */
  rows: number;
}

/** Units a list or search will cost: the count and the page each evaluate the filter. */
export function queryCost(rs: ResourceSchema, shape: QueryShape): { units: number; scans: string[] } {
  const e = shape.filter ? estimate(rs, shape.filter) : { selective: true, weight: 0, scans: new Set<string>() };
  const examined = e.selective ? Math.min(shape.rows, seekRows) : shape.rows;
  let units = shape.filter ? 2 * examined * e.weight : 0;
  if (shape.sortBy && !sortIndexed[rs.resourceType].has(shape.sortBy.toLowerCase())) {
    // Every matching row is read, its key computed and ordered (all rows unless an index narrows them).
    units += (shape.filter && e.selective ? examined : shape.rows) * (termWeight(rs, shape.sortBy) + 4);
  }
  return { units: Math.ceil(units), scans: [...e.scans] };
}

interface Bucket {
  units: number;
  updatedAt: number;
}

export interface QueryBudgetOptions {
  maxUnitsPerRequest?: number;
  unitsPerSecond?: number;
  burstUnits?: number;
  now?: () => number;
  maxKeys?: number;
}

/** Per-directory work budgets for reads (see the module comment). */
export class QueryBudget {
  private readonly buckets = new Map<string, Bucket>();
  private readonly maxPerRequest: number;
  private readonly rate: number;
  private readonly burst: number;
  private readonly now: () => number;
  private readonly maxKeys: number;

  constructor(options: QueryBudgetOptions = {}) {
    this.maxPerRequest = options.maxUnitsPerRequest ?? costLimits.maxUnitsPerRequest;
    this.rate = options.unitsPerSecond ?? costLimits.unitsPerSecond;
    this.burst = options.burstUnits ?? costLimits.burstUnits;
    this.now = options.now ?? Date.now;
    this.maxKeys = options.maxKeys ?? 10_000;
  }

  /** Refuses the query (400 too complex, or 429 budget spent) or takes its cost from the directory's budget. */
  charge(directoryId: string, rs: ResourceSchema, shape: QueryShape): void {
    const { units, scans } = queryCost(rs, shape);
    if (units > this.maxPerRequest) {
      const named =
        scans.length > 0
          ? `; it scans every ${rs.resourceType.toLowerCase()} for ${scans
              .slice(0, 5)
              .map((s) => `"${s}"`)
              .join(", ")}`
          : "";
      const fast = indexedNames[rs.resourceType];
      throw invalidFilter(
        `filter or sort too complex for a directory of ${shape.rows} ${rs.resourceType.toLowerCase()}s${named}. Combine it with "and" and an indexed term (eq or sw on ${fast}), or use fewer terms`,
      );
    }
    if (units < 1000) return; // indexed queries: never metered
    const t = this.now();
    const bucket = this.buckets.get(directoryId) ?? { units: this.burst, updatedAt: t };
    bucket.units = Math.min(this.burst, bucket.units + ((t - bucket.updatedAt) / 1000) * this.rate);
    bucket.updatedAt = t;
    this.buckets.delete(directoryId);
    this.buckets.set(directoryId, bucket);
    if (this.buckets.size > this.maxKeys) this.buckets.delete(this.buckets.keys().next().value!);
    if (bucket.units < units) {
      const retryAfter = Math.max(1, Math.ceil((units - bucket.units) / this.rate));
      throw rateLimited(
        `this directory's budget for expensive filters and sorts is spent; retry after ${retryAfter} s, or filter on an indexed attribute`,
        retryAfter,
      );
    }
    bucket.units -= units;
  }
}

/**
 * Event-loop time one request took, in milliseconds: the sum of the elapsed times of the synchronous
 * stretches that run its code (authentication and limits, the body's parse and the route, its write
 * inside the group commit, the response's send). The route code and better-sqlite3 run on the one
 * JavaScript thread, so this is exactly what every other tenant's request and every login waited for
 * on its account. Elapsed time rather than CPU time: the process's CPU clock also counts the read
 * pool's threads working meanwhile (so it charged one directory for another's reads), and reading it
 * is a system call, several per request. The HTTP layer opens a meter per request
 * (src/http/rate-limit.ts) and charges it to the directory; the shared commit and the HTTP parser are
 * not counted.
 */
export interface LoopMeter {
  ms: number;
  /** performance.now() after which the request is out of its time budget. */
  deadline: number;
  /** That budget, ms (for the error message). */
  budgetMs: number;
}

let running: LoopMeter | undefined;

/** The meter of the stretch running now (undefined outside a request's stretch). */
export const runningMeter = (): LoopMeter | undefined => running;

/** Milliseconds since `since` (a performance.now() reading). */
export const msSince = (since: number): number => performance.now() - since;

/** Runs `fn` as one of `meter`'s stretches; time spent in a nested stretch counts for the inner meter only. */
export function metered<T>(meter: LoopMeter | undefined, fn: () => T): T {
  if (!meter) return fn();
  const outer = running;
  running = meter;
  const t0 = performance.now();
  try {
    return fn();
  } finally {
    const dt = msSince(t0);
    meter.ms += dt;
    if (outer) outer.ms -= dt;
    running = outer;
  }
}

/** 503 with Retry-After: the request ran out of its time budget and did nothing (RFC 9110 §15.6.4). */
export const outOfTime = (budgetMs: number): BridgeError =>
  new BridgeError(
    "unavailable",
    `the request did not complete within its ${budgetMs / 1000} s budget and was not applied; retry later`,
    { retryAfter: 1 },
  );

/**
 * The write queue as SCIM routes use it: each write is timed on its request's meter (the one running
 * when the route called `run`), and a write whose request is past its deadline, before or after
 * running, throws 503 instead, so its savepoint (or transaction) rolls back and nothing of it is stored.
 */
export function meteredWrites(writes: WriteQueue): WriteQueue {
  return {
    run<T>(op: StoreUnit<T>): Promise<T> {
      const meter = running;
      if (!meter) return writes.run(op);
      // A factory stays one, so that a retried write is metered (and its deadline checked) again.
      return writes.run(typeof op === "function" ? () => meteredOp(meter, op()) : meteredOp(meter, op));
    },
  };
}

function* meteredOp<T>(meter: LoopMeter, op: StoreOp<T>): StoreOp<T> {
  if (performance.now() > meter.deadline) throw outOfTime(meter.budgetMs);
  let value: T;
  if ((yield* dialect()) === "sqlite") {
    // On SQLite the op runs start to end inside the group commit's one synchronous call: its elapsed
    // time is event-loop time, one of the meter's stretches (see metered). On PostgreSQL it spans
    // round trips during which the event loop serves others, so only the deadline applies.
    const outer = running;
    running = meter;
    const t0 = performance.now();
    try {
      value = yield* op;
    } finally {
      const dt = msSince(t0);
      meter.ms += dt;
      if (outer) outer.ms -= dt;
      running = outer;
    }
  } else value = yield* op;
  if (performance.now() > meter.deadline) throw outOfTime(meter.budgetMs);
  return value;
}
