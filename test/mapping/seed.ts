/** Seeds organizations, directories, users, groups and holds through direct inserts (db/schema.ts). */
import {
  directories,
  groupMembers,
  groups,
  holds,
  organizations,
  userEmails,
  users,
  userSync,
} from "../../db/schema.js";
import { openDatabase, type OpenDatabase } from "../../src/directory/database.js";

export const openMemoryDb = (): OpenDatabase => openDatabase("sqlite::memory:");

type Db = OpenDatabase["db"];

export function seedOrganization(
  db: Db,
  slug: string,
  userModel: "isolated" | "shared" = "isolated",
): { orgId: string; dirId: string } {
  const orgId = `org-${slug}`;
  const dirId = `dir-${slug}`;
  db.insert(organizations)
    .values({ id: orgId, slug, displayName: slug, userModel, connection: `${slug}-db`, createdAt: 1, updatedAt: 1 })
    .run();
  db.insert(directories).values({ id: dirId, organizationId: orgId, name: "idp", createdAt: 1 }).run();
  return { orgId, dirId };
}

export interface SeedUser {
  id: string;
  resource: Record<string, unknown>;
  active?: boolean;
  deleted?: boolean;
  groups?: string[];
}

export function seedUsers(db: Db, dirId: string, list: SeedUser[]): void {
  const groupIds = new Map<string, string>();
  for (const u of list) {
    const userName = String(u.resource.userName);
    db.insert(users)
      .values({
        id: u.id,
        directoryId: dirId,
        userName,
        userNameLower: userName.toLowerCase(),
        active: u.active ?? true,
        resource: JSON.stringify(u.resource),
        version: 1,
        createdAt: 1,
        modifiedAt: 1,
        deletedAt: u.deleted ? 2 : null,
      })
      .run();
    const emails = Array.isArray(u.resource.emails)
      ? (u.resource.emails as { value: string; primary?: boolean }[])
      : [];
    emails.forEach((e, position) =>
      db
        .insert(userEmails)
        .values({
          userId: u.id,
          directoryId: dirId,
          position,
          valueLower: e.value.toLowerCase(),
          primary: e.primary === true,
        })
        .run(),
    );
    for (const name of u.groups ?? []) {
      let groupId = groupIds.get(name);
      if (!groupId) {
        groupId = `${dirId}-g-${name}`;
        groupIds.set(name, groupId);
        db.insert(groups)
          .values({
            id: groupId,
            directoryId: dirId,
            displayName: name,
            displayNameLower: name.toLowerCase(),
            resource: "{}",
            version: 1,
            createdAt: 1,
            modifiedAt: 1,
          })
          .run();
      }
      db.insert(groupMembers)
        .values({ groupId, memberId: u.id, directoryId: dirId, memberType: "User", addedAt: 1 })
        .run();
    }
  }
}

export function placeHold(db: Db, orgId: string, dirId: string, userId: string, released = false): void {
  db.insert(holds)
    .values({
      id: `hold-${userId}`,
      organizationId: orgId,
      directoryId: dirId,
      userId,
      reason: "review",
      placedBy: "operator:test",
      placedAt: 1,
      releasedAt: released ? 2 : null,
      releasedBy: released ? "operator:test" : null,
    })
    .run();
}

export const scimUser = (local: string, extra: Record<string, unknown> = {}): Record<string, unknown> => ({
  userName: `${local}@acme.test`,
  name: { givenName: local, familyName: "Test" },
  emails: [{ value: `${local}@acme.test`, primary: true, type: "work" }],
  ...extra,
});

/** Records that the bridge linked a directory user to an Auth0 user and made it an unblocked member. */
export function linkUser(db: Db, orgId: string, dirId: string, userId: string, auth0UserId: string): void {
  const applied = {
    auth0UserId,
    exists: true,
    created: true,
    member: true,
    roles: [],
    blocked: false,
    profile: {},
    appMetadata: {},
    invited: false,
    accessRevoked: false,
    deleted: false,
  };
  db.insert(userSync)
    .values({
      userId,
      directoryId: dirId,
      organizationId: orgId,
      auth0UserId,
      applied: JSON.stringify(applied),
      appliedAt: 1,
    })
    .run();
}
