import { randomBytes, randomUUID } from "node:crypto";

/**
 * Identifiers. SCIM ids are UUIDv4: issued by us, unique across every tenant, stable and never
 * reassigned (RFC 7643 §3.1). Directory ids appear in SCIM base URLs, so they use lower-case
 * letters and digits only: Okta rejects base URLs that contain "_".
 */
export const newResourceId = (): string => randomUUID();

const base32 = "abcdefghijklmnopqrstuvwxyz234567";

/** Lower-case base32 of random bytes (5 bits per character). */
export function randomBase32(bytes: number): string {
  const buf = randomBytes(bytes);
  let bits = 0;
  let value = 0;
  let out = "";
  for (const byte of buf) {
    value = (value << 8) | byte;
    bits += 8;
    while (bits >= 5) {
      out += base32[(value >>> (bits - 5)) & 31];
      bits -= 5;
    }
  }
  if (bits > 0) out += base32[(value << (5 - bits)) & 31];
  return out;
}

export const newDirectoryId = (): string => `dir-${randomBase32(10)}`;
/** Our organization id (a UUID); not to be confused with the Auth0 organization id "org_…". */
export const newOrganizationId = (): string => randomUUID();
