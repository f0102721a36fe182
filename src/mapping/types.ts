/** Small value types shared by the mapping engine. */

export type Scalar = string | number | boolean | null;
export type JsonValue = Scalar | JsonValue[] | { [key: string]: JsonValue };

/** Auth0 root profile attributes a mapping may set (PATCH /users/{id} body keys). Never `password`. */
export const profileFields = ["email", "username", "given_name", "family_name", "name", "nickname", "picture"] as const;
export type ProfileField = (typeof profileFields)[number];

/** Values of the profile fields; null = the mapping produced nothing (and clears a value the bridge wrote). */
export type Profile = Partial<Record<ProfileField, string | null>>;

/** Owned app_metadata keys → values; null = the key is deleted (Auth0 deletes a top-level key sent as null). */
export type AppMetadata = Record<string, JsonValue>;

export const isRecord = (v: unknown): v is Record<string, unknown> =>
  typeof v === "object" && v !== null && !Array.isArray(v);

/** Structural equality for JSON values (key order ignored). */
export function jsonEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (Array.isArray(a)) {
    return Array.isArray(b) && a.length === b.length && a.every((v, i) => jsonEqual(v, b[i]));
  }
  if (isRecord(a) && isRecord(b)) {
    const ka = Object.keys(a);
    if (ka.length !== Object.keys(b).length) return false;
    return ka.every((k) => Object.hasOwn(b, k) && jsonEqual(a[k], b[k]));
  }
  return false;
}

/** Sorted, de-duplicated copy (role names, group names): output never depends on input order. */
export const sortedUnique = (values: Iterable<string>): string[] => [...new Set(values)].sort();
