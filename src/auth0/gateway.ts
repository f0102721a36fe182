import type { ManagementClient, Management } from "auth0";
import { ManagementError } from "auth0";
import { Auth0CallError, classifyAuth0Error } from "./errors.js";
import { endpointClass, type EndpointClass, type LaneArg, type RateLimiter } from "./rate-limiter.js";

/** Auth0 caps organization member add/remove at 10 users per call (Auth0 docs "Assign Members to Organizations"). */
export const MEMBERS_PER_CALL = 10;

export interface Auth0User {
  user_id: string;
  email?: string;
  blocked?: boolean;
  app_metadata?: Record<string, unknown>;
  identities?: { connection: string; provider?: string; user_id?: string }[];
  [key: string]: unknown;
}

export interface CallObserver {
  onCall?(cls: EndpointClass, status: number, durationMs: number): void;
}

export type RevokeResult = { revoked: true } | { revoked: false; reason: string };

/** What the bridge needs to know of an Auth0 connection. */
export interface ConnectionInfo {
  id: string;
  name: string;
  strategy: string;
  /** `options.set_user_root_attributes` (absent: Auth0's default, on_each_login). */
  setUserRootAttributes?: string;
  /** The connection's password options, for the throwaway password of database users. */
  passwordOptions?: Record<string, unknown>;
}

export interface GatewayOptions {
  /** Application whose login page a password-change ticket returns to (AUTH0_INVITATION_CLIENT_ID). */
  invitationClientId?: string;
  /** How long a read connection is trusted before it is read again (default 5 minutes). */
  connectionTtlMs?: number;
  /** When Auth0 counts as down and how long calls then wait (default defaultOutagePolicy). */
  outage?: OutagePolicy;
  /**
   * Serialises a list rewrite with the other instances on the same database (an advisory lock on
   * PostgreSQL). Without it the rewrites are serialised within this process only, which is enough
   * for one instance, or several on one SQLite file that Auth0's own conflicts then settle.
   */
  crossInstanceLock?: <T>(key: string, fn: () => Promise<T>) => Promise<T>;
}

/**
 * Outage detection: after `failuresBeforePause` 5xx or network failures in a row every call waits
 * `firstPauseMs`, doubling up to `maxPauseMs`; a transient failure is retried once in the call after
 * a jittered wait of `transientRetryMs`. Configurable so that tests can run an outage in seconds
 * with the same proportions.
 */
export interface OutagePolicy {
  failuresBeforePause: number;
  firstPauseMs: number;
  maxPauseMs: number;
  transientRetryMs: { min: number; max: number };
}

export const defaultOutagePolicy: OutagePolicy = {
  failuresBeforePause: 3,
  firstPauseMs: 1000,
  maxPauseMs: 30_000,
  transientRetryMs: { min: 250, max: 1000 },
};

/** A 429 is retried inside the limiter (which pauses the bucket that answered) this many times before the job backs off. */
const RATE_LIMIT_RETRIES = 4;
/**
 * A 5xx, 408 or network failure is retried once inside the call, after a short jittered wait, as
 * node-auth0's own retry did: with several calls per reconcile, a 10% error rate would otherwise fail
 * a quarter of the jobs and push them into minutes of backoff. A POST whose answer was lost is safe to
 * repeat: the reconciler adopts a user the first attempt created (409).
 */
const TRANSIENT_RETRIES = 1;

/**
 * The bridge's port to the Auth0 Management API. Every call waits for the rate limiter (by the
 * endpoint's published bucket and the lane), feeds the response's rate headers back to it, and turns
 * failures into Auth0CallError. node-auth0 does not retry (see client.ts): the limiter and the job
 * backoff own every retry.
 */
