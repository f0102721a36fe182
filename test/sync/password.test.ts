/**
 * The throwaway password of a new database user must pass whatever password policy the connection
 * has, or Auth0 answers 400 PasswordStrengthError and the user is never created. Checked against
 * the emulator's implementation of Auth0's policies (up to "excellent", minimum lengths, the
 * dictionary, no personal data, and the flexible policy's identical/sequential character blocks).
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { passwordPolicyViolations, type ConnectionOptions, type PasswordOwner } from "../../src/emulator/index.js";
import { throwawayPassword } from "../../src/sync/password.js";

const text = fc.string({ minLength: 1, maxLength: 12 });
const owner: fc.Arbitrary<PasswordOwner> = fc.record(
  {
    email: fc
      .tuple(fc.stringMatching(/^[A-Za-z0-9._-]{1,12}$/), fc.constantFrom("example.com", "acme.test"))
      .map(([l, d]) => `${l}@${d}`),
    name: text,
    given_name: text,
    family_name: text,
    nickname: text,
    username: fc.stringMatching(/^[a-z0-9]{1,15}$/),
  },
  { requiredKeys: ["email"] },
);

const classicOptions: fc.Arbitrary<ConnectionOptions> = fc.record(
  {
    passwordPolicy: fc.constantFrom("none", "low", "fair", "good", "excellent"),
    password_complexity_options: fc.record({ min_length: fc.integer({ min: 1, max: 72 }) }),
    password_dictionary: fc.record({
      enable: fc.boolean(),
      dictionary: fc.array(fc.string({ maxLength: 20 }), { maxLength: 5 }),
    }),
    password_no_personal_info: fc.record({ enable: fc.boolean() }),
  },
  { requiredKeys: ["passwordPolicy"] },
);

const flexibleOptions: fc.Arbitrary<ConnectionOptions> = fc.record({
  password_options: fc.record({
    complexity: fc.record({
      min_length: fc.integer({ min: 1, max: 72 }),
      character_types: fc.subarray(["lowercase", "uppercase", "number", "special"]),
      character_type_rule: fc.constantFrom("all", "three_of_four"),
      identical_characters: fc.constantFrom("allow", "block"),
      sequential_characters: fc.constantFrom("allow", "block"),
      max_length_exceeded: fc.constantFrom("truncate", "error"),
    }),
    dictionary: fc.record({ active: fc.boolean(), custom: fc.array(fc.string({ maxLength: 20 }), { maxLength: 5 }) }),
    profile_data: fc.record({ active: fc.boolean() }),
  }),
});

const minLengthOf = (o: ConnectionOptions): number | undefined =>
  o.password_complexity_options?.min_length ??
  (o.password_options as { complexity?: { min_length?: number } } | undefined)?.complexity?.min_length;

describe("throwaway password", () => {
  it("passes every password policy a database connection can have (classic levels up to excellent, dictionary, personal data)", () => {
    fc.assert(
      fc.property(classicOptions, owner, (options, user) => {
        const min = minLengthOf(options);
        const password = throwawayPassword({
          ...(min !== undefined ? { minLength: min } : {}),
          personalInfo: Object.values(user),
        });
        expect(passwordPolicyViolations(password, options, user)).toEqual([]);
      }),
      { numRuns: 500 },
    );
  });

  it("passes the flexible policy: every character kind, no identical or sequential runs, at most 72 bytes", () => {
    fc.assert(
      fc.property(flexibleOptions, owner, (options, user) => {
        const min = minLengthOf(options);
        const password = throwawayPassword({
          ...(min !== undefined ? { minLength: min } : {}),
          personalInfo: Object.values(user),
        });
        expect(passwordPolicyViolations(password, options, user)).toEqual([]);
        expect(Buffer.byteLength(password)).toBeLessThanOrEqual(72);
      }),
      { numRuns: 500 },
    );
  });

  it("is a fresh random value every time", () => {
    const seen = new Set(Array.from({ length: 200 }, () => throwawayPassword()));
    expect(seen.size).toBe(200);
  });
});
