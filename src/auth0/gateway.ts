import type { ManagementClient, Management } from "auth0";
import { ManagementError } from "auth0";
import { Auth0CallError, classifyAuth0Error } from "./errors.js";
import type { EndpointClass, RateLimiter } from "./rate-limiter.js";

/** Auth0 caps organization member add/remove at 10 users per call (reference §1). */
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

/**
 * The bridge's port to the Auth0 Management API. Every call waits for the rate limiter (by endpoint
 * class and lane), feeds the response's rate headers back to it, and turns failures into
 * Auth0CallError. node-auth0's own retries are kept low (see client.ts) because the limiter and the
 * job backoff own retry timing.
 */
export class Auth0Gateway {
  private readonly roleIds = new Map<string, string>();
  private readonly connectionIds = new Map<string, string>();
  private readonly locks = new Map<string, Promise<unknown>>();
  /** Consecutive 5xx/network failures: past a few, Auth0 is treated as down (see noteFailure). */
  private consecutiveFailures = 0;

  constructor(
    private readonly client: ManagementClient,
    private readonly limiter: RateLimiter,
    private readonly observer: CallObserver = {},
  ) {}

  private async call<T>(cls: EndpointClass, lane: number, path: string, send: () => Promise<{ data: T; rawResponse: { status: number; headers: Headers } }>): Promise<T> {
    await this.limiter.acquire(cls, lane);
    const started = Date.now();
    try {
      const { data, rawResponse } = await send();
      this.consecutiveFailures = 0;
      this.limiter.observe(cls, rawResponse.status, rawResponse.headers);
      this.observer.onCall?.(cls, rawResponse.status, Date.now() - started);
      return data;
    } catch (err) {
      const status = err instanceof ManagementError ? (err.statusCode ?? 0) : 0;
      const headers = err instanceof ManagementError ? err.rawResponse?.headers : undefined;
      this.limiter.observe(cls, status, headers);
      this.observer.onCall?.(cls, status, Date.now() - started);
      if (status === 0 || status >= 500) this.noteFailure();
      else this.consecutiveFailures = 0;
      throw classifyAuth0Error(err, path);
    }
  }

  /**
   * During an outage every job would burn its attempts and back off for minutes. Instead, after 3
   * failures in a row every call waits in the limiter (1 s, doubling up to 30 s) before Auth0 is
   * tried again; a success resets the count, so jobs resume as soon as Auth0 answers.
   */
  private noteFailure(): void {
    this.consecutiveFailures++;
    if (this.consecutiveFailures >= 3) {
      const pauseMs = Math.min(30_000, 1000 * 2 ** Math.min(this.consecutiveFailures - 3, 5));
      this.limiter.pauseAll(Date.now() + pauseMs);
    }
  }

  /** One page of a list endpoint, through the limiter like any call. */
  private page<P extends { rawResponse: { status: number; headers: Headers } }>(cls: EndpointClass, lane: number, path: string, load: () => Promise<P>): Promise<P> {
    return this.call(cls, lane, path, async () => {
      const p = await load();
      return { data: p, rawResponse: p.rawResponse };
    });
  }

