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
import { clone, nowIso, randomAlnum } from "./util.js";
import { ImportJobStore } from "./import-jobs.js";
import type { StoredPassword } from "./password-hashes.js";

export const DEFAULT_DATABASE_CONNECTION = "Username-Password-Authentication";

interface PendingIndexWrite {
  visibleAt: number;
  userId: string;
  doc: User | null;
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

  constructor(
    readonly plan: Plan,
    private readonly initialConnections: ConnectionSpec[],
    public searchDelayMs: number,
  ) {
    this.reset();
  }

  /** Issued access tokens survive a reset (they belong to the client, not to tenant data). */
  reset(): void {
    for (const map of [
      this.users, this.connections, this.organizations, this.roles, this.sessions, this.refreshTokens,
      this.members, this.memberRoles, this.enabledConnections, this.searchIndex, this.passwords,
    ]) map.clear();
    this.importJobs?.clear();
    this.revocations.length = 0;
    this.tickets.length = 0;
    this.pendingIndex = [];
    this.addConnection({ name: DEFAULT_DATABASE_CONNECTION, strategy: "auth0" });
    for (const spec of this.initialConnections) this.addConnection(spec);
  }

  addConnection(spec: ConnectionSpec): Connection {
    const existing = this.connectionByName(spec.name);
    if (existing) return existing;
    const connection = { id: spec.id ?? `con_${randomAlnum(16)}`, name: spec.name, strategy: spec.strategy };
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
    return [...(this.members.get(orgId) ?? [])];
  }

  memberRolesOf(orgId: string, userId: string): string[] {
    return [...(this.memberRoles.get(orgId)?.get(userId) ?? [])];
  }

  enabledConnectionsOf(orgId: string): EnabledConnection[] {
    return [...(this.enabledConnections.get(orgId)?.values() ?? [])];
  }

  sessionsOf(userId: string): Session[] {
    return [...this.sessions.values()].filter((s) => s.user_id === userId);
  }

  refreshTokensOf(userId: string): RefreshToken[] {
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

  removeMember(orgId: string, userId: string): void {
    this.members.get(orgId)?.delete(userId);
    // Auth0 ties organization roles to the membership: they go with it.
    this.memberRoles.get(orgId)?.delete(userId);
  }

  deleteOrganization(orgId: string): void {
    this.organizations.delete(orgId);
    this.members.delete(orgId);
    this.memberRoles.delete(orgId);
    this.enabledConnections.delete(orgId);
    for (const [id, role] of this.roles) if (role.owner_id === orgId) this.roles.delete(id);
  }

  revokeSessions(userId: string, via: string, onlySessionId?: string): number {
    let count = 0;
    for (const [id, s] of this.sessions) {
      if (s.user_id !== userId || (onlySessionId && id !== onlySessionId)) continue;
      this.sessions.delete(id);
      this.revocations.push({ kind: "session", id, user_id: userId, at: nowIso(), via });
      count++;
    }
    return count;
  }

  revokeRefreshTokens(userId: string, via: string, onlySessionId?: string): number {
    let count = 0;
    for (const [id, t] of this.refreshTokens) {
      if (t.user_id !== userId || (onlySessionId && t.session_id !== onlySessionId)) continue;
      this.refreshTokens.delete(id);
      this.revocations.push({ kind: "refresh_token", id, user_id: userId, at: nowIso(), via });
      count++;
    }
    return count;
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
    const nested = <V>(m: Map<string, Map<string, V>>) =>
      Object.fromEntries([...m].map(([k, inner]) => [k, Object.fromEntries([...inner].map(([ik, v]) => [ik, v instanceof Set ? [...v] : v]))]));
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
