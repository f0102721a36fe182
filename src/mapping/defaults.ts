/**
 * Policy defaults per user model (docs/design.md, "What Auth0 sees") and the checks that a policy actually cuts access.
 * - isolated: the user belongs to this organization alone → block and revoke; deletion deletes.
 * - shared: the user may belong to other organizations → remove membership (roles first), and block
 *   tenant-wide only when no other organization still holds the user; deletion never deletes.
 */

export type BlockPolicy = "always" | "whenNoOtherOrganization" | "never";
export type RevokePolicy = "always" | "whenBlocked" | "never";
export type UserModel = "isolated" | "shared";
export type ConnectionType = "database" | "enterprise";

export interface DeprovisionPolicy {
  block: BlockPolicy;
  revokeSessions: RevokePolicy;
  removeMembership: boolean;
  removeRoles: boolean;
}
export interface DeletionPolicy extends DeprovisionPolicy {
  deleteUser: boolean;
}
export interface InvitationPolicy {
  send: boolean;
  ttlSeconds?: number;
}
export interface GuardPolicy {
  enabled: boolean;
  windowMinutes: number;
  percent: number;
  minUsers: number;
}
export interface FilledPolicies {
  deactivation: DeprovisionPolicy;
  deletion: DeletionPolicy;
  invitation: InvitationPolicy;
  massDeprovisionGuard: GuardPolicy;
}
export interface PoliciesInput {
  deactivation?: Partial<DeprovisionPolicy>;
  deletion?: Partial<DeletionPolicy>;
  invitation?: Partial<InvitationPolicy>;
  massDeprovisionGuard?: Partial<GuardPolicy>;
}

const defaults: Record<UserModel, FilledPolicies> = {
  isolated: {
    deactivation: { block: "always", revokeSessions: "always", removeMembership: false, removeRoles: false },
    deletion: {
      deleteUser: true,
      block: "always",
      revokeSessions: "always",
      removeMembership: false,
      removeRoles: false,
    },
    invitation: { send: false },
    massDeprovisionGuard: { enabled: true, windowMinutes: 60, percent: 10, minUsers: 10 },
  },
  shared: {
    deactivation: {
      block: "whenNoOtherOrganization",
      revokeSessions: "whenBlocked",
      removeMembership: true,
      removeRoles: true,
    },
    deletion: {
      deleteUser: false,
      block: "whenNoOtherOrganization",
      revokeSessions: "whenBlocked",
      removeMembership: true,
      removeRoles: true,
    },
    invitation: { send: false },
    massDeprovisionGuard: { enabled: true, windowMinutes: 60, percent: 10, minUsers: 10 },
  },
};

const defined = <T extends object>(o: T | undefined): Partial<T> =>
  Object.fromEntries(Object.entries(o ?? {}).filter(([, v]) => v !== undefined)) as Partial<T>;

export function fillPolicies(model: UserModel, input: PoliciesInput | undefined): FilledPolicies {
  const d = defaults[model];
  return {
    deactivation: { ...d.deactivation, ...defined(input?.deactivation) },
    deletion: { ...d.deletion, ...defined(input?.deletion) },
    invitation: { ...d.invitation, ...defined(input?.invitation) },
    massDeprovisionGuard: { ...d.massDeprovisionGuard, ...defined(input?.massDeprovisionGuard) },
  };
}

export interface PolicyProblem {
  path: (string | number)[];
  message: string;
}

/** Policies that would not do what their reader expects; each names the key to change. */
export function policyProblems(model: UserModel, connection: ConnectionType, p: FilledPolicies): PolicyProblem[] {
  const problems: PolicyProblem[] = [];
  const check = (name: "deactivation" | "deletion", policy: DeprovisionPolicy, deleteUser: boolean): void => {
    if (deleteUser) return;
    if (policy.block === "never" && !policy.removeMembership) {
      problems.push({
        path: [name],
        message: `${name} must cut access: set block or removeMembership${name === "deletion" ? " (or deleteUser)" : ""}; revoking sessions alone lets the user sign in again at once`,
      });
    }
    if (policy.block === "whenNoOtherOrganization" && !policy.removeMembership) {
      problems.push({
        path: [name, "removeMembership"],
        message:
          'block "whenNoOtherOrganization" needs removeMembership: true, or a user held by another organization keeps access to this one',
      });
    }
    if (policy.revokeSessions === "whenBlocked" && policy.block === "never") {
      problems.push({
        path: [name, "revokeSessions"],
        message: '"whenBlocked" never applies because block is "never"',
      });
    }
  };
  check("deactivation", p.deactivation, false);
  check("deletion", p.deletion, p.deletion.deleteUser);
  if (p.deletion.deleteUser && model === "shared") {
    problems.push({
      path: ["deletion", "deleteUser"],
      message:
        "a shared user may belong to other organizations: deleting it would remove it from all of them; use removeMembership",
    });
  }
  if (p.invitation.send && connection === "enterprise") {
    problems.push({
      path: ["invitation", "send"],
      message:
        "invitations are password-change tickets and need a database connection; enterprise users sign in at their IdP",
    });
  }
  return problems;
}