export class Auth0Gateway {
  private readonly roleIds = new Map<string, string>();
  private readonly locks = new Map<string, Promise<unknown>>();
  /** Consecutive 5xx/network failures: past a few, Auth0 is treated as down (see noteFailure). */
  private consecutiveFailures = 0;
  /**
   * Calls are numbered as they are sent; the number sent when the last failure was seen. A clock
   * cannot tell them apart: calls sent and failed within one millisecond would count one by one.
   */
  private sentCalls = 0;
  private sentAtLastFailure = 0;

  private readonly connections = new Map<string, { info: ConnectionInfo; readAt: number }>();
  private get outage(): OutagePolicy {
    return this.options.outage ?? defaultOutagePolicy;
  }

  constructor(
    private readonly client: ManagementClient,
    private readonly limiter: RateLimiter,
    private readonly observer: CallObserver = {},
    private readonly options: GatewayOptions = {},
  ) {}

  /**
   * One Management API call: waits for the limiter (by the endpoint's published bucket and the
   * lane), feeds the response's rate headers back, and turns failures into Auth0CallError. node-auth0
   * runs with maxRetries 0, so every retry is the limiter's: a 429 pauses the bucket that answered
   * and the call waits its turn again, in lane order.
   */
  private async call<T>(
    method: string,
    path: string,
    lane: LaneArg,
    send: () => Promise<{ data: T; rawResponse: { status: number; headers: Headers } }>,
  ): Promise<T> {
    const cls = endpointClass(method, path);
    let transientRetries = 0;
    for (let attempt = 0; ; attempt++) {
      await this.limiter.acquire(cls, lane);
      const started = Date.now();
      const sent = ++this.sentCalls;
      try {
        const { data, rawResponse } = await send();
        this.noteSuccess(sent);
        this.limiter.observe(cls, rawResponse.status, rawResponse.headers);
        this.observer.onCall?.(cls, rawResponse.status, Date.now() - started);
        return data;
      } catch (err) {
        const status = err instanceof ManagementError ? (err.statusCode ?? 0) : 0;
        const headers = err instanceof ManagementError ? err.rawResponse?.headers : undefined;
        this.limiter.observe(cls, status, headers);
        this.observer.onCall?.(cls, status, Date.now() - started);
        if (status === 429 && attempt < RATE_LIMIT_RETRIES) continue;
        const transient = status === 0 || status === 408 || (status >= 500 && status !== 501);
        if (status === 0 || status >= 500) this.noteFailure(sent);
        else this.noteSuccess(sent);
        if (transient && transientRetries++ < TRANSIENT_RETRIES) {
          const { min, max } = this.outage.transientRetryMs;
          await new Promise((resolve) => setTimeout(resolve, min + Math.random() * (max - min)));
          continue;
        }
        throw classifyAuth0Error(err, path);
      }
    }
  }

  /**
   * During an outage every job would burn its attempts and back off for minutes. Instead, after a few
   * failures in a row (3 by default) provisioning and background calls wait in the limiter (1 s,
   * doubling up to 30 s) before Auth0 is tried again; deprovisioning calls keep trying (see
   * RateLimiter.pauseOutage), and a success resets the count and ends the pause.
   *
   * "In a row" is in time: calls that were already in flight when a failure was seen count once
   * with it. Dozens of calls in flight that lose their connections together (one network blip, a
   * stalled peer) are one failure, not dozens; counted one by one, they used to pause every call,
   * deactivations included, for the full 30 s.
   */
  private noteFailure(sent: number): void {
    if (sent <= this.sentAtLastFailure) return;
    this.sentAtLastFailure = this.sentCalls;
    this.consecutiveFailures++;
    const { failuresBeforePause, firstPauseMs, maxPauseMs } = this.outage;
    if (this.consecutiveFailures >= failuresBeforePause) {
      const pauseMs = Math.min(
        maxPauseMs,
        firstPauseMs * 2 ** Math.min(this.consecutiveFailures - failuresBeforePause, 5),
      );
      this.limiter.pauseOutage(Date.now() + pauseMs);
    }
  }

