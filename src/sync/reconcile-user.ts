import { Auth0CallError } from "../auth0/errors.js";
import { laneOf, type LaneArg } from "../auth0/rate-limiter.js";
import type { Auth0Gateway, ConnectionInfo } from "../auth0/gateway.js";
import { mappingCacheOf, mappingOfOrganization, readActiveMapping } from "../directory/mappings.js";
import type { SqlStore } from "../directory/sql.js";
import {
  applyOperation,
  connectionWritability,
  defaultWritability,
  initialApplied,
  plan,
  type AppliedState,
  type ConnectionWritability,
  type DesiredUser,
  type MappingDocument,
} from "../mapping/index.js";
import { Lane } from "../directory/outbox.js";
import { executeOperation } from "./execute.js";
import { checkGuard } from "./guard.js";
import {
  desiredFor,
  linkFound,
  looksUpByEmailFirst,
  loadUserInputs,
  memberOfOtherOrganizations,
  saveApplied,
  saveSyncError,
  type OrganizationRow,
} from "./inputs.js";
import type { InvitationDelivery } from "./invitations.js";
import type { MembershipBatcher } from "./membership-batcher.js";
import type { JobHandler, JobOutcome } from "./worker.js";
import { exec, one, type StoreOp } from "../directory/store-op.js";

export interface SyncDeps {
  /** The bookkeeping store (the bridge's `bookkeeping`). */
  store: SqlStore;
  gateway: Auth0Gateway;
  batcher: MembershipBatcher;
  invitations?: InvitationDelivery;
  now?: () => number;
  /** Told of every failed reconcile with its Auth0 error (logs and metrics count repeats). */
  failures?: Auth0FailureSink;
}

export interface Auth0FailureSink {
  failed(organization: { id: string; slug: string }, err: Auth0CallError): void;
  succeeded(organizationId: string): void;
}

/** The connection's write rules for desired(), read from Auth0 (cached by the gateway). */
export async function connectionContext(deps: SyncDeps, mapping: MappingDocument, lane: LaneArg, refresh = false) {
  const info = await deps.gateway.connection(mapping.connection.name, lane, refresh);
  return {
    info,
    writability: connectionWritability({ strategy: info.strategy, setUserRootAttributes: info.setUserRootAttributes }),
  };
}

/**
 * The Auth0 Organization id the bridge recorded for an organization. (The organizations table's
 * store module owns its other statements; these two are the sync engine's own.)
 */
export function* savedAuth0OrgId(organizationId: string): StoreOp<string | null> {
  const row = yield* one<{ auth0OrgId: string | null }>(
    `SELECT auth0_org_id AS "auth0OrgId" FROM organizations WHERE id = ?`,
    [organizationId],
  );
  return row?.auth0OrgId ?? null;
}

/** Records (or, with null, forgets) the organization's Auth0 Organization id. */
export const setAuth0OrgId = (organizationId: string, auth0OrgId: string | null, now: number): StoreOp<number> =>
  exec(`UPDATE organizations SET auth0_org_id = ?, updated_at = ? WHERE id = ?`, [auth0OrgId, now, organizationId]);

/** A user's inputs and its organization's active mapping, in one snapshot. */
export function* reconcileInputs(userId: string, store: SqlStore) {
  const inputs = yield* loadUserInputs(userId);
  if (!inputs) return undefined;
  const mapping = yield* mappingOfOrganization(inputs.organization, mappingCacheOf(store, true), inputs.connectionType);
  return { inputs, mapping: mapping.document };
}

/** More operations than any plan has; a guard against a plan that never converges. */
const MAX_STEPS = 40;

/**
 * Creates (or adopts) the organization's Auth0 Organization once, and remembers its id. `refresh`
 * (the "organization" job after onboarding, a mapping change or an update) also brings its display
 * name and the active mapping's connection up to date.
 */
