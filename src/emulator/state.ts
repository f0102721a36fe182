/**
 * The emulated tenant, in memory. Route handlers mutate it; tests read it through EmulatorStateView.
 * reset() brings it back to what a new Auth0 tenant has (one database connection) plus the
 * connections declared at start.
 */
import type {
  Connection,
  ConnectionSpec,
  EmulatorStateView,
  EnabledConnection,
  Organization,
  Plan,
  RefreshToken,
  Revocation,
  Role,
  Session,
  Ticket,
  User,
} from "./types.js";
import { defaultOptions } from "./connection-options.js";
import { clone, nowIso, randomAlnum } from "./util.js";
import { ImportJobStore } from "./import-job-store.js";
import type { StoredPassword } from "./password-hashes.js";

export const DEFAULT_DATABASE_CONNECTION = "Username-Password-Authentication";

interface PendingIndexWrite {
  visibleAt: number;
  userId: string;
  doc: User | null;
}

/** A write Auth0 applies asynchronously: it shows once `at` has passed. */
interface PendingEffect {
  at: number;
  apply: () => void;
  /** Lets a later write cancel it (a member added again before its removal showed). */
  key?: string;
}

export interface IssuedToken {
  clientId: string;
  expiresAt: number;
}

export class EmulatorState implements EmulatorStateView {
  readonly users = new Map<string, User>();
  readonly connections = new Map<string, Connection>();
  readonly organizations = new Map<string, Organization>();
  readonly roles = new Map<string, Role>();
  readonly sessions = new Map<string, Session>();
  readonly refreshTokens = new Map<string, RefreshToken>();
  readonly revocations: Revocation[] = [];
  readonly tickets: Ticket[] = [];
  readonly tokens = new Map<string, IssuedToken>();
  /** orgId → user ids (a Set keeps insertion order). */
  readonly members = new Map<string, Set<string>>();
  /** orgId → userId → role ids. */
  readonly memberRoles = new Map<string, Map<string, Set<string>>>();
  /** orgId → connection id → settings. */
  readonly enabledConnections = new Map<string, Map<string, EnabledConnection>>();
  /** Database users' passwords (imported hashes or Management API passwords), never in clear. */
  readonly passwords = new Map<string, StoredPassword>();
  /** User import jobs (POST /jobs/users-imports). */
  readonly importJobs = new ImportJobStore();
  /** What GET /users sees: a copy of users that lags writes by searchDelayMs. */
  private readonly searchIndex = new Map<string, User>();
  private pendingIndex: PendingIndexWrite[] = [];
  /** Member removals and session / refresh-token deletions not yet visible (asyncDelayMs). */
  private pendingEffects: PendingEffect[] = [];
  private effectTimer: NodeJS.Timeout | undefined;
  /** userId → digests of the passwords set so far, newest last (password_history). */
  readonly passwordDigests = new Map<string, string[]>();

  constructor(
    readonly plan: Plan,
    private readonly initialConnections: ConnectionSpec[],
    public searchDelayMs: number,
    public asyncDelayMs = 0,
  ) {
    this.reset();
  }

  /** Issued access tokens survive a reset (they belong to the client, not to tenant data). */
  reset(): void {
    for (const map of [
      this.users,
      this.connections,
      this.organizations,
      this.roles,
      this.sessions,
      this.refreshTokens,
      this.members,
      this.memberRoles,
      this.enabledConnections,
      this.searchIndex,
      this.passwords,
    ])
      map.clear();
    this.importJobs?.clear();
    this.revocations.length = 0;
    this.tickets.length = 0;
    this.pendingIndex = [];
    this.pendingEffects = [];
    this.passwordDigests.clear();
    if (this.effectTimer) clearTimeout(this.effectTimer);
    this.effectTimer = undefined;
    this.addConnection({ name: DEFAULT_DATABASE_CONNECTION, strategy: "auth0" });
    for (const spec of this.initialConnections) this.addConnection(spec);
  }

