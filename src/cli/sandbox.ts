import type { Actor } from "../directory/audit.js";
import { listDirectories, scimBaseUrl } from "../directory/directories.js";
import { onboardOrganizationOp, rotateDirectoryTokenOp } from "../admin/onboarding.js";
import { changeBy } from "../directory/write-context.js";
import { forgetAuth0Links, getOrganization } from "../directory/organizations.js";
import type { SqlStore } from "../directory/sql.js";
import type { StoreOp } from "../directory/store-op.js";

/**
 * Sandbox mode (docs/design.md, "Contract"): no Auth0 settings, so the Management API emulator runs in-process
 * and a demo organization with one directory is ready to receive SCIM requests.
 */
export const sandboxSlug = "demo";
const actor: Actor = { type: "system", id: "sandbox" };

export interface SandboxDirectory {
  organizationId: string;
  directoryId: string;
  scimBaseUrl: string;
  /** A fresh token each start: tokens are shown once and stored hashed, so an old one cannot be printed again. */
  token: string;
}

/**
 * The emulated tenant starts empty on every run, so whatever the bridge applied to the previous
 * one is forgotten and every organization is reconciled again into the new tenant.
 */
export async function forgetEmulatedTenant(store: SqlStore): Promise<void> {
  await store.write(forgetAuth0Links());
}

/** One write unit: the demo organization is found or made, and its directory gets a fresh token. */
function* sandboxDirectory(): StoreOp<{ organizationId: string; directoryId: string; token: string }> {
  const existing = yield* getOrganization(sandboxSlug);
  if (!existing) {
    const made = yield* onboardOrganizationOp({ slug: sandboxSlug, displayName: "Demo organization" }, changeBy(actor));
    return { organizationId: made.organization.id, directoryId: made.directory.id, token: made.token.token };
  }
  const directory = (yield* listDirectories(existing.id))[0];
  if (!directory)
    throw new Error(
      `sandbox organization "${sandboxSlug}" has no directory; run: scim-bridge directory create ${sandboxSlug}`,
    );
  const rotated = yield* rotateDirectoryTokenOp(directory.id, {}, changeBy(actor));
  return { organizationId: existing.id, directoryId: directory.id, token: rotated.token.token };
}

export async function ensureSandboxDirectory(store: SqlStore, publicUrl: string): Promise<SandboxDirectory> {
  const made = await store.write(sandboxDirectory());
  return { ...made, scimBaseUrl: scimBaseUrl(publicUrl, made.directoryId) };
}

export function sandboxBanner(d: SandboxDirectory, emulatorUrl: string, publicUrl: string): string {
  const user = JSON.stringify({
    schemas: ["urn:ietf:params:scim:schemas:core:2.0:User"],
    userName: "ada@example.com",
    name: { givenName: "Ada", familyName: "Lovelace" },
    emails: [{ value: "ada@example.com", type: "work", primary: true }],
    active: true,
  });
  return [
    "",
    "scim-bridge is running in sandbox mode (no AUTH0_DOMAIN): the Auth0 Management API emulator runs in-process.",
    "",
    `  SCIM base URL      ${d.scimBaseUrl}`,
    `  SCIM token         ${d.token}`,
    `  Auth0 emulator     ${emulatorUrl}   (state: ${emulatorUrl}/__emulator/state)`,
    `  Health / metrics   ${publicUrl}/healthz  ${publicUrl}/metrics`,
    "",
    "Create a user (the bridge creates it in the emulated Auth0 and adds it to the demo organization):",
    `  curl -s -X POST '${d.scimBaseUrl}/Users' -H 'Authorization: Bearer ${d.token}' -H 'Content-Type: application/scim+json' -d '${user}'`,
    "",
    "Simulate a login (the emulator calls the bridge's post-login hook, as the Auth0 Action would):",
    `  curl -s -X POST '${emulatorUrl}/__emulator/login' -H 'Content-Type: application/json' -d '{"connection":"Username-Password-Authentication","email":"ada@example.com","organization":"${sandboxSlug}"}'`,
    "",
    "Deactivate the user (PATCH active=false), then log in again: the login is denied and the emulated user is blocked:",
    `  curl -s -X PATCH '${d.scimBaseUrl}/Users/<id>' -H 'Authorization: Bearer ${d.token}' -H 'Content-Type: application/scim+json' -d '{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"replace","path":"active","value":false}]}'`,
    "",
    `Admin API: ${publicUrl}/admin/v1 (OpenAPI at /admin/v1/openapi.json); issue a token with \`npx scim-bridge admin-token issue\` or set BRIDGE_ADMIN_TOKEN.`,
    "",
    "The token above is shown once; a restart prints a new one. Stop with Ctrl-C.",
    "",
  ].join("\n");
}