export async function ensureAuth0Organization(
  deps: SyncDeps,
  org: OrganizationRow,
  lane: LaneArg,
  refresh = false,
): Promise<string> {
  if (org.auth0OrgId && !refresh) return org.auth0OrgId;
  if (refresh) return createOrAdoptOrganization(deps, org, lane);
  // The first jobs of a new organization all arrive here at once, each with a row read before the
  // id was known. One of them creates or adopts the Auth0 Organization; the others take its id
  // instead of queueing two more calls each behind it (which would hold every worker slot idle).
  const saved = await deps.store.read(savedAuth0OrgId(org.id));
  if (saved) return saved;
  let inFlight = ensuring.get(deps.gateway);
  if (!inFlight) ensuring.set(deps.gateway, (inFlight = new Map()));
  const running = inFlight.get(org.id);
  if (running) return running;
  const started = createOrAdoptOrganization(deps, org, lane).finally(() => inFlight.delete(org.id));
  inFlight.set(org.id, started);
  return started;
}

/** Creations of Auth0 Organizations under way, per gateway (one tenant) and organization. */
const ensuring = new WeakMap<Auth0Gateway, Map<string, Promise<string>>>();

async function createOrAdoptOrganization(deps: SyncDeps, org: OrganizationRow, lane: LaneArg): Promise<string> {
  const mapping = await readActiveMapping(deps.store, org.id);
  const connection = mapping?.document.connection ?? { name: org.connection, type: "database" };
  const auth0OrgId = await deps.gateway.ensureOrganization(
    org.slug,
    org.displayName,
    connection.name,
    lane,
    connection.type === "enterprise",
  );
  if (auth0OrgId !== org.auth0OrgId) await deps.store.write(setAuth0OrgId(org.id, auth0OrgId, Date.now()));
  return auth0OrgId;
}

function outcomeOf(err: unknown): JobOutcome {
  if (err instanceof Auth0CallError) {
    if (err.kind === "retryable")
      return { status: "retry", reason: err.message, ...(err.retryAt ? { retryAt: err.retryAt } : {}) };
    if (
      err.kind === "fatal" ||
      err.kind === "forbiddenByPlan" ||
      err.kind === "unsupported" ||
      err.kind === "weakPassword"
    )
      return { status: "dead", reason: err.message };
    return { status: "retry", reason: err.message };
  }
  return { status: "retry", reason: err instanceof Error ? err.message : String(err) };
}

/**
 * Reconciles one user: desired (from the directory, the active mapping and holds) against applied
 * (what the bridge last wrote), then executes plan() one operation at a time, recording the applied
 * state after each, so that a crash anywhere resumes without repeating or losing work.
 */
