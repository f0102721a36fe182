/**
 * The mapping document (docs/design.md, "Concepts"): one per organization version. Unknown keys are
 * refused everywhere (strict objects), so a typo never silently does nothing.
 * Policies may be left out: they are filled from the user model's defaults (src/mapping/defaults.ts),
 * so the parsed document is always complete and a stored version says exactly what it does.
 */
import { z } from "zod";
import { fillPolicies, policyProblems } from "./defaults.js";
import {
  globSchema,
  matcherSchema,
  metadataSourceSchema,
  profileSourceSchema,
  scalarSchema,
  scimPathSchema,
} from "./source-schema.js";

// Auth0 refuses these app_metadata keys and any key containing "." or "$" (Auth0 docs
// "Metadata Field Names and Data Types").
export const reservedMetadataKeys = new Set([
  "__tenant",
  "_id",
  "blocked",
  "clientID",
  "created_at",
  "email_verified",
  "email",
  "globalClientID",
  "global_client_id",
  "identities",
  "lastIP",
  "lastLogin",
  "loginsCount",
  "metadata",
  "multifactor_last_modified",
  "multifactor",
  "updated_at",
  "user_id",
]);

const metadataFieldName = z.string().superRefine((key, ctx) => {
  if (key === "__proto__" || key === "constructor" || key === "prototype") {
    ctx.addIssue({ code: "custom", message: `"${key}" is not allowed as an app_metadata name` });
  } else if (!/^[A-Za-z_][A-Za-z0-9_-]{0,63}$/.test(key)) {
    ctx.addIssue({
      code: "custom",
      message: `"${key}" is not a usable app_metadata name: use letters, digits, "_" and "-" (Auth0 forbids "." and "$"), at most 64 characters`,
    });
  }
});
const topLevelMetadataKey = metadataFieldName.superRefine((key, ctx) => {
  if (reservedMetadataKeys.has(key))
    ctx.addIssue({ code: "custom", message: `"${key}" is reserved by Auth0 in app_metadata` });
});

const roleName = z
  .string()
  .min(1)
  .max(100)
  .refine((s) => s.trim() === s, { message: "role names may not start or end with spaces" });

const groupCondition = z.union(
  [
    z.string().min(1).meta({ description: "Group displayName, exact (case-insensitive)" }),
    z
      .strictObject({ displayName: matcherSchema.optional(), externalId: matcherSchema.optional() })
      .refine((g) => g.displayName !== undefined || g.externalId !== undefined, {
        message: "name displayName or externalId (or both)",
      }),
  ],
  { error: () => "not a group condition: expected a displayName or an object with displayName and/or externalId" },
);

const predicateKeys = ["equals", "glob", "oneOf", "present"] as const;
const attributeCondition = z
  .strictObject({
    path: scimPathSchema,
    equals: scalarSchema.optional(),
    glob: globSchema.optional(),
    oneOf: z.array(scalarSchema).min(1).optional(),
    present: z.boolean().optional(),
    caseSensitive: z.boolean().optional(),
  })
  .superRefine((a, ctx) => {
    const given = predicateKeys.filter((k) => a[k] !== undefined);
    if (given.length !== 1) {
      ctx.addIssue({
        code: "custom",
        message: `give exactly one of ${predicateKeys.join(", ")} (got ${given.length === 0 ? "none" : given.join(", ")})`,
      });
    }
  });

const conditionShape = {
  group: groupCondition.optional(),
  scimRole: matcherSchema
    .optional()
    .meta({ description: "Matches any SCIM roles[].value (or its display), e.g. Entra app roles" }),
  attribute: attributeCondition.optional(),
};
const atLeastOne = (c: Record<string, unknown>): boolean => Object.values(c).some((v) => v !== undefined);
const leafCondition = z
  .strictObject(conditionShape)
  .refine(atLeastOne, { message: "the condition is empty: name group, scimRole or attribute" });
const condition = z
  .strictObject({ ...conditionShape, anyOf: z.array(leafCondition).min(1).optional() })
  .refine(atLeastOne, { message: "the condition is empty: name group, scimRole, attribute or anyOf" })
  .meta({ description: "Every key given must hold (and); anyOf holds when one of its conditions does" });