  addConnection(spec: ConnectionSpec): Connection {
    const existing = this.connectionByName(spec.name);
    if (existing) return existing;
    const connection: Connection = {
      id: spec.id ?? `con_${randomAlnum(16)}`,
      name: spec.name,
      strategy: spec.strategy,
      options: spec.options ? structuredClone(spec.options) : defaultOptions(spec.strategy),
    };
    this.connections.set(connection.id, connection);
    return connection;
  }

  connectionByName(name: string): Connection | undefined {
    for (const c of this.connections.values()) if (c.name === name) return c;
    return undefined;
  }

  organizationByName(name: string): Organization | undefined {
    for (const o of this.organizations.values()) if (o.name === name) return o;
    return undefined;
  }

  /** Exact, case-sensitive match (GET /users-by-email). */
  usersByEmail(email: string): User[] {
    return [...this.users.values()].filter((u) => u.email === email);
  }

  membersOf(orgId: string): string[] {
    this.settle();
    return [...(this.members.get(orgId) ?? [])];
  }

  memberRolesOf(orgId: string, userId: string): string[] {
    this.settle();
    return [...(this.memberRoles.get(orgId)?.get(userId) ?? [])];
  }

  enabledConnectionsOf(orgId: string): EnabledConnection[] {
    return [...(this.enabledConnections.get(orgId)?.values() ?? [])];
  }

  sessionsOf(userId: string): Session[] {
    this.settle();
    return [...this.sessions.values()].filter((s) => s.user_id === userId);
  }

  refreshTokensOf(userId: string): RefreshToken[] {
    this.settle();
    return [...this.refreshTokens.values()].filter((t) => t.user_id === userId);
  }

  hasActiveAccess(userId: string): boolean {
    return this.sessionsOf(userId).length > 0 || this.refreshTokensOf(userId).length > 0;
  }

  // --- writes used by handlers -------------------------------------------------------------

  /** Store a user and queue it for the search index. */
  saveUser(user: User): void {
    this.users.set(user.user_id, user);
    this.queueIndex(user.user_id, clone(user));
  }

  deleteUser(userId: string): void {
    this.users.delete(userId);
    this.passwords.delete(userId);
    for (const members of this.members.values()) members.delete(userId);
    for (const roles of this.memberRoles.values()) roles.delete(userId);
    for (const [id, s] of this.sessions) if (s.user_id === userId) this.sessions.delete(id);
    for (const [id, t] of this.refreshTokens) if (t.user_id === userId) this.refreshTokens.delete(id);
    this.queueIndex(userId, null);
  }

  /** Shows after asyncDelayMs ("Remove members from organizations": approximately 5–10 seconds). */
  removeMember(orgId: string, userId: string): void {
    this.defer(() => {
      this.members.get(orgId)?.delete(userId);
      // Auth0 ties organization roles to the membership: they go with it.
      this.memberRoles.get(orgId)?.delete(userId);
    }, `member:${orgId}:${userId}`);
  }

  /** A member added again cancels a removal that has not shown yet. */
  addMember(orgId: string, userId: string): void {
    this.settle();
    this.pendingEffects = this.pendingEffects.filter((e) => e.key !== `member:${orgId}:${userId}`);
    let set = this.members.get(orgId);
    if (!set) this.members.set(orgId, (set = new Set()));
    set.add(userId);
  }

  deleteOrganization(orgId: string): void {
    this.organizations.delete(orgId);
    this.members.delete(orgId);
    this.memberRoles.delete(orgId);
    this.enabledConnections.delete(orgId);
    for (const [id, role] of this.roles) if (role.owner_id === orgId) this.roles.delete(id);
  }

  /**
   * Deletes the user's sessions (all, or one) as they are now; Auth0 applies session deletion
   * asynchronously, so the effect (and its revocation record) shows after asyncDelayMs.
   */
  revokeSessions(userId: string, via: string, onlySessionId?: string): number {
    this.settle();
    const ids = [...this.sessions.values()]
      .filter((s) => s.user_id === userId && (!onlySessionId || s.id === onlySessionId))
      .map((s) => s.id);
    this.defer(() => {
      for (const id of ids) {
        if (!this.sessions.delete(id)) continue;
        this.revocations.push({ kind: "session", id, user_id: userId, at: nowIso(), via });
      }
    });
    return ids.length;
  }