  /** Serialises operations that rewrite a whole list on Auth0's side, per resource. */
  private async exclusive<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const previous = this.locks.get(key) ?? Promise.resolve();
    const next = previous.catch(() => undefined).then(fn);
    this.locks.set(key, next);
    try {
      return await next;
    } finally {
      if (this.locks.get(key) === next) this.locks.delete(key);
    }
  }

  getUser(id: string, lane: number): Promise<Auth0User> {
    return this.call("usersRead", lane, `/users/${id}`, () => this.client.users.get(id).withRawResponse()) as Promise<Auth0User>;
  }

  /** users-by-email is case-sensitive and Auth0 stores database emails lower-cased: always look up lower-cased. */
  async findUsersByEmail(email: string, connection: string, lane: number): Promise<Auth0User[]> {
    const users = (await this.call("usersRead", lane, "/users-by-email", () =>
      this.client.users.listUsersByEmail({ email: email.toLowerCase() }).withRawResponse(),
    )) as Auth0User[];
    return users.filter((u) => (u.identities ?? []).some((i) => i.connection === connection));
  }

  createUser(body: Management.CreateUserRequestContent, lane: number): Promise<Auth0User> {
    return this.call("usersWrite", lane, "/users", () => this.client.users.create(body).withRawResponse()) as Promise<Auth0User>;
  }

  updateUser(id: string, body: Management.UpdateUserRequestContent, lane: number): Promise<Auth0User> {
    return this.call("usersWrite", lane, `/users/${id}`, () => this.client.users.update(id, body).withRawResponse()) as Promise<Auth0User>;
  }

  /** Deleting a user that is already gone counts as done. */
  async deleteUser(id: string, lane: number): Promise<void> {
    try {
      await this.call("usersDelete", lane, `/users/${id}`, () => this.client.users.delete(id).withRawResponse());
    } catch (err) {
      if (err instanceof Auth0CallError && err.kind === "notFound") return;
      throw err;
    }
  }

  /**
   * Ends every session and refresh token of the user. revoke-access does both; where the tenant's
   * plan lacks it, the separate session and refresh-token endpoints are tried, and where those are
   * missing too (non-Enterprise plans) the result says so instead of failing the job.
   */
  async revokeAccess(id: string, lane: number): Promise<RevokeResult> {
    try {
      await this.call("usersWrite", lane, `/users/${id}/revoke-access`, () => this.client.users.revokeAccess(id, {}).withRawResponse());
      return { revoked: true };
    } catch (err) {
      if (!(err instanceof Auth0CallError) || err.kind !== "forbiddenByPlan") {
        if (err instanceof Auth0CallError && err.kind === "notFound") return { revoked: true };
        throw err;
      }
    }
    try {
      await this.call("usersDelete", lane, `/users/${id}/sessions`, () => this.client.users.sessions.delete(id).withRawResponse());
      await this.call("usersDelete", lane, `/users/${id}/refresh-tokens`, () => this.client.users.refreshToken.delete(id).withRawResponse());
      return { revoked: true };
    } catch (err) {
      if (err instanceof Auth0CallError && err.kind === "forbiddenByPlan") {
        return { revoked: false, reason: "the tenant's plan has no session or refresh-token revocation; the user is blocked only" };
      }
      throw err;
    }
  }

  async addMembers(orgId: string, userIds: string[], lane: number): Promise<void> {
    for (let i = 0; i < userIds.length; i += MEMBERS_PER_CALL) {
      const members = userIds.slice(i, i + MEMBERS_PER_CALL);
      await this.call("orgMembersWrite", lane, `/organizations/${orgId}/members`, () =>
        this.client.organizations.members.create(orgId, { members }).withRawResponse(),
      );
    }
  }

  async removeMembers(orgId: string, userIds: string[], lane: number): Promise<void> {
    for (let i = 0; i < userIds.length; i += MEMBERS_PER_CALL) {
      const members = userIds.slice(i, i + MEMBERS_PER_CALL);
      await this.call("orgMembersWrite", lane, `/organizations/${orgId}/members`, () =>
        this.client.organizations.members.delete(orgId, { members }).withRawResponse(),
      );
    }
  }

  /** Organization members, every page (checkpoint paging, which has no 1,000-record ceiling). */
  async listMembers(orgId: string, lane: number): Promise<{ user_id: string; email?: string }[]> {
    const out: { user_id: string; email?: string }[] = [];
    let from: string | undefined;
    for (;;) {
      const page = await this.page("other", lane, `/organizations/${orgId}/members`, () =>
        this.client.organizations.members.list(orgId, { take: 50, ...(from ? { from } : {}) }),
      );
      for (const m of page.data) if (m.user_id) out.push({ user_id: m.user_id, ...(m.email ? { email: m.email } : {}) });
      const next = (page.response as { next?: string }).next;
      if (!next) return out;
      from = next;
    }
  }

  async listMemberRoleNames(orgId: string, userId: string, lane: number): Promise<string[]> {
    const page = await this.page("other", lane, `/organizations/${orgId}/members/${userId}/roles`, () =>
      this.client.organizations.members.roles.list(orgId, userId, { per_page: 50 }),
    );
    return page.data.map((r) => r.name ?? "").filter(Boolean);
  }

  /** Role ids by name; a role the mapping names but the tenant lacks is created (as a tenant role). */
  async roleIdsByName(names: string[], lane: number): Promise<string[]> {
    const ids: string[] = [];
    for (const name of names) {
      let id = this.roleIds.get(name);
      if (!id) {
        id = await this.exclusive(`role:${name}`, async () => {
          const cached = this.roleIds.get(name);
          if (cached) return cached;
          const page = await this.page("other", lane, "/roles", () => this.client.roles.list({ name_filter: name, per_page: 50 }));
          let found = page.data.find((r) => r.name === name)?.id;
          if (!found) {
            const created = await this.call("other", lane, "/roles", () =>
              this.client.roles.create({ name, description: "Managed by scim-bridge" }).withRawResponse(),
            );
            found = created.id;
          }
          if (!found) throw new Auth0CallError("fatal", undefined, undefined, `Auth0 returned no id for role "${name}"`);
          this.roleIds.set(name, found);
          return found;
        });
      }
      ids.push(id);
    }
    return ids;
  }

  async assignMemberRoles(orgId: string, userId: string, roleNames: string[], lane: number): Promise<void> {
    if (roleNames.length === 0) return;
    const roles = await this.roleIdsByName(roleNames, lane);
    await this.call("orgMemberRolesWrite", lane, `/organizations/${orgId}/members/${userId}/roles`, () =>
      this.client.organizations.members.roles.assign(orgId, userId, { roles }).withRawResponse(),
    );
  }

  async removeMemberRoles(orgId: string, userId: string, roleNames: string[], lane: number): Promise<void> {
    if (roleNames.length === 0) return;
    const roles = await this.roleIdsByName(roleNames, lane);
    await this.call("orgMemberRolesWrite", lane, `/organizations/${orgId}/members/${userId}/roles`, () =>
      this.client.organizations.members.roles.delete(orgId, userId, { roles }).withRawResponse(),
    );
  }

  /** The invitation: a password-change ticket, so the user sets the password we never knew. */
  async passwordChangeTicket(userId: string, orgId: string | undefined, lane: number, ttlSeconds?: number): Promise<string> {
    const ticket = await this.call("other", lane, "/tickets/password-change", () =>
      this.client.tickets
        .changePassword({ user_id: userId, ...(orgId ? { organization_id: orgId } : {}), ...(ttlSeconds ? { ttl_sec: ttlSeconds } : {}) })
        .withRawResponse(),
    );
    if (!ticket.ticket) throw new Auth0CallError("retryable", undefined, undefined, "Auth0 returned no ticket URL");
    return ticket.ticket;
  }

  async connectionId(name: string, lane: number): Promise<string> {
    const cached = this.connectionIds.get(name);
    if (cached) return cached;
    const page = await this.page("other", lane, "/connections", () => this.client.connections.list({ name, take: 50 }));
    const id = page.data.find((c) => c.name === name)?.id;
    if (!id) throw new Auth0CallError("fatal", 404, undefined, `Auth0 connection "${name}" does not exist in the tenant`);
    this.connectionIds.set(name, id);
    return id;
  }

  /**
   * Creates the Auth0 Organization for a slug, or adopts an existing one of the same name, and
   * makes sure the organization's connection is enabled on it. Safe to repeat. An enterprise
   * connection's users do not exist before their first login, so the bridge cannot add them as
   * members beforehand: there Auth0's auto-membership admits them, and the post-login hook decides.
   */
  async ensureOrganization(slug: string, displayName: string, connection: string, lane: number, autoMembership = false): Promise<string> {
    return this.exclusive(`org:${slug}`, async () => {
      let orgId: string | undefined;
      let currentName: string | undefined;
      try {
        const found = await this.call("orgsByName", lane, `/organizations/name/${slug}`, () => this.client.organizations.getByName(slug).withRawResponse());
        orgId = found.id;
        currentName = found.display_name;
      } catch (err) {
        if (!(err instanceof Auth0CallError) || err.kind !== "notFound") throw err;
      }
      if (!orgId) {
        try {
          orgId = (await this.call("orgsWrite", lane, "/organizations", () =>
            this.client.organizations.create({ name: slug, display_name: displayName }).withRawResponse(),
          )).id;
          currentName = displayName;
        } catch (err) {
          if (!(err instanceof Auth0CallError) || err.kind !== "conflict") throw err;
          orgId = (await this.call("orgsByName", lane, `/organizations/name/${slug}`, () => this.client.organizations.getByName(slug).withRawResponse())).id;
        }
      }
      if (orgId && currentName !== undefined && currentName !== displayName) {
        const id = orgId;
        await this.call("orgsWrite", lane, `/organizations/${id}`, () => this.client.organizations.update(id, { display_name: displayName }).withRawResponse());
      }
      if (!orgId) throw new Auth0CallError("fatal", undefined, undefined, `Auth0 returned no id for organization "${slug}"`);
      const connectionId = await this.connectionId(connection, lane);
      const page = await this.page("orgsRead", lane, `/organizations/${orgId}/enabled_connections`, () =>
        this.client.organizations.enabledConnections.list(orgId!, { per_page: 50 }),
      );
      const enabled = page.data.find((c) => c.connection_id === connectionId);
      if (!enabled) {
        try {
          await this.call("orgsWrite", lane, `/organizations/${orgId}/enabled_connections`, () =>
            this.client.organizations.enabledConnections.add(orgId!, { connection_id: connectionId, assign_membership_on_login: autoMembership }).withRawResponse(),
          );
        } catch (err) {
          if (!(err instanceof Auth0CallError) || err.kind !== "conflict") throw err;
        }
      } else if (autoMembership && enabled.assign_membership_on_login !== true) {
        // Switched to an enterprise connection: its users only become members at first login.
        await this.call("orgsWrite", lane, `/organizations/${orgId}/enabled_connections/${connectionId}`, () =>
          this.client.organizations.enabledConnections.update(orgId!, connectionId, { assign_membership_on_login: true }).withRawResponse(),
        );
      }
      return orgId;
    });
  }
}
