import type { Router } from "express";
import type { Db } from "../directory/database.js";
import { registerFold } from "../directory/fold.js";
import { createWriteQueue } from "../directory/write-queue.js";
import { QueryBudget, meteredWrites } from "./cost.js";
import { discoveryRoutes } from "./discovery.js";
import { groupRoutes } from "./groups.js";
import { PageAnchors } from "./paging.js";
import { chargeRead, inlineReader, runsInline, type ReadRequest, type ReadResult, type Reader } from "./reads.js";
import { rootSearchRoutes } from "./search.js";
import { userRoutes } from "./users.js";

/** Where reads run when not on this thread: the read pool (./read-pool.ts). */
export interface ReadRunner {
  /** `heavy`: a scan (see heavyReadUnits in ./reads.ts). */
  run(request: ReadRequest, heavy: boolean): Promise<ReadResult>;
}

/**
 * Every SCIM endpoint of one directory, mounted under `/scim/v2/:directoryId` after authentication.
 * Resource names match case-insensitively (Express's default; the Microsoft suite GETs /users).
 * With `pool`, reads run in its worker threads, except those bounded by one index lookup; all are
 * priced here, against one budget per directory (docs/design.md, "Concurrency").
 */
export function scimRoutes(db: Db, budget: QueryBudget = new QueryBudget(), pool?: ReadRunner): Router[] {
  // Filters and sorts on caseExact=false attributes call scim_fold (Unicode case folding) in SQL.
  registerFold((db as Db & { $client: Parameters<typeof registerFold>[0] }).$client);
  // One group-commit queue for every SCIM write of this app (src/directory/write-queue.ts), each
  // write timed on its request's meter and refused past its request's deadline (./cost.ts).
  const writes = meteredWrites(createWriteQueue(db));
  // Page anchors of this app's database only (see ./paging.ts); each pool worker keeps its own.
  const inline = inlineReader(db, budget, new PageAnchors());
  // Reads bounded by one index lookup stay here; the rest go to the pool (./reads.ts, runsInline).
  const read: Reader = pool
    ? (request) => (runsInline(request) ? inline(request) : pool.run(request, chargeRead(db, request, budget).heavy))
    : inline;
  // Mounted side by side rather than under one more router (each level re-parses the URL and re-merges
  // params), the busiest first: their paths do not overlap, so the order changes only what a request
  // walks past before its route.
  return [userRoutes(db, writes, read), groupRoutes(db, writes, read), rootSearchRoutes(read), discoveryRoutes()];
}
