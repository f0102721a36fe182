/** Test helpers: captured IdP payloads from test/fixtures/mapping and small mapping builders. */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import {
  parseMapping,
  type DirectoryGroup,
  type DirectoryUser,
  type MappingDocument,
  type MappingInput,
} from "../../src/mapping/index.js";

const fixtures = join(import.meta.dirname, "..", "fixtures", "mapping");

function readFixture(name: string): Record<string, unknown> {
  const { _source, ...body } = JSON.parse(readFileSync(join(fixtures, `${name}.json`), "utf8")) as Record<
    string,
    unknown
  >;
  void _source; // provenance note, not part of the payload
  return body;
}

export type UserFixture = "okta-user" | "okta-user-put" | "entra-user" | "entra-user-patched-roles";

export function fixtureUser(name: UserFixture, change: Partial<Omit<DirectoryUser, "resource">> = {}): DirectoryUser {
  const resource = readFixture(name);
  return {
    id: `u-${name}`,
    directoryId: "dir-1",
    active: resource.active !== false,
    deleted: false,
    resource,
    ...change,
  };
}

export function fixtureGroups(name: "okta-groups" | "entra-groups"): DirectoryGroup[] {
  return readFixture(name).groups as DirectoryGroup[];
}

export const group = (displayName: string, externalId?: string): DirectoryGroup => ({
  id: `g-${displayName}`,
  displayName,
  externalId: externalId ?? null,
});

/** A minimal valid mapping with `change` merged at the top level. */
export function mappingWith(change: Partial<MappingInput> = {}): MappingDocument {
  return parseMapping({
    connection: { name: "acme-db" },
    userModel: "isolated",
    profile: { email: "emails[primary eq true].value" },
    ...change,
  });
}

export const user = (
  resource: Record<string, unknown>,
  change: Partial<Omit<DirectoryUser, "resource">> = {},
): DirectoryUser => ({
  id: "u-1",
  directoryId: "dir-1",
  active: true,
  deleted: false,
  resource,
  ...change,
});
