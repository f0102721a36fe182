import { describe, expect, it } from "vitest";
import { compileGlob, globMatches } from "../../src/mapping/glob.js";
import { capture, compileCapture, maxCaptureInput, patternProblem } from "../../src/mapping/pattern.js";

describe("globs", () => {
  it.each([
    ["Eng-*", "Eng-Admins", true],
    ["Eng-*", "eng-admins", true],
    ["Eng-*", "Eng-", true],
    ["Eng-*", "Engineering", false],
    ["*-Admins", "Eng-Admins", true],
    ["*Admin*", "Org Administrators", true],
    ["Support-L?", "Support-L2", true],
    ["Support-L?", "Support-L12", false],
    ["a*b*c", "axxbyyc", true],
    ["a*b*c", "axxbyy", false],
    ["\\*literal", "*literal", true],
    ["\\*literal", "xliteral", false],
    ["100\\?", "100?", true],
    ["*", "", true],
    ["Ünïcødé-*", "ünïcødé-x", true],
  ])("%j matches %j: %s", (glob, text, expected) => {
    expect(globMatches(compileGlob(glob), text)).toBe(expected);
  });

  it("is case-sensitive on request", () => {
    expect(globMatches(compileGlob("Eng-*", true), "eng-admins")).toBe(false);
  });

  it("regex metacharacters in a glob are plain characters", () => {
    expect(globMatches(compileGlob("(a+)+.[x]"), "(a+)+.[x]")).toBe(true);
    expect(globMatches(compileGlob("(a+)+.[x]"), "aaa.x")).toBe(false);
  });

  it("stays fast on adversarial input (no regex, no backtracking blow-up)", () => {
    const glob = compileGlob(`${"*a".repeat(100)}b`);
    const started = performance.now();
    expect(globMatches(glob, "a".repeat(10_000))).toBe(false);
    expect(performance.now() - started).toBeLessThan(2_000);
  });
});

describe("capture patterns cannot backtrack catastrophically", () => {
  it.each([
    "^(a+)+$",
    "(a*)*",
    "(a|aa)+",
    "(x+x+)+y",
    "((ab)*)+",
    "(.*a){3}",
    "(?:a|b)*c",
    "(a)\\1",
    "(?<=a)b",
    "a(?!b)",
    ".*.*.*.*",
  ])("refuses %j", (pattern) => {
    expect(patternProblem(pattern)).not.toBeNull();
  });

  it.each([
    "^([^@]+)@",
    "^(\\w+)\\.(\\w+)@",
    "^[A-Z]{2}-(\\d{3,6})$",
    "(ab)+c",
    "^(?<local>[a-z0-9._-]{1,64})@",
    "a{2,32}b{0,5}",
    "\\p{L}+",
  ])("accepts %j", (pattern) => {
    expect(patternProblem(pattern)).toBeNull();
  });

  it("the worst accepted shape on the longest accepted input finishes quickly", () => {
    // Three unbounded repetitions over the same characters and a forced failure: polynomial, capped by the input limit.
    const p = compileCapture("^(.*)(.*)(.*)x$");
    const started = performance.now();
    expect(capture(p, "a".repeat(maxCaptureInput))).toBeNull();
    expect(performance.now() - started).toBeLessThan(2_000);
  });

  it("longer input is not matched at all", () => {
    const p = compileCapture("^(a+)b");
    expect(capture(p, `${"a".repeat(maxCaptureInput - 1)}b`)).not.toBeNull();
    expect(capture(p, `${"a".repeat(maxCaptureInput)}b`)).toBeNull();
  });
});