  revokeRefreshTokens(userId: string, via: string, onlySessionId?: string): number {
    this.settle();
    const ids = [...this.refreshTokens.values()]
      .filter((t) => t.user_id === userId && (!onlySessionId || t.session_id === onlySessionId))
      .map((t) => t.id);
    this.defer(() => {
      for (const id of ids) {
        if (!this.refreshTokens.delete(id)) continue;
        this.revocations.push({ kind: "refresh_token", id, user_id: userId, at: nowIso(), via });
      }
    });
    return ids.length;
  }

  // --- asynchronous effects -------------------------------------------------------------------

  private defer(apply: () => void, key?: string): void {
    if (this.asyncDelayMs <= 0) {
      this.settle();
      apply();
      return;
    }
    this.pendingEffects.push({ at: Date.now() + this.asyncDelayMs, apply, ...(key ? { key } : {}) });
    this.armTimer();
  }

  /** Apply every effect whose time has come (readers and each API call settle first). */
  settle(now = Date.now()): void {
    if (this.pendingEffects.length === 0) return;
    const due = this.pendingEffects.filter((e) => e.at <= now);
    if (due.length === 0) return;
    this.pendingEffects = this.pendingEffects.filter((e) => e.at > now);
    for (const effect of due) effect.apply();
  }

  /** A timer so that the maps themselves change on time, even when nobody reads through settle(). */
  private armTimer(): void {
    if (this.effectTimer) clearTimeout(this.effectTimer);
    if (this.pendingEffects.length === 0) return;
    const next = Math.min(...this.pendingEffects.map((e) => e.at));
    this.effectTimer = setTimeout(
      () => {
        this.effectTimer = undefined;
        this.settle();
        this.armTimer();
      },
      Math.max(0, next - Date.now()),
    );
    this.effectTimer.unref();
  }

  /** The users GET /users can see now (eventually consistent when searchDelayMs > 0). */
  searchableUsers(now = Date.now()): User[] {
    this.flushIndex(now);
    return [...this.searchIndex.values()];
  }

  /** Applies the index writes that are due (without copying the index: bulk imports call this per user). */
  private flushIndex(now: number): void {
    const still: PendingIndexWrite[] = [];
    for (const write of this.pendingIndex) {
      if (write.visibleAt > now) {
        still.push(write);
      } else if (write.doc) {
        this.searchIndex.set(write.userId, write.doc);
      } else {
        this.searchIndex.delete(write.userId);
      }
    }
    this.pendingIndex = still;
  }

  private queueIndex(userId: string, doc: User | null): void {
    this.pendingIndex.push({ visibleAt: Date.now() + this.searchDelayMs, userId, doc });
    if (this.searchDelayMs <= 0) this.flushIndex(Date.now());
  }

  /** A JSON dump of the whole tenant (GET /__emulator/state). */
  dump(): Record<string, unknown> {
    this.settle();
    const nested = <V>(m: Map<string, Map<string, V>>) =>
      Object.fromEntries(
        [...m].map(([k, inner]) => [
          k,
          Object.fromEntries([...inner].map(([ik, v]) => [ik, v instanceof Set ? [...v] : v])),
        ]),
      );
    return {
      plan: this.plan,
      connections: [...this.connections.values()],
      users: [...this.users.values()],
      organizations: [...this.organizations.values()],
      enabled_connections: nested(this.enabledConnections),
      members: Object.fromEntries([...this.members].map(([k, v]) => [k, [...v]])),
      member_roles: nested(this.memberRoles),
      roles: [...this.roles.values()],
      sessions: [...this.sessions.values()],
      refresh_tokens: [...this.refreshTokens.values()],
      revocations: this.revocations,
      tickets: this.tickets,
    };
  }
}
