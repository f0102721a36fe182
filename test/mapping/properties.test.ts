/** Property tests (fast-check): order independence of desired(), and plan() closing every gap. */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  appliedFromDesired,
  applyOperation,
  desired,
  parseMapping,
  plan,
  type AppliedState,
  type DesiredUser,
  type DirectoryGroup,
  type MappingInput,
  type Operation,
  type RoleRule,
} from "../../src/mapping/index.js";
import { fixtureUser } from "./helpers.js";

const groupNames = ["Eng-Admins", "Eng-Platform", "Support-L1", "Support-L2", "Contractors", "Finance", "IT"];
const roleNames = ["admin", "member", "viewer", "eng", "support"];
const users = [fixtureUser("okta-user"), fixtureUser("entra-user"), fixtureUser("entra-user-patched-roles")];

const matcher = fc.oneof(
  fc.constantFrom(...groupNames),
  fc.record({ glob: fc.constantFrom("Eng-*", "Support-L?", "*", "*-Admins", "F*") }),
  fc.record({ oneOf: fc.subarray(groupNames, { minLength: 1 }) }),
);
const condition = fc.oneof(
  fc.record({ group: fc.oneof(fc.constantFrom(...groupNames), fc.record({ displayName: matcher })) }),
  fc.record({
    scimRole: fc.oneof(
      fc.constantFrom("Admin", "Reviewer", "Reader.All"),
      fc.record({ glob: fc.constantFrom("Read*", "*") }),
    ),
  }),
  fc.record({
    attribute: fc.record({
      path: fc.constant("urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department"),
      equals: fc.constantFrom("Finance", "IT"),
    }),
  }),
);
const rule = (stop: fc.Arbitrary<boolean>): fc.Arbitrary<RoleRule> =>
  fc.record({ when: condition, grant: fc.subarray(roleNames, { minLength: 1 }), stop });
const groupArb: fc.Arbitrary<DirectoryGroup[]> = fc
  .subarray(groupNames)
  .map((names) => names.map((displayName, i) => ({ id: `g${i}`, displayName, externalId: `ext-${displayName}` })));

const mappingOf = (rules: RoleRule[]) =>
  parseMapping({
    connection: { name: "c" },
    userModel: "isolated",
    profile: { email: "userName" },
    app_metadata: { keys: { groups: { groups: "displayName" } } },
    roles: { rules, default: ["viewer"] },
  } satisfies MappingInput);

/** A permutation of `items` (fast-check shrinks it towards the original order). */
const permutation = <T>(items: T[]): fc.Arbitrary<T[]> =>
  fc.shuffledSubarray(items, { minLength: items.length, maxLength: items.length });

describe("desired does not depend on order", () => {
  it("of the user's groups", () => {
    fc.assert(
      fc.property(
        fc.array(rule(fc.boolean()), { maxLength: 6 }),
        groupArb.chain((g) => fc.tuple(fc.constant(g), permutation(g))),
        fc.constantFrom(...users),
        (rules, [groups, shuffled], user) => {
          const m = mappingOf(rules);
          expect(desired(m, user, shuffled, [])).toEqual(desired(m, user, groups, []));
        },
      ),
    );
  });

  it("of rules with equal precedence (rules between two stop rules)", () => {
    // Segments of non-stop rules, each ended by an optional stop rule; only rules inside a segment move.
    const segment = fc.tuple(
      fc.array(rule(fc.constant(false)), { maxLength: 4 }),
      fc.option(rule(fc.constant(true)), { nil: undefined }),
    );
    fc.assert(
      fc.property(
        fc
          .array(segment, { minLength: 1, maxLength: 3 })
          .chain((segments) =>
            fc.tuple(fc.constant(segments), fc.tuple(...segments.map(([free]) => permutation(free)))),
          ),
        groupArb,
        fc.constantFrom(...users),
        ([segments, shuffled], groups, user) => {
          const flatten = (frees: RoleRule[][]) =>
            segments.flatMap(([, stop], i) => [...frees[i]!, ...(stop ? [stop] : [])]);
          const original = flatten(segments.map(([free]) => free));
          const reordered = flatten(shuffled);
          expect(desired(mappingOf(reordered), user, groups, []).roles).toEqual(
            desired(mappingOf(original), user, groups, []).roles,
          );
        },
      ),
    );
  });
});

