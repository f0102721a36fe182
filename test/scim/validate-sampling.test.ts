import fc from "fast-check";
import SCIMMY from "scimmy";
import { describe, expect, it } from "vitest";
import { isBridgeError } from "../../src/errors.js";
import { userSchema } from "../../src/scim/schema.js";
import { validateDocument } from "../../src/scim/validate.js";

/**
 * validateDocument asks scimmy about one value of each shape of a multi-valued attribute, not every
 * value; what it stores and what it refuses must be what asking about every value gives.
 */
function everyValueAsked(document: Record<string, unknown>): { ok: unknown } | { error: string } {
  try {
    const rs = userSchema;
    const schemas = [rs.core.urn, ...rs.extensions.filter((e) => document[e.urn] !== undefined).map((e) => e.urn)];
    const coerced = rs.definition.coerce({ ...document, schemas }, "in");
    const plain = JSON.parse(JSON.stringify(coerced)) as Record<string, unknown>;
    delete plain.schemas;
    delete plain.meta;
    delete plain.id;
    return { ok: plain };
  } catch (err) {
    if (err instanceof SCIMMY.Types.Error || err instanceof TypeError) return { error: err.message };
    throw err;
  }
}

function sampled(document: Record<string, unknown>): { ok: unknown } | { error: string } {
  try {
    return { ok: validateDocument(userSchema, document) };
  } catch (err) {
    if (isBridgeError(err)) return { error: err.message };
    throw err;
  }
}

/** Drops what prune drops, so that both sides compare as stored. */
const pruned = (v: unknown): unknown => {
  if (Array.isArray(v)) {
    const items = v.map(pruned).filter((x) => x !== undefined);
    return items.length > 0 ? items : undefined;
  }
  if (typeof v === "object" && v !== null) {
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v)) {
      const p = pruned(x);
      if (p !== undefined) out[k] = p;
    }
    return Object.keys(out).length > 0 ? out : undefined;
  }
  return v === null ? undefined : v;
};

const scalar = fc.oneof(
  fc.string({ maxLength: 6 }),
  fc.boolean(),
  fc.integer(),
  fc.constant(null),
  fc.constant([]),
  fc.constant({}),
);
// Mostly well-formed values of few shapes (so that many share one), some of every other kind.
const text = fc.constantFrom("a", "B", "");
const element = fc.oneof(
  {
    weight: 30,
    arbitrary: fc.record({ value: text, type: text, primary: fc.boolean(), display: text }, { requiredKeys: [] }),
  },
  fc.record(
    { value: scalar, type: scalar, primary: scalar, display: scalar, Value: scalar, unknown: scalar },
    { requiredKeys: [] },
  ),
  fc.string({ maxLength: 4 }),
  fc.integer(),
);

describe("validateDocument's sampling of multi-valued values", () => {
  it("stores and refuses exactly what asking scimmy about every value does", () => {
    fc.assert(
      fc.property(fc.array(element, { maxLength: 8 }), fc.array(element, { maxLength: 8 }), (emails, roles) => {
        const document = { userName: "someone", emails, roles };
        const expected = everyValueAsked(document);
        const actual = sampled(document);
        if ("error" in expected) {
          expect(actual).toHaveProperty("error");
          expect((actual as { error: string }).error).toBe(expected.error);
        } else expect(actual).toEqual({ ok: pruned(expected.ok) ?? {} });
      }),
      { numRuns: 500 },
    );
  });

  it("keeps a hundred emails in order, each as sent", () => {
    const emails = Array.from({ length: 100 }, (_, i) => ({
      value: `u${i}@example.com`,
      ...(i % 3 === 0 ? { type: "work" } : {}),
      ...(i === 7 ? { primary: true } : {}),
    }));
    expect(validateDocument(userSchema, { userName: "u", emails }).emails).toEqual(emails);
  });

  it("refuses a wrongly typed value however far down the list it is", () => {
    const emails: unknown[] = Array.from({ length: 50 }, (_, i) => ({ value: `u${i}@example.com` }));
    emails.push({ value: 42 });
    expect(() => validateDocument(userSchema, { userName: "u", emails })).toThrow(
      /'value' expected value type 'string'/,
    );
  });
});
