import type { Logger } from "pino";
import { enqueueJob, Lane } from "../directory/outbox.js";
import { takeDueDriftScan } from "../directory/settings.js";
import type { SqlStore } from "../directory/sql.js";
import { many, type StoreOp } from "../directory/store-op.js";

/** How often each instance looks whether the deployment's next scan is due. */
const checkEveryMs = 60_000;

/**
 * Enqueues a background drift scan of every organization every `hours` (0: never). The due time
 * lives in the database (takeDueDriftScan), not in a timer's phase: a restart does not put the next
 * scan off by a whole period (with daily deploys a 24-hour timer would never fire), and of several
 * instances on one database exactly one enqueues each scan. Jobs merge, so a slow scan is never
 * doubled, and the scans share the Auth0 budget behind provisioning. Returns a function that stops
 * the schedule.
 */
export function scheduleDriftScans(
  store: SqlStore,
  hours: number,
  log: Logger,
  options: { checkEveryMs?: number; now?: () => number } = {},
): () => void {
  if (hours <= 0) return () => undefined;
  const now = options.now ?? Date.now;
  const check = async (): Promise<void> => {
    try {
      const enqueued = await enqueueDueDriftScans(store, now(), hours * 3_600_000);
      if (enqueued !== undefined) log.info({ organizations: enqueued }, "drift scans enqueued");
    } catch (err) {
      // A busy database: the next check tries again; the due time has not moved.
      log.warn({ err }, "drift scan schedule: database write failed; retrying at the next check");
    }
  };
  void check();
  const timer = setInterval(() => void check(), Math.min(options.checkEveryMs ?? checkEveryMs, hours * 3_600_000));
  timer.unref();
  return () => clearInterval(timer);
}

/** One check: enqueues a drift scan of every organization if one is due; the number enqueued, or undefined. */
export function enqueueDueDriftScans(store: SqlStore, now: number, periodMs: number): Promise<number | undefined> {
  return store.write(dueDriftScans(now, periodMs));
}

/** Takes the due scan and enqueues it, in one write: of several instances exactly one enqueues it. */
function* dueDriftScans(now: number, periodMs: number): StoreOp<number | undefined> {
  if (!(yield* takeDueDriftScan(now, periodMs))) return undefined;
  return yield* enqueueDriftScans(now);
}

/** A background drift scan of every organization; the number of organizations. */
export function* enqueueDriftScans(now: number): StoreOp<number> {
  const ids = yield* many<{ id: string }>("SELECT id FROM organizations ORDER BY id");
  for (const { id } of ids)
    yield* enqueueJob({ organizationId: id, kind: "drift", subjectId: id, lane: Lane.background, now });
  return ids.length;
}