export function createUserReconciler(deps: SyncDeps): JobHandler {
  const now = deps.now ?? Date.now;
  return async (job, signal, handle) => {
    const lane: LaneArg = handle ?? job.lane;
    // Read in one unit, then Auth0 is called with no unit open; each outcome is written in a unit of its own.
    const loaded = await deps.store.read(reconcileInputs(job.subjectId, deps.store));
    if (!loaded) return { status: "done" };
    const { inputs, mapping } = loaded;
    let applied: AppliedState = inputs.applied;
    // Whether the user's sync row exists (the loader found one, or a step of this run wrote it).
    let recorded = inputs.appliedAt !== null || inputs.lastError !== null;
    const record = async (state: AppliedState): Promise<void> => {
      await deps.store.write(saveApplied(inputs, state, now()));
      recorded = true;
    };
    let d: DesiredUser | undefined;
    try {
      const auth0OrgId = await ensureAuth0Organization(deps, inputs.organization, lane);
      // Deprovisioning never waits on the connection: if it cannot be read, Auth0's defaults for the
      // connection type apply (an enterprise connection's root attributes are not written).
      let connection: { info?: ConnectionInfo; writability: ConnectionWritability };
      try {
        connection = await connectionContext(deps, mapping, lane);
      } catch (err) {
        if (laneOf(lane) !== Lane.deprovision) throw err;
        connection = { writability: defaultWritability(mapping.connection.type) };
      }
      // The loader answered "another organization holds it" for the Auth0 user linked then; a link
      // made since (found by email below) is asked again, by the same rule.
      const desiredNow = async () =>
        desiredFor(mapping, inputs, {
          connection: connection.writability,
          ...(applied.auth0UserId !== inputs.applied.auth0UserId
            ? {
                memberOfOtherOrganizations: await deps.store.read(
                  memberOfOtherOrganizations(applied.auth0UserId, inputs.organization.id),
                ),
              }
            : {}),
        });
      d = await desiredNow();
      const notes: string[] = [];
      // plan() never creates a user only to cut it off. But an Auth0 user may exist that the bridge
      // does not know of: its own create whose answer a crash lost, one made outside it, or an
      // enterprise user who signed in before. Before deprovisioning, find it by email (as the IdP
      // sent it; lower-cased too for a database connection) so it is blocked too rather than left open.
      if (looksUpByEmailFirst(d, applied)) {
        const found = await deps.gateway.findUsersByEmail(
          d.emailAsSent ?? d.email!,
          d.connection,
          lane,
          d.connectionType === "database",
        );
        if (found[0]) {
          applied = linkFound(applied, d, found[0].user_id, found[0].blocked === true);
          await record(applied);
          // Another organization may hold the user just found: without asking again, a shared
          // user would be blocked for every organization because this one never linked it.
          d = await desiredNow();
        }
      }
      let retriedMissingUser = false;
      let replanned = false;
      for (let step = 0; step < MAX_STEPS; step++) {
        if (signal.aborted) return { status: "retry", reason: "worker stopping" };
        const op = plan(d, applied)[0];
        if (!op) break;
        if (op.irreversible) {
          const verdict = await checkGuard(
            deps.store,
            inputs.organization.id,
            mapping.policies.massDeprovisionGuard,
            inputs.row.modifiedAt,
            now(),
          );
          if (!verdict.allowIrreversible) {
            notes.push(`paused by the mass-deprovision guard: ${verdict.pause?.reason ?? ""}`.trim());
            break;
          }
        }
        let result;
        try {
          result = await executeOperation(op, {
            gateway: deps.gateway,
            batcher: deps.batcher,
            ...(deps.invitations ? { invitations: deps.invitations } : {}),
            organization: inputs.organization,
            userId: inputs.row.id,
            auth0OrgId,
            auth0UserId: applied.auth0UserId,
            lane,
            ...(connection.info ? { connection: connection.info } : {}),
          });
        } catch (err) {
          // The Auth0 user was deleted outside the bridge: start from scratch once (create or link again).
          if (
            err instanceof Auth0CallError &&
            err.kind === "userNotFound" &&
            applied.exists &&
            !retriedMissingUser &&
            op.type !== "deleteUser"
          ) {
            retriedMissingUser = true;
            applied = initialApplied();
            await record(applied);
            continue;
          }
          // Auth0 refused a field the cached connection said was writable (its sync setting changed):
          // read the connection again and plan without it, once.
          if (err instanceof Auth0CallError && err.kind === "unsupported" && !replanned) {
            replanned = true;
            connection = await connectionContext(deps, mapping, lane, true);
            d = await desiredNow();
            continue;
          }
          throw err;
        }
        if (result.note) notes.push(result.note);
        if (result.skipped) break;
        applied = applyOperation(applied, op, result);
        if (op.type === "linkUser" && !result.auth0UserId) {
          // Not in Auth0 yet: linked at first login by the post-login hook. A state, not a failure.
          await record(applied);
          break;
        }
        await record(applied);
      }
      const problems = [...d.problems, ...notes];
      const error = problems.length > 0 ? problems.join("; ") : null;
      // A clean run over a clean record changes nothing there: no write (a commit a job saved).
      if (error !== null || inputs.lastError !== null || !recorded)
        await deps.store.write(saveSyncError(inputs, error, now()));
      deps.failures?.succeeded(inputs.organization.id);
      return { status: "done" };
    } catch (err) {
      if (err instanceof Auth0CallError) {
        deps.failures?.failed(inputs.organization, err);
        // The Auth0 Organization was deleted outside the bridge: forget its id, so the retry creates it again.
        if (err.kind === "notFound" && err.errorCode === "inexistent_organization") {
          await deps.store.write(setAuth0OrgId(inputs.organization.id, null, now()));
        }
      }
      const outcome = outcomeOf(err);
      await deps.store.write(saveSyncError(inputs, outcome.status === "done" ? null : outcome.reason, now()));
      return outcome;
    }
  };
}
