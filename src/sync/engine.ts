import type { ManagementClient } from "auth0";
import { Auth0Gateway, type CallObserver, type OutagePolicy, type RevokeResult } from "../auth0/gateway.js";
import {
  RateLimiter,
  rateProfile,
  type AsyncSharedBudget,
  type Auth0Plan,
  type SharedBudget,
} from "../auth0/rate-limiter.js";
import { PostgresBudget } from "../directory/pg/budget.js";
import type pg from "pg";
import { boundedAdvisoryLocks } from "../directory/pg/locks.js";
import { postgresPoolOf, sqliteDbOf, type SqlStore } from "../directory/sql.js";
import { pgJobQueue, pgJobWakeups } from "./pg-job-queue.js";
import { conflict } from "../errors.js";
import type { Logger } from "pino";
import { createDriftReconciler } from "./drift.js";
import { auth0FailureSink } from "./failures.js";
import { createGroupReconciler, createOrganizationReconciler } from "./fan-out.js";
import type { InvitationDelivery } from "./invitations.js";
import { MembershipBatcher } from "./membership-batcher.js";
import { Lane } from "../directory/outbox.js";
import { DatabaseBudget } from "./rate-state.js";
import { createUserReconciler, type SyncDeps } from "./reconcile-user.js";
import { backoffMs, sqliteJobQueue, Worker, type BackoffPolicy, type JobQueue, type WorkerEvents } from "./worker.js";
import { linkedAuth0UserId } from "./inputs.js";

export interface SyncEngineOptions {
  /** The bookkeeping store: job queue, applied state, rate budget. */
  store: SqlStore;
  /** The job queue; default the store's: the SQLite queue, or on PostgreSQL pgJobQueue on its pool. */
  queue?: JobQueue;
  /** The tenant's shared rate budget; default the store's: DatabaseBudget, or on PostgreSQL PostgresBudget. */
  budget?: SharedBudget | AsyncSharedBudget;
  client: ManagementClient;
  plan: Auth0Plan;
  /** AUTH0_RATE_SCALE: multiplies the plan's refill rates (raised limits, or a time-compressed emulator). */
  rateScale?: number;
  /**
   * The Auth0 tenant (its domain): rate-limit buckets are kept in the database under this key and
   * shared with every other process calling the same tenant. Default "default".
   */
  tenant?: string;
  observer?: CallObserver;
  events?: WorkerEvents;
  concurrency?: number;
  pollMs?: number;
  leaseMs?: number;
  /** Job retry backoff and Auth0 outage detection (defaults: defaultBackoff, defaultOutagePolicy). */
  backoff?: BackoffPolicy;
  outage?: OutagePolicy;
  invitations?: InvitationDelivery;
  /** AUTH0_INVITATION_CLIENT_ID: the application invitation tickets return to. */
  invitationClientId?: string;
  /** Where repeated Auth0 failures are logged (at warn, with organization and error code). */
  log?: Logger;
  /** Counts each reconcile that failed on an Auth0 error (the /metrics counter). */
  onAuth0Failure?: (organizationId: string, errorCode: string) => void;
}

export interface SyncEngine {
  limiter: RateLimiter;
  gateway: Auth0Gateway;
  worker: Worker;
  deps: SyncDeps;
  /** Revokes a user's sessions and refresh tokens now (customer-admin force sign-out). */
  signOut(userId: string): Promise<RevokeResult>;
}

/** Wires the sync engine: limiter → gateway → batcher → reconcilers → worker. */
/**
 * The gateway's cross-instance lock on PostgreSQL: an advisory lock per Auth0 list, held by at most
 * half the pool's connections at once, since a holder's Auth0 calls need another connection for the
 * shared rate budget (and SCIM requests and logins share the pool).
 */
const listLock = (pool: pg.Pool) => {
  const locks = boundedAdvisoryLocks(pool, Math.max(1, Math.floor((pool.options.max ?? 10) / 2)));
  return <T>(key: string, fn: () => Promise<T>): Promise<T> => locks(key, () => fn());
};

export function createSyncEngine(options: SyncEngineOptions): SyncEngine {
  const tenant = options.tenant ?? "default";
  // On PostgreSQL several instances share the database: the queue's claims, the rate budget and
  // the gateway's list rewrites coordinate through the pool (their own short transactions and locks).
  const pool = postgresPoolOf(options.store);
  const limiter = new RateLimiter(rateProfile(options.plan), {
    rateScale: options.rateScale ?? 1,
    // The limiter's synchronous budget updates its local view within the call, which only SQLite's
    // synchronous connection can answer; on PostgreSQL the asynchronous budget (claims) takes its place.
    shared:
      options.budget ??
      (pool
        ? new PostgresBudget(pool, tenant)
        : new DatabaseBudget(sqliteDbOf(options.store, "the shared rate budget"), tenant)),
  });
  const gateway = new Auth0Gateway(options.client, limiter, options.observer, {
    ...(options.invitationClientId ? { invitationClientId: options.invitationClientId } : {}),
    ...(options.outage ? { outage: options.outage } : {}),
    ...(pool ? { crossInstanceLock: listLock(pool) } : {}),
  });
  const batcher = new MembershipBatcher(gateway);
  const deps: SyncDeps = {
    store: options.store,
    gateway,
    batcher,
    failures: auth0FailureSink(options.log, options.onAuth0Failure),
    ...(options.invitations ? { invitations: options.invitations } : {}),
  };
  const worker = new Worker({
    queue:
      options.queue ??
      (pool
        ? pgJobQueue(pool, options.store, {
            backoffMs: (attempt, lane) => backoffMs(attempt, lane, Math.random, options.backoff),
            ...(options.events?.onError ? { onError: options.events.onError } : {}),
          })
        : sqliteJobQueue(options.store)),
    ...(pool ? { wakeups: pgJobWakeups(pool, options.events?.onError) } : {}),
    handlers: {
      user: createUserReconciler(deps),
      group: createGroupReconciler(deps),
      organization: createOrganizationReconciler(deps),
      drift: createDriftReconciler(deps),
    },
    ...(options.concurrency === undefined ? {} : { concurrency: options.concurrency }),
    ...(options.pollMs === undefined ? {} : { pollMs: options.pollMs }),
    ...(options.leaseMs === undefined ? {} : { leaseMs: options.leaseMs }),
    ...(options.backoff ? { backoff: options.backoff } : {}),
    ...(options.events ? { events: options.events } : {}),
    lift: (lane) => limiter.lift(lane),
  });
  return {
    limiter,
    gateway,
    worker,
    deps,
    async signOut(userId) {
      const auth0UserId = await options.store.read(linkedAuth0UserId(userId));
      if (!auth0UserId) throw conflict("the user is not linked to an Auth0 user yet, so it has no sessions to end");
      return gateway.revokeAccess(auth0UserId, Lane.deprovision);
    },
  };
}
