/**
 * Zod schemas for where a value comes from: SCIM paths, templates, transforms, globs, matchers.
 * Every string that is later compiled (path, template, glob, pattern) is compiled here too, so that
 * a bad one is refused at validation time with the reason, never at sync time.
 */
import { z } from "zod";
import { globProblem } from "./glob.js";
import { captureProblem } from "./pattern.js";
import { parseScimPath } from "./scim-path.js";
import { parseTemplate } from "./template.js";

const reasonOf = (e: unknown): string => (e instanceof Error ? e.message : String(e));

export const scalarSchema = z.union([z.string(), z.number(), z.boolean(), z.null()]);

export const scimPathSchema = z
  .string()
  .superRefine((text, ctx) => {
    try {
      parseScimPath(text);
    } catch (e) {
      ctx.addIssue({ code: "custom", message: `not a SCIM attribute path: ${reasonOf(e)}` });
    }
  })
  .meta({
    id: "ScimPath",
    description:
      'SCIM attribute path: "userName", "name.givenName", "emails[primary eq true].value", "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department"',
  });

const templateSchema = (allowValue: boolean) =>
  z.string().superRefine((text, ctx) => {
    try {
      const t = parseTemplate(text);
      if (t.usesValue && !allowValue) {
        ctx.addIssue({ code: "custom", message: "{value} exists only in a template transform; name a SCIM path here" });
      }
    } catch (e) {
      ctx.addIssue({ code: "custom", message: `not a template: ${reasonOf(e)}` });
    }
  });

export const globSchema = z
  .string()
  .superRefine((text, ctx) => {
    const problem = globProblem(text);
    if (problem) ctx.addIssue({ code: "custom", message: problem });
  })
  .meta({ id: "Glob", description: 'Glob: "*" any run of characters, "?" one character, "\\" escapes the next one' });

const captureSchema = z
  .strictObject({
    capture: z
      .string()
      .meta({ description: "Regular expression; the value becomes the captured group (no match: null)" }),
    group: z.union([z.int().min(0), z.string().min(1)]).optional(),
    ignoreCase: z.boolean().optional(),
  })
  .superRefine((t, ctx) => {
    const problem = captureProblem(t.capture, t.group);
    if (problem) ctx.addIssue({ code: "custom", message: problem.message, path: [problem.field] });
  });

const transformKeys = ["template", "default", "lookup", "capture"];

export const transformSchema = z
  .union(
    [
      z.enum(["lowercase", "uppercase", "trim"]),
      z.strictObject({ template: templateSchema(true) }),
      z.strictObject({ default: scalarSchema.meta({ description: "Used when the value is missing or empty" }) }),
      z.strictObject({
        lookup: z.record(z.string(), scalarSchema).meta({ description: "Table: value → replacement" }),
        ignoreCase: z.boolean().optional(),
        otherwise: z
          .enum(["null", "keep"])
          .optional()
          .meta({ description: 'Unlisted values: "null" (default) or "keep"' }),
      }),
      captureSchema,
    ],
    {
      error: (issue) =>
        `not a transform: expected "lowercase", "uppercase", "trim" or an object with one of the keys ${transformKeys.join(", ")}` +
        describeInput(issue.input),
    },
  )
  .meta({ id: "Transform", description: "lowercase, uppercase, trim, {template}, {default}, {lookup}, {capture}" });

function describeInput(input: unknown): string {
  if (typeof input === "string") return ` (got "${input}")`;
  if (typeof input === "object" && input !== null && !Array.isArray(input)) {
    return ` (got keys ${Object.keys(input).join(", ") || "none"})`;
  }
  return "";
}

const transformsSchema = z.array(transformSchema).max(20).optional().meta({ description: "Applied in order" });

const fromSchema = z.strictObject({
  from: z.union([scimPathSchema, z.array(scimPathSchema).min(1).max(10)]).meta({
    description: "A SCIM path, or a list of paths: the first one with a value wins",
  }),
  transforms: transformsSchema,
});
const templateSourceSchema = z.strictObject({ template: templateSchema(false), transforms: transformsSchema });
const constantSchema = z.strictObject({ value: scalarSchema });

const sourceKeys = ["from", "template", "value"];
const sourceError = (extra: string[]) => (issue: { input?: unknown }) =>
  `not a value source: expected a SCIM path or an object with one of the keys ${[...sourceKeys, ...extra].join(", ")}` +
  describeInput(issue.input);

/** Where a profile field's value comes from. */
export const profileSourceSchema = z
  .union([scimPathSchema, fromSchema, templateSourceSchema, constantSchema], { error: sourceError([]) })
  .meta({ id: "ProfileSource", description: "A SCIM path, {from, transforms}, {template, transforms} or {value}" });

/** Where an app_metadata value comes from; may also list the user's groups. */
export const metadataSourceSchema = z
  .union(
    [
      scimPathSchema,
      fromSchema,
      templateSourceSchema,
      constantSchema,
      z.strictObject({
        groups: z.enum(["displayName", "externalId"]).meta({ description: "A sorted list of the user's groups" }),
        match: globSchema.optional(),
        transforms: transformsSchema,
      }),
    ],
    { error: sourceError(["groups"]) },
  )
  .meta({
    id: "MetadataSource",
    description: "A SCIM path, {from}, {template}, {value} or {groups} (the user's group names)",
  });

const caseSensitive = z.boolean().optional().meta({ description: "Default false: SCIM names compare without case" });

/** String matcher: a plain string is an exact (case-insensitive) match. */
export const matcherSchema = z
  .union(
    [
      z.string().min(1),
      z.strictObject({ equals: z.string().min(1), caseSensitive }),
      z.strictObject({ glob: globSchema, caseSensitive }),
      z.strictObject({ oneOf: z.array(z.string().min(1)).min(1), caseSensitive }),
    ],
    {
      error: (issue) =>
        `not a matcher: expected a string or an object with one of the keys equals, glob, oneOf${describeInput(issue.input)}`,
    },
  )
  .meta({ id: "Matcher", description: "A string (exact, case-insensitive), {equals}, {glob} or {oneOf}" });

export type ProfileSource = z.output<typeof profileSourceSchema>;
export type MetadataSource = z.output<typeof metadataSourceSchema>;
export type Transform = z.output<typeof transformSchema>;
export type Matcher = z.output<typeof matcherSchema>;
