import { Auth0CallError } from "../auth0/errors.js";
import type { Auth0Gateway, ConnectionInfo } from "../auth0/gateway.js";
import { laneOf, type LaneArg } from "../auth0/rate-limiter.js";
import type { AppMetadata, Operation, OperationResult, Profile } from "../mapping/index.js";
import type { InvitationDelivery } from "./invitations.js";
import type { MembershipBatcher } from "./membership-batcher.js";
import { throwawayPassword } from "./password.js";

export interface ExecuteContext {
  gateway: Auth0Gateway;
  batcher: MembershipBatcher;
  /** Where invitations go; without it an invitation is skipped with a note. */
  invitations?: InvitationDelivery;
  organization: { id: string; slug: string };
  userId: string;
  auth0OrgId: string;
  /** The Auth0 user id the plan acts on (null before create/link). */
  auth0UserId: string | null;
  lane: LaneArg;
  /** The mapped connection as read from Auth0 (password policy for createUser). */
  connection?: ConnectionInfo;
}

/** What happened beyond the applied-state change, for the user's sync notes. */
export interface ExecutedOperation extends OperationResult {
  note?: string;
  /** Nothing was done and nothing can be until the configuration changes: stop this plan here. */
  skipped?: boolean;
}

function minLengthOf(connection: ConnectionInfo | undefined): number | undefined {
  const options = connection?.passwordOptions?.password_complexity_options;
  const min = options && typeof options === "object" ? (options as Record<string, unknown>).min_length : undefined;
  return typeof min === "number" ? min : undefined;
}

/** Drops null values: a create has nothing to clear. */
const withoutNulls = <V>(o: Record<string, V | null>): Record<string, V> =>
  Object.fromEntries(Object.entries(o).filter(([, v]) => v !== null)) as Record<string, V>;

function updateBody(profile: Profile, appMetadata: AppMetadata): Record<string, unknown> {
  const body: Record<string, unknown> = { ...profile };
  if (Object.keys(appMetadata).length > 0) body.app_metadata = appMetadata;
  return body;
}

function requireUserId(ctx: ExecuteContext, op: Operation): string {
  if (!ctx.auth0UserId)
    throw new Auth0CallError("fatal", undefined, undefined, `cannot ${op.type}: the user has no Auth0 id yet`);
  return ctx.auth0UserId;
}

/**
 * Runs one planned operation against Auth0 (docs/design.md, "What Auth0 sees"); idempotent, so a
 * replay after a crash is harmless.
 */
export async function executeOperation(op: Operation, ctx: ExecuteContext): Promise<ExecutedOperation> {
  const { gateway, lane } = ctx;
  switch (op.type) {
    case "createUser": {
      // POST first: Auth0 answers 409 when the email already exists in the connection (a user made
      // outside the bridge, or our own POST whose result a crash lost), and only then do we look it
      // up and adopt it. That keeps a normal create to one call, and never makes a twin.
      const rules = {
        ...(minLengthOf(ctx.connection) !== undefined ? { minLength: minLengthOf(ctx.connection)! } : {}),
        personalInfo: [op.email, ...Object.values(op.profile)],
      };
      const create = () =>
        gateway.createUser(
          {
            connection: op.connection,
            email: op.email,
            ...withoutNulls(op.profile),
            app_metadata: withoutNulls(op.appMetadata),
            password: throwawayPassword(rules),
            email_verified: false,
            verify_email: false,
          },
          lane,
        );
      try {
        let created;
        try {
          created = await create();
        } catch (err) {
          // A policy the generator does not know of (a newer flexible policy): once more with a fresh one.
          if (!(err instanceof Auth0CallError) || err.kind !== "weakPassword") throw err;
          created = await create();
        }
        return { auth0UserId: created.user_id, created: true };
      } catch (err) {
        if (!(err instanceof Auth0CallError) || err.kind !== "conflict") throw err;
        const existing = await gateway.findUsersByEmail(op.email, op.connection, lane, true);
        if (!existing[0]) throw err;
        await gateway.updateUser(existing[0].user_id, updateBody(op.profile, op.appMetadata), lane);
        return {
          auth0UserId: existing[0].user_id,
          created: false,
          blocked: existing[0].blocked === true,
          note: "adopted an existing Auth0 user with this email",
        };
      }
    }
    case "linkUser": {
      // An enterprise user who already signed in is linked now, so that roles land and a
      // deactivation can block it; one who has not appears at the first login.
      const found = await gateway.findUsersByEmail(op.email, op.connection, lane);
      return found[0] ? { auth0UserId: found[0].user_id, blocked: found[0].blocked === true } : { auth0UserId: null };
    }
    case "updateUser":
      await gateway.updateUser(requireUserId(ctx, op), updateBody(op.profile, op.appMetadata), lane);
      return {};
    case "addMember":
      await ctx.batcher.add(ctx.auth0OrgId, requireUserId(ctx, op), laneOf(lane));
      return {};
    case "removeMember":
      await ctx.batcher.remove(ctx.auth0OrgId, requireUserId(ctx, op), laneOf(lane));
      return {};
    case "addRoles":
      await gateway.assignMemberRoles(ctx.auth0OrgId, requireUserId(ctx, op), op.roles, lane);
      return {};
    case "removeRoles":
      await gateway.removeMemberRoles(ctx.auth0OrgId, requireUserId(ctx, op), op.roles, lane);
      return {};
    case "block":
      await gateway.updateUser(requireUserId(ctx, op), { blocked: true }, lane);
      return {};
    case "unblock":
      await gateway.updateUser(requireUserId(ctx, op), { blocked: false }, lane);
      return {};
    case "revokeAccess": {
      const result = await gateway.revokeAccess(requireUserId(ctx, op), lane);
      return result.revoked ? {} : { note: result.reason };
    }
    case "deleteUser":
      await gateway.deleteUser(requireUserId(ctx, op), lane);
      return {};
    case "sendInvitation": {
      if (!ctx.invitations) {
        return {
          skipped: true,
          note: "the mapping asks for an invitation, but INVITATION_WEBHOOK_URL is not set: none was sent",
        };
      }
      const auth0UserId = requireUserId(ctx, op);
      // The ticket URL is a credential: handed to the mailer once, neither stored nor logged.
      const ticketUrl = await gateway.passwordChangeTicket(auth0UserId, ctx.auth0OrgId, lane, op.ttlSeconds);
      await ctx.invitations.deliver({
        email: op.email,
        ticketUrl,
        organization: { id: ctx.organization.id, slug: ctx.organization.slug, auth0OrgId: ctx.auth0OrgId },
        userId: ctx.userId,
        auth0UserId,
        expiresAt: Math.floor(Date.now() / 1000) + (op.ttlSeconds ?? 432_000),
      });
      return {};
    }
  }
}
