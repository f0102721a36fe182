import type { Logger } from "pino";
import { organizations } from "../../db/schema.js";
import type { Db } from "../directory/database.js";
import { enqueueJob, Lane } from "../directory/outbox.js";

/**
 * Enqueues a background drift scan of every organization every `hours` (0: never). Jobs merge, so
 * a slow scan is never doubled, and the scans share the Auth0 budget behind provisioning.
 * Returns a function that stops the schedule.
 */
export function scheduleDriftScans(db: Db, hours: number, log: Logger): () => void {
  if (hours <= 0) return () => undefined;
  const timer = setInterval(() => {
    const orgs = db.select({ id: organizations.id }).from(organizations).all();
    db.transaction((tx) => {
      for (const o of orgs)
        enqueueJob(tx, { organizationId: o.id, kind: "drift", subjectId: o.id, lane: Lane.background });
    });
    log.info({ organizations: orgs.length }, "drift scans enqueued");
  }, hours * 3_600_000);
  timer.unref();
  return () => clearInterval(timer);
}
