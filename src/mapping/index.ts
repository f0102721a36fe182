/**
 * The mapping engine: pure, no I/O. Schema and validation, desired(), plan(),
 * applyOperation() and diffDesired(). Storage lives in src/directory/mappings.ts, preview in
 * src/sync/preview.ts, the CLI in src/cli/mapping.ts.
 */
export { mappingSchema, type MappingDocument, type MappingInput, type RoleRule, type Policies } from "./schema.js";
export { parseMapping, validateMapping, MappingError, type MappingIssue, type MappingValidation } from "./validate.js";
export { loadMappingFile, checkMappingFile, type ParsedFile } from "./load.js";
export { defaultMapping, type DefaultMappingOptions } from "./default-mapping.js";
export type {
  UserModel,
  ConnectionType,
  DeprovisionPolicy,
  DeletionPolicy,
  GuardPolicy,
  InvitationPolicy,
} from "./defaults.js";
export {
  desired,
  type DesiredUser,
  type DesiredContext,
  type ConnectionWritability,
  type DirectoryUser,
  type DirectoryGroup,
  type Hold,
  type UserStatus,
} from "./desired.js";
export { plan } from "./plan.js";
export {
  connectionWritability,
  defaultWritability,
  unwrittenFields,
  type ConnectionFacts,
  type RootAttributesSync,
  type UnwrittenField,
} from "./connection-sync.js";
export { applyOperation, initialApplied, appliedFromDesired, type AppliedState } from "./applied.js";
export type { Operation, OperationType, OperationResult } from "./operations.js";
export { diffDesired, changeKinds, type DesiredDiff, type ChangeKind, type Membership } from "./diff.js";
export { mappingJsonSchema, mappingJsonSchemaText } from "./json-schema.js";
export type { Profile, ProfileField, AppMetadata, JsonValue } from "./types.js";
