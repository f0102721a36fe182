/**
 * Role rules → organization role names.
 *
 * Rules are read top to bottom. Every matching rule adds its roles; a matching rule with
 * `stop: true` ends the evaluation, so it takes precedence over every rule below it. Rules between
 * two stop rules therefore have equal precedence and their order does not matter, and neither does
 * the order of the user's groups. When no rule matches, the default roles apply.
 */
import { compileGlob, globMatches } from "./glob.js";
import { getAttribute, resolveScimPath } from "./scim-path.js";
import type { RoleCondition, RoleRule } from "./schema.js";
import type { Matcher } from "./source-schema.js";
import type { SourceInput } from "./transforms.js";
import { cachedPath, textOf } from "./transforms.js";
import { isRecord, sortedUnique } from "./types.js";

type TextTest = (text: string) => boolean;
type ConditionTest = (input: SourceInput) => boolean;

function compileMatcher(m: Matcher): TextTest {
  if (typeof m === "string") {
    const want = m.toLowerCase();
    return (text) => text.toLowerCase() === want;
  }
  const fold = m.caseSensitive === true ? (s: string) => s : (s: string) => s.toLowerCase();
  if ("glob" in m) {
    const glob = compileGlob(m.glob, m.caseSensitive === true);
    return (text) => globMatches(glob, text);
  }
  const wanted = new Set(("equals" in m ? [m.equals] : m.oneOf).map(fold));
  return (text) => wanted.has(fold(text));
}

/**
 * The names a SCIM role entry answers to: its value and display. Entra's default (non-aadOptscim062020)
 * PATCH sends an app role as a JSON string in `value`: {"id":…,"value":"25","displayName":"Role1234"}
 * (Entra "customize application attributes", AppRoleAssignmentsComplex), so that form is decoded.
 */
export function scimRoleNames(role: unknown): string[] {
  if (typeof role === "string") return [role];
  if (!isRecord(role)) return [];
  const names: string[] = [];
  const value = getAttribute(role, "value");
  if (typeof value === "string" && value.trimStart().startsWith("{")) {
    try {
      const decoded: unknown = JSON.parse(value);
      if (isRecord(decoded)) {
        for (const k of ["value", "displayName"]) {
          const v = decoded[k];
          if (typeof v === "string" && v !== "") names.push(v);
        }
      }
    } catch {
      names.push(value);
    }
  } else if (typeof value === "string" && value !== "") names.push(value);
  const display = getAttribute(role, "display");
  if (typeof display === "string" && display !== "") names.push(display);
  return names;
}

const looseEquals = (actual: unknown, expected: unknown, caseSensitive: boolean): boolean => {
  if (typeof expected === "boolean") return textOf(actual)?.toLowerCase() === String(expected);
  if (expected === null) return actual === null;
  const a = textOf(actual);
  const e = String(expected);
  return a !== null && (caseSensitive ? a === e : a.toLowerCase() === e.toLowerCase());
};

function compileLeaf(c: Omit<RoleCondition, "anyOf">): ConditionTest {
  const tests: ConditionTest[] = [];
  if (c.group !== undefined) {
    const g = typeof c.group === "string" ? { displayName: c.group } : c.group;
    const byName = g.displayName === undefined ? undefined : compileMatcher(g.displayName);
    const byExternalId = g.externalId === undefined ? undefined : compileMatcher(g.externalId);
    tests.push((input) =>
      input.groups.some(
        (group) =>
          (!byName || byName(group.displayName)) &&
          (!byExternalId || (typeof group.externalId === "string" && byExternalId(group.externalId))),
      ),
    );
  }
  if (c.scimRole !== undefined) {
    const test = compileMatcher(c.scimRole);
    tests.push((input) => {
      const roles = getAttribute(input.resource, "roles");
      return Array.isArray(roles) && roles.some((role) => scimRoleNames(role).some(test));
    });
  }
  if (c.attribute !== undefined) {
    const a = c.attribute;
    const path = cachedPath(a.path);
    const caseSensitive = a.caseSensitive === true;
    const glob = a.glob === undefined ? undefined : compileGlob(a.glob, caseSensitive);
    const valueTest = (v: unknown): boolean => {
      if (glob) {
        const text = textOf(v);
        return text !== null && globMatches(glob, text);
      }
      if (a.oneOf) return a.oneOf.some((e) => looseEquals(v, e, caseSensitive));
      return looseEquals(v, a.equals, caseSensitive);
    };
    tests.push((input) => {
      const values = resolveScimPath(input.resource, path).values.filter((v) => v !== "");
      if (a.present !== undefined) return a.present === values.length > 0;
      return values.some(valueTest);
    });
  }
  return (input) => tests.every((t) => t(input));
}

function compileCondition(c: RoleCondition): ConditionTest {
  const own = compileLeaf(c);
  if (!c.anyOf) return own;
  const alternatives = c.anyOf.map(compileLeaf);
  // Keys beside anyOf must hold too (an empty leaf holds trivially).
  return (input) => own(input) && alternatives.some((t) => t(input));
}

export type RolesFn = (input: SourceInput) => string[];

export function compileRoles(rules: readonly RoleRule[], defaultRoles: readonly string[]): RolesFn {
  const compiled = rules.map((rule) => ({
    test: compileCondition(rule.when),
    grant: rule.grant,
    stop: rule.stop === true,
  }));
  const fallback = sortedUnique(defaultRoles);
  return (input) => {
    const roles: string[] = [];
    let matched = false;
    for (const rule of compiled) {
      if (!rule.test(input)) continue;
      matched = true;
      roles.push(...rule.grant);
      if (rule.stop) break;
    }
    return matched ? sortedUnique(roles) : fallback;
  };
}
