/**
 * Mapping preview (dry run): the desired state of every directory user of an organization under the
 * active mapping and under a candidate, what would change, and the Auth0 operations the worker
 * would send once the candidate is active. Reads the database only; never calls Auth0. It is also
 * the dry run for onboarding a customer (the active mapping is then the default).
 *
 * Inputs come from the same loader as the worker's (src/sync/inputs.ts), in pages, so memory holds
 * one page of SCIM documents at a time and there is no query per user.
 */
import { activeMapping, mappingCacheOf, type ActiveMapping, type MappingCache } from "../directory/mappings.js";
import { getOrganization } from "../directory/organizations.js";
import type { SqlStore } from "../directory/sql.js";
import { notFound } from "../errors.js";
import {
  applyOperation,
  changeKinds,
  diffDesired,
  plan,
  type ChangeKind,
  type ConnectionWritability,
  type DesiredDiff,
  type MappingDocument,
  type Operation,
  type UserStatus,
} from "../mapping/index.js";
import {
  countOrganizationUsers,
  desiredFor,
  heldByOtherOrganizations,
  knownAuth0UsersByEmail,
  linkFound,
  looksUpByEmailFirst,
  organizationInputPages,
} from "./inputs.js";
import type { StoreOp } from "../directory/store-op.js";
import type { OrganizationRow } from "./inputs.js";

export interface PreviewUser {
  userId: string;
  userName: string;
  directoryId: string;
  /** Status under the candidate (the same under both: a mapping does not change it). */
  status: UserStatus;
  changes: DesiredDiff;
  /** Problems the candidate mapping has with this user (e.g. no email). */
  problems: string[];
  /**
   * The Auth0 operations the worker will send for this user under the candidate, in order, from
   * what the bridge last applied. Exact unless Auth0 holds something the bridge does not know of:
   * an existing user with the email (adopted instead of created), an enterprise user who has not
   * signed in yet (linked later), or a pause of the mass-deprovision guard.
   */
  operations: Operation[];
  /**
   * Before deprovisioning, the worker will find this existing Auth0 user by email (one the bridge
   * created or adopted for another organization) and cut it off too. From the bridge's records: if
   * one organization deleted an Auth0 user another shares, the other's record still shows it.
   */
  linkedByEmail?: string;
  /**
   * The create will meet this existing Auth0 user with the same email, which the worker adopts:
   * it updates it with the create's profile and app_metadata instead of creating a user.
   */
  adopts?: string;
}

export interface PreviewResult {
  organizationId: string;
  /** Version compared against; null = the default mapping (nothing applied yet). */
  activeVersion: number | null;
  total: number;
  changed: Record<ChangeKind, number> & { users: number };
  /** Users the candidate cannot map cleanly (see PreviewUser.problems). */
  withProblems: number;
  /** Users for whom the worker would send at least one operation under the candidate. */
  withOperations: number;
  /** Users with changes, problems or operations, ordered by user id. */
  users: PreviewUser[];
}

export interface PreviewProgress {
  done: number;
  total: number;
}

export interface PreviewOptions {
  /**
   * The candidate connection's write rules as read from Auth0 (the worker reads them before
   * planning); absent, the connection type's defaults under Auth0's default settings.
   */
  connection?: ConnectionWritability;
  pageSize?: number;
}

/** The organization, its active mapping and its number of users, in one snapshot. */
function* previewStart(
  idOrSlug: string,
  cache: MappingCache,
): StoreOp<{ org: OrganizationRow; active: ActiveMapping; total: number } | null> {
  const org = yield* getOrganization(idOrSlug);
  const active = org ? yield* activeMapping(org.id, cache) : null;
  if (!org || !active) return null;
  return { org, active, total: yield* countOrganizationUsers(org.id) };
}

/** What the worker would find in Auth0 by these emails, and which of those users another organization holds. */
function* lookupsOf(emails: string[], organizationId: string) {
  const known = yield* knownAuth0UsersByEmail(emails);
  const foundIds = [...known.values()].map((k) => k.auth0UserId);
  return { known, heldElsewhere: yield* heldByOtherOrganizations(foundIds, organizationId) };
}

export async function previewMapping(
  store: SqlStore,
  idOrSlug: string,
  candidate: MappingDocument,
  onProgress?: (progress: PreviewProgress) => void,
  options: PreviewOptions = {},
): Promise<PreviewResult> {
  const start = await store.read(previewStart(idOrSlug, mappingCacheOf(store, true)));
  if (!start) throw notFound(`organization "${idOrSlug}" not found`);
  const { org, active, total } = start;
  const result: PreviewResult = {
    organizationId: org.id,
    activeVersion: active.version,
    total,
    changed: { membership: 0, roles: 0, profile: 0, metadata: 0, blocked: 0, users: 0 },
    withProblems: 0,
    withOperations: 0,
    users: [],
  };
  const connection = options.connection ? { connection: options.connection } : {};
  let done = 0;
  for await (const page of organizationInputPages(store, org, options.pageSize)) {
    const rows = page.map((inputs) => ({
      inputs,
      before: desiredFor(active.document, inputs, connection),
      next: desiredFor(candidate, inputs, connection),
    }));
    // What the worker would find in Auth0 by email, as far as the bridge knows: users it created or
    // adopted for any organization (one query per page).
    const lookups = rows
      .filter(({ inputs, next }) => !inputs.applied.exists && next.email !== null)
      .map(({ next }) => next.email!);
    const { known, heldElsewhere } = await store.read(lookupsOf(lookups, org.id));
    for (const { inputs, before, next: nextBeforeLookup } of rows) {
      let next = nextBeforeLookup;
      let applied = inputs.applied;
      let linkedByEmail: string | undefined;
      const found = next.email === null ? undefined : known.get(next.email);
      if (found && looksUpByEmailFirst(next, applied)) {
        // As the worker: link the user found, then ask again whether another organization holds it.
        applied = linkFound(applied, next, found.auth0UserId, found.blocked);
        next = desiredFor(candidate, inputs, {
          ...connection,
          memberOfOtherOrganizations: heldElsewhere.has(found.auth0UserId),
        });
        linkedByEmail = found.auth0UserId;
      }
      let operations = plan(next, applied);
      let adopts: string | undefined;
      const first = operations[0];
      if (found && first?.type === "createUser") {
        // Auth0 answers the create with a conflict and the worker adopts the user with that email.
        adopts = found.auth0UserId;
        operations = [
          first,
          ...plan(
            next,
            applyOperation(applied, first, { auth0UserId: found.auth0UserId, created: false, blocked: found.blocked }),
          ),
        ];
      }
      const changes = diffDesired(before, next);
      const kinds = changeKinds.filter((k) => changes[k] !== undefined);
      for (const k of kinds) result.changed[k]++;
      if (kinds.length > 0) result.changed.users++;
      if (next.problems.length > 0) result.withProblems++;
      if (operations.length > 0) result.withOperations++;
      if (kinds.length > 0 || next.problems.length > 0 || operations.length > 0) {
        const { row } = inputs;
        result.users.push({
          userId: row.id,
          userName: row.userName,
          directoryId: row.directoryId,
          status: next.status,
          changes,
          problems: next.problems,
          operations,
          ...(linkedByEmail ? { linkedByEmail } : {}),
          ...(adopts ? { adopts } : {}),
        });
      }
    }
    done += page.length;
    onProgress?.({ done, total });
  }
  return result;
}