export const roleRuleSchema = z
  .strictObject({
    name: z.string().optional(),
    when: condition,
    grant: z.array(roleName).max(50),
    stop: z.boolean().optional().meta({
      description: "When this rule matches, rules below it are not evaluated: it takes precedence over them",
    }),
  })
  .refine((r) => r.grant.length > 0 || r.stop === true, {
    message: "grant is empty: list role names, or set stop: true to end evaluation with no roles",
    path: ["grant"],
  })
  .meta({ id: "RoleRule" });

const deprovisionShape = {
  block: z.enum(["always", "whenNoOtherOrganization", "never"]),
  revokeSessions: z
    .enum(["always", "whenBlocked", "never"])
    .meta({ description: "Revoke sessions and refresh tokens" }),
  removeMembership: z.boolean(),
  removeRoles: z.boolean(),
};
const guardShape = {
  enabled: z.boolean(),
  windowMinutes: z
    .int()
    .min(1)
    .max(7 * 24 * 60),
  percent: z
    .number()
    .gt(0)
    .max(100)
    .meta({ description: "Share of the organization's users deprovisioned within the window" }),
  minUsers: z.int().min(1).meta({ description: "Never trip below this many users" }),
};

const policiesInput = z.strictObject({
  deactivation: z.strictObject(deprovisionShape).partial().optional(),
  deletion: z
    .strictObject({ ...deprovisionShape, deleteUser: z.boolean() })
    .partial()
    .optional(),
  invitation: z
    .strictObject({ send: z.boolean(), ttlSeconds: z.int().min(60).max(2_592_000) })
    .partial()
    .optional()
    .meta({ description: "Password-change ticket for a user the bridge creates (database connections)" }),
  massDeprovisionGuard: z.strictObject(guardShape).partial().optional(),
});

const profileShape = {
  email: profileSourceSchema,
  username: profileSourceSchema.optional(),
  given_name: profileSourceSchema.optional(),
  family_name: profileSourceSchema.optional(),
  name: profileSourceSchema.optional(),
  nickname: profileSourceSchema.optional(),
  picture: profileSourceSchema.optional(),
};

const documentInput = z.strictObject({
  $schema: z.string().optional(),
  description: z.string().optional(),
  connection: z.strictObject({
    name: z.string().min(1).max(128),
    type: z.enum(["database", "enterprise"]).default("database").meta({
      description: "database: the bridge creates users; enterprise: users appear at first login and are linked",
    }),
  }),
  userModel: z.enum(["isolated", "shared"]),
  profile: z.strictObject(profileShape),
  app_metadata: z
    .strictObject({
      namespace: topLevelMetadataKey.optional().meta({ description: "Owned keys live in this one top-level object" }),
      keys: z.record(metadataFieldName, metadataSourceSchema),
    })
    .optional(),
  roles: z
    .strictObject({
      rules: z.array(roleRuleSchema).default([]),
      default: z.array(roleName).max(50).default([]).meta({ description: "Granted when no rule matches" }),
    })
    .default({ rules: [], default: [] }),
  policies: policiesInput.optional(),
});

export const mappingSchema = documentInput
  .superRefine((doc, ctx) => {
    const keys = doc.app_metadata;
    if (keys && keys.namespace === undefined) {
      for (const key of Object.keys(keys.keys)) {
        if (reservedMetadataKeys.has(key)) {
          ctx.addIssue({
            code: "custom",
            path: ["app_metadata", "keys", key],
            message: `"${key}" is reserved by Auth0 in app_metadata (or set a namespace)`,
          });
        }
      }
    }
  })
  .transform((doc, ctx) => {
    const policies = fillPolicies(doc.userModel, doc.policies);
    for (const { path, message } of policyProblems(doc.userModel, doc.connection.type, policies)) {
      ctx.addIssue({ code: "custom", path: ["policies", ...path], message, input: doc.policies });
    }
    return { ...doc, policies };
  });

export type MappingInput = z.input<typeof mappingSchema>;
export type MappingDocument = z.output<typeof mappingSchema>;
export type RoleRule = MappingDocument["roles"]["rules"][number];
export type RoleCondition = RoleRule["when"];
export type Policies = MappingDocument["policies"];