const jsonValue = fc.oneof(
  fc.constant(null),
  fc.string({ maxLength: 5 }),
  fc.integer(),
  fc.array(fc.string({ maxLength: 3 }), { maxLength: 3 }),
);
const profileArb = fc.record(
  {
    email: fc.option(fc.constantFrom("a@x.com", "b@y.org")),
    name: fc.option(fc.string({ maxLength: 5 })),
    nickname: fc.option(fc.constantFrom("n1", "n2")),
  },
  { requiredKeys: [] },
);
const metadataArb = fc.dictionary(fc.constantFrom("a", "b", "c", "d"), jsonValue, { maxKeys: 4 });

const desiredArb: fc.Arbitrary<DesiredUser> = fc
  .record({
    status: fc.constantFrom("provisioned", "deactivated", "held", "deleted"),
    connectionType: fc.constantFrom("database", "enterprise"),
    exists: fc.boolean(),
    member: fc.boolean(),
    blocked: fc.boolean(),
    revokeAccess: fc.boolean(),
    profile: profileArb,
    appMetadata: metadataArb,
    ownedAppMetadataKeys: fc.subarray(["a", "b", "c"]),
    roles: fc.subarray(roleNames),
    invite: fc.boolean(),
  })
  .map((r) => ({
    ...r,
    userId: "u1",
    directoryId: "d1",
    connection: "c",
    deleteUser: !r.exists,
    email: r.profile.email ?? null,
    emailAsSent: r.profile.email ?? null,
    unwritable: {},
    holdIds: [],
    problems: [],
  }));

const appliedArb: fc.Arbitrary<AppliedState> = fc.record({
  auth0UserId: fc.option(fc.constant("auth0|1")),
  exists: fc.boolean(),
  created: fc.boolean(),
  member: fc.boolean(),
  roles: fc.subarray(roleNames),
  blocked: fc.constantFrom(true, false, null),
  profile: profileArb,
  appMetadata: metadataArb,
  invited: fc.boolean(),
  accessRevoked: fc.boolean(),
  deleted: fc.boolean(),
  blockedOutside: fc.boolean(),
});

const canonicalOrder: Operation["type"][] = [
  "block",
  "revokeAccess",
  "removeRoles",
  "removeMember",
  "deleteUser",
  "createUser",
  "linkUser",
  "updateUser",
  "addMember",
  "addRoles",
  "unblock",
  "sendInvitation",
];

describe("plan", () => {
  it("plan(d, d fully applied) is empty for any desired state d", () => {
    fc.assert(
      fc.property(desiredArb, (d) => {
        expect(plan(d, appliedFromDesired(d))).toEqual([]);
      }),
    );
  });

  it("plan(d, d fully applied) is empty for desired states computed from real payloads", () => {
    fc.assert(
      fc.property(
        fc.array(rule(fc.boolean()), { maxLength: 4 }),
        groupArb,
        fc.constantFrom(...users),
        fc.boolean(),
        fc.boolean(),
        (rules, groups, user, active, held) => {
          const d = desired(mappingOf(rules), { ...user, active }, groups, held ? [{ id: "h", reason: "r" }] : []);
          expect(plan(d, appliedFromDesired(d))).toEqual([]);
        },
      ),
    );
  });

  it("applying plan(d, a) op by op to a leaves nothing to do", () => {
    fc.assert(
      fc.property(desiredArb, appliedArb, (d, a) => {
        const after = plan(d, a).reduce(
          (s, op) => applyOperation(s, op, { auth0UserId: "auth0|new", created: true }),
          a,
        );
        expect(plan(d, after)).toEqual([]);
      }),
    );
  });

  it("keeps the canonical order: access cuts first, unblock after membership and roles, each operation at most once", () => {
    fc.assert(
      fc.property(desiredArb, appliedArb, (d, a) => {
        const positions = plan(d, a).map((op) => canonicalOrder.indexOf(op.type));
        expect(positions).toEqual([...positions].sort((x, y) => x - y));
        expect(new Set(positions).size).toBe(positions.length);
      }),
    );
  });

  it("never unblocks a user that should be blocked, never blocks one that should not be", () => {
    fc.assert(
      fc.property(desiredArb, appliedArb, (d, a) => {
        const ops = plan(d, a).map((o) => o.type);
        if (d.blocked) expect(ops).not.toContain("unblock");
        else expect(ops).not.toContain("block");
      }),
    );
  });
});
