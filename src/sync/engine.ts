import type { ManagementClient } from "auth0";
import { eq } from "drizzle-orm";
import { userSync } from "../../db/schema.js";
import { Auth0Gateway, type CallObserver, type RevokeResult } from "../auth0/gateway.js";
import { RateLimiter, rateProfile, type Auth0Plan } from "../auth0/rate-limiter.js";
import type { Db } from "../directory/database.js";
import { conflict } from "../errors.js";
import { createDriftReconciler } from "./drift.js";
import { createGroupReconciler, createOrganizationReconciler } from "./fan-out.js";
import type { InvitationDelivery } from "./invitations.js";
import { MembershipBatcher } from "./membership-batcher.js";
import { Lane } from "./queue.js";
import { createUserReconciler, type SyncDeps } from "./reconcile-user.js";
import { Worker, type WorkerEvents } from "./worker.js";

export interface SyncEngineOptions {
  db: Db;
  client: ManagementClient;
  plan: Auth0Plan;
  /** AUTH0_RATE_SCALE: multiplies the plan's refill rates (raised limits, or a time-compressed emulator). */
  rateScale?: number;
  observer?: CallObserver;
  events?: WorkerEvents;
  concurrency?: number;
  pollMs?: number;
  leaseMs?: number;
  invitations?: InvitationDelivery;
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
export function createSyncEngine(options: SyncEngineOptions): SyncEngine {
  const limiter = new RateLimiter(rateProfile(options.plan), { rateScale: options.rateScale ?? 1 });
  const gateway = new Auth0Gateway(options.client, limiter, options.observer);
  const batcher = new MembershipBatcher(gateway);
  const deps: SyncDeps = { db: options.db, gateway, batcher, ...(options.invitations ? { invitations: options.invitations } : {}) };
  const worker = new Worker({
    db: options.db,
    handlers: {
      user: createUserReconciler(deps),
      group: createGroupReconciler(deps),
      organization: createOrganizationReconciler(deps),
      drift: createDriftReconciler(deps),
    },
    ...(options.concurrency === undefined ? {} : { concurrency: options.concurrency }),
    ...(options.pollMs === undefined ? {} : { pollMs: options.pollMs }),
    ...(options.leaseMs === undefined ? {} : { leaseMs: options.leaseMs }),
    ...(options.events ? { events: options.events } : {}),
  });
  return {
    limiter,
    gateway,
    worker,
    deps,
    async signOut(userId) {
      const sync = options.db.select({ auth0UserId: userSync.auth0UserId }).from(userSync).where(eq(userSync.userId, userId)).get();
      if (!sync?.auth0UserId) throw conflict("the user is not linked to an Auth0 user yet, so it has no sessions to end");
      return gateway.revokeAccess(sync.auth0UserId, Lane.deprovision);
    },
  };
}