  /** An answer from Auth0 to a call sent after the last failure: it is up. (An older call's answer proves nothing.) */
  private noteSuccess(sent: number): void {
    if (sent <= this.sentAtLastFailure) return;
    this.consecutiveFailures = 0;
    this.limiter.resumeAfterOutage();
  }

  /** One page of a list endpoint, through the limiter like any call. */
  private page<P extends { rawResponse: { status: number; headers: Headers } }>(
    path: string,
    lane: LaneArg,
    load: () => Promise<P>,
  ): Promise<P> {
    return this.call("GET", path, lane, async () => {
      const p = await load();
      return { data: p, rawResponse: p.rawResponse };
    });
  }

  /**
   * Serialises operations that rewrite a whole list on Auth0's side, per resource: in this process
   * first (so that it holds at most one cross-instance lock per key), then across instances.
   */
  private async exclusive<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const previous = this.locks.get(key) ?? Promise.resolve();
    const across = this.options.crossInstanceLock;
    const run = across ? () => across(key, fn) : fn;
    const next = previous.catch(() => undefined).then(run);
    this.locks.set(key, next);
    try {
      return await next;
    } finally {
      if (this.locks.get(key) === next) this.locks.delete(key);
    }
  }

  getUser(id: string, lane: LaneArg): Promise<Auth0User> {
    return this.call("GET", `/users/${id}`, lane, () =>
      this.client.users.get(id).withRawResponse(),
    ) as Promise<Auth0User>;
  }

  /**
   * Users of `connection` with this email. users-by-email is exact and case-sensitive (Auth0 "Retrieve
   * Users with the Get Users by Email Endpoint"): Auth0 keeps the IdP's casing for enterprise users,
   * so the email is looked up exactly as the IdP sent it; database connections store emails
   * lower-cased, so for them the lower-cased form is tried too.
   */
  async findUsersByEmail(email: string, connection: string, lane: LaneArg, database = false): Promise<Auth0User[]> {
    const forms = [...new Set(database ? [email, email.toLowerCase()] : [email])];
    for (const form of forms) {
      const users = (await this.call("GET", "/users-by-email", lane, () =>
        this.client.users.listUsersByEmail({ email: form }).withRawResponse(),
      )) as Auth0User[];
      const inConnection = users.filter((u) => (u.identities ?? []).some((i) => i.connection === connection));
      if (inConnection.length > 0) return inConnection;
    }
    return [];
  }

  createUser(body: Management.CreateUserRequestContent, lane: LaneArg): Promise<Auth0User> {
    return this.call("POST", "/users", lane, () =>
      this.client.users.create(body).withRawResponse(),
    ) as Promise<Auth0User>;
  }

  updateUser(id: string, body: Management.UpdateUserRequestContent, lane: LaneArg): Promise<Auth0User> {
    return this.call("PATCH", `/users/${id}`, lane, () =>
      this.client.users.update(id, body).withRawResponse(),
    ) as Promise<Auth0User>;
  }

  /** Deleting a user that is already gone counts as done. */
  async deleteUser(id: string, lane: LaneArg): Promise<void> {
    try {
      await this.call("DELETE", `/users/${id}`, lane, () => this.client.users.delete(id).withRawResponse());
    } catch (err) {
      if (err instanceof Auth0CallError && err.kind === "userNotFound") return;
      throw err;
    }
  }

  /**
   * Ends every session and refresh token of the user. revoke-access does both; where the tenant's
   * plan lacks it (refused with 403, or the route unknown: 404 without `inexistent_user`), the
   * separate session and refresh-token endpoints are tried, and where those are refused too
   * (non-Enterprise plans) the result says "not available on this plan" instead of failing, so the
   * rest of the deprovisioning still runs. A 404 `inexistent_user` is an error, never "revoked".
   */
  async revokeAccess(id: string, lane: LaneArg): Promise<RevokeResult> {
    const unavailable = (err: unknown) =>
      err instanceof Auth0CallError && (err.kind === "forbiddenByPlan" || err.kind === "notFound");
    try {
      await this.call("POST", `/users/${id}/revoke-access`, lane, () =>
        this.client.users.revokeAccess(id, {}).withRawResponse(),
      );
      return { revoked: true };
    } catch (err) {
      if (!unavailable(err)) throw err;
    }
    const refused: string[] = [];
    try {
      await this.call("DELETE", `/users/${id}/sessions`, lane, () =>
        this.client.users.sessions.delete(id).withRawResponse(),
      );
    } catch (err) {
      if (!unavailable(err)) throw err;
      refused.push("sessions");
    }
    try {
      await this.call("DELETE", `/users/${id}/refresh-tokens`, lane, () =>
        this.client.users.refreshToken.delete(id).withRawResponse(),
      );
    } catch (err) {
      if (!unavailable(err)) throw err;
      refused.push("refresh tokens");
    }
    if (refused.length === 0) return { revoked: true };
    return {
      revoked: false,
      reason: `revoking ${refused.join(" and ")} is not available on this plan: the user is blocked, but what was already issued stays valid until it expires`,
    };
  }

  /**
   * `userIds` as a function: called once, when the limiter lets the call go (at most MEMBERS_PER_CALL
   * ids), so that a caller can keep adding to the call while it waits for its bucket.
   */
  async addMembers(orgId: string, userIds: string[] | (() => string[]), lane: LaneArg): Promise<void> {
    if (typeof userIds === "function") {
      let members: string[] | undefined;
      await this.call("POST", `/organizations/${orgId}/members`, lane, () =>
        this.client.organizations.members.create(orgId, { members: (members ??= userIds()) }).withRawResponse(),
      );
      return;
    }
    for (let i = 0; i < userIds.length; i += MEMBERS_PER_CALL) {
      const members = userIds.slice(i, i + MEMBERS_PER_CALL);
      await this.call("POST", `/organizations/${orgId}/members`, lane, () =>
        this.client.organizations.members.create(orgId, { members }).withRawResponse(),
      );
    }
  }

  /** As addMembers. */
  async removeMembers(orgId: string, userIds: string[] | (() => string[]), lane: LaneArg): Promise<void> {
    if (typeof userIds === "function") {
      let members: string[] | undefined;
      await this.call("DELETE", `/organizations/${orgId}/members`, lane, () =>
        this.client.organizations.members.delete(orgId, { members: (members ??= userIds()) }).withRawResponse(),
      );
      return;
    }
    for (let i = 0; i < userIds.length; i += MEMBERS_PER_CALL) {
      const members = userIds.slice(i, i + MEMBERS_PER_CALL);
      await this.call("DELETE", `/organizations/${orgId}/members`, lane, () =>
        this.client.organizations.members.delete(orgId, { members }).withRawResponse(),
      );
    }
  }

  /** Organization members, every page (checkpoint paging, which has no 1,000-record ceiling). */
  async listMembers(orgId: string, lane: LaneArg): Promise<{ user_id: string; email?: string }[]> {
    const out: { user_id: string; email?: string }[] = [];
    let from: string | undefined;
    for (;;) {
      const page = await this.page(`/organizations/${orgId}/members`, lane, () =>
        this.client.organizations.members.list(orgId, { take: 50, ...(from ? { from } : {}) }),
      );
      for (const m of page.data)
        if (m.user_id) out.push({ user_id: m.user_id, ...(m.email ? { email: m.email } : {}) });
      const next = (page.response as { next?: string }).next;
      if (!next) return out;
      from = next;
    }
  }

  async listMemberRoleNames(orgId: string, userId: string, lane: LaneArg): Promise<string[]> {
    const page = await this.page(`/organizations/${orgId}/members/${userId}/roles`, lane, () =>
      this.client.organizations.members.roles.list(orgId, userId, { per_page: 50 }),
    );
    return page.data.map((r) => r.name ?? "").filter(Boolean);
  }

  /** Role ids by name; a role the mapping names but the tenant lacks is created (as a tenant role). */
  async roleIdsByName(names: string[], lane: LaneArg): Promise<string[]> {
    const ids: string[] = [];
    for (const name of names) {
      let id = this.roleIds.get(name);
      if (!id) {
        id = await this.exclusive(`role:${name}`, async () => {
          const cached = this.roleIds.get(name);
          if (cached) return cached;
          const page = await this.page("/roles", lane, () =>
            this.client.roles.list({ name_filter: name, per_page: 50 }),
          );
          let found = page.data.find((r) => r.name === name)?.id;
          if (!found) {
            const created = await this.call("POST", "/roles", lane, () =>
              this.client.roles.create({ name, description: "Managed by scim-bridge" }).withRawResponse(),
            );
            found = created.id;
          }
          if (!found)
            throw new Auth0CallError("fatal", undefined, undefined, `Auth0 returned no id for role "${name}"`);
          this.roleIds.set(name, found);
          return found;
        });
      }
      ids.push(id);
    }
    return ids;
  }

  /** A 409 (the member already holds the roles) counts as done. */
  async assignMemberRoles(orgId: string, userId: string, roleNames: string[], lane: LaneArg): Promise<void> {
    if (roleNames.length === 0) return;
    const roles = await this.roleIdsByName(roleNames, lane);
    try {
      await this.call("POST", `/organizations/${orgId}/members/${userId}/roles`, lane, () =>
        this.client.organizations.members.roles.assign(orgId, userId, { roles }).withRawResponse(),
      );
    } catch (err) {
      if (!(err instanceof Auth0CallError) || err.kind !== "conflict") throw err;
    }
  }

  async removeMemberRoles(orgId: string, userId: string, roleNames: string[], lane: LaneArg): Promise<void> {
    if (roleNames.length === 0) return;
    const roles = await this.roleIdsByName(roleNames, lane);
    await this.call("DELETE", `/organizations/${orgId}/members/${userId}/roles`, lane, () =>
      this.client.organizations.members.roles.delete(orgId, userId, { roles }).withRawResponse(),
    );
  }

  /**
   * The invitation: a password-change ticket, so the user sets the password we never knew. It marks
   * the email verified (the user proves it by opening the mail), and returns to the configured
   * application's login when one is set.
   */
  async passwordChangeTicket(
    userId: string,
    orgId: string | undefined,
    lane: LaneArg,
    ttlSeconds?: number,
  ): Promise<string> {
    const clientId = this.options.invitationClientId;
    const ticket = await this.call("POST", "/tickets/password-change", lane, () =>
      this.client.tickets
        .changePassword({
          user_id: userId,
          mark_email_as_verified: true,
          ...(clientId ? { client_id: clientId } : {}),
          ...(orgId ? { organization_id: orgId } : {}),
          ...(ttlSeconds ? { ttl_sec: ttlSeconds } : {}),
        })
        .withRawResponse(),
    );
    if (!ticket.ticket) throw new Auth0CallError("retryable", undefined, undefined, "Auth0 returned no ticket URL");
    return ticket.ticket;
  }

  /**
   * The connection by name: id, strategy and the options the bridge depends on. Read once and kept
   * for a while (connectionTtlMs); `refresh` reads it again (after Auth0 refused a write the cached
   * options said was allowed).
   */
  async connection(name: string, lane: LaneArg, refresh = false): Promise<ConnectionInfo> {
    const cached = this.connections.get(name);
    if (cached && !refresh && Date.now() - cached.readAt < (this.options.connectionTtlMs ?? 300_000))
      return cached.info;
    const page = await this.page("/connections", lane, () => this.client.connections.list({ name, take: 50 }));
    const found = page.data.find((c) => c.name === name);
    if (!found?.id)
      throw new Auth0CallError(
        "fatal",
        404,
        "inexistent_connection",
        `Auth0 connection "${name}" does not exist in the tenant`,
      );
    const options = (found.options ?? {}) as Record<string, unknown>;
    const sync = options.set_user_root_attributes;
    const info: ConnectionInfo = {
      id: found.id,
      name,
      strategy: found.strategy ?? "auth0",
      ...(typeof sync === "string" ? { setUserRootAttributes: sync } : {}),
      passwordOptions: options,
    };
    this.connections.set(name, { info, readAt: Date.now() });
    return info;
  }

  async connectionId(name: string, lane: LaneArg): Promise<string> {
    return (await this.connection(name, lane)).id;
  }

  /**
   * Creates the Auth0 Organization for a slug, or adopts an existing one of the same name, and
   * makes sure the organization's connection is enabled on it. Safe to repeat. An enterprise
   * connection's users do not exist before their first login, so the bridge cannot add them as
   * members beforehand: there Auth0's auto-membership admits them, and the post-login hook decides.
   */
  async ensureOrganization(
    slug: string,
    displayName: string,
    connection: string,
    lane: LaneArg,
    autoMembership = false,
  ): Promise<string> {
    return this.exclusive(`org:${slug}`, async () => {
      let orgId: string | undefined;
      let currentName: string | undefined;
      try {
        const found = await this.call("GET", `/organizations/name/${slug}`, lane, () =>
          this.client.organizations.getByName(slug).withRawResponse(),
        );
        orgId = found.id;
        currentName = found.display_name;
      } catch (err) {
        if (!(err instanceof Auth0CallError) || err.kind !== "notFound") throw err;
      }
      if (!orgId) {
        try {
          orgId = (
            await this.call("POST", "/organizations", lane, () =>
              this.client.organizations.create({ name: slug, display_name: displayName }).withRawResponse(),
            )
          ).id;
          currentName = displayName;
        } catch (err) {
          if (!(err instanceof Auth0CallError) || err.kind !== "conflict") throw err;
          orgId = (
            await this.call("GET", `/organizations/name/${slug}`, lane, () =>
              this.client.organizations.getByName(slug).withRawResponse(),
            )
          ).id;
        }
      }
      if (orgId && currentName !== undefined && currentName !== displayName) {
        const id = orgId;
        await this.call("PATCH", `/organizations/${id}`, lane, () =>
          this.client.organizations.update(id, { display_name: displayName }).withRawResponse(),
        );
      }
      if (!orgId)
        throw new Auth0CallError("fatal", undefined, undefined, `Auth0 returned no id for organization "${slug}"`);
      const connectionId = await this.connectionId(connection, lane);
      const page = await this.page(`/organizations/${orgId}/enabled_connections`, lane, () =>
        this.client.organizations.enabledConnections.list(orgId!, { per_page: 50 }),
      );
      const enabled = page.data.find((c) => c.connection_id === connectionId);
      if (!enabled) {
        try {
          await this.call("POST", `/organizations/${orgId}/enabled_connections`, lane, () =>
            this.client.organizations.enabledConnections
              .add(orgId!, { connection_id: connectionId, assign_membership_on_login: autoMembership })
              .withRawResponse(),
          );
        } catch (err) {
          if (!(err instanceof Auth0CallError) || err.kind !== "conflict") throw err;
        }
      } else if (autoMembership && enabled.assign_membership_on_login !== true) {
        // Switched to an enterprise connection: its users only become members at first login.
        await this.call("PATCH", `/organizations/${orgId}/enabled_connections/${connectionId}`, lane, () =>
          this.client.organizations.enabledConnections
            .update(orgId!, connectionId, { assign_membership_on_login: true })
            .withRawResponse(),
        );
      }
      return orgId;
    });
  }
}
