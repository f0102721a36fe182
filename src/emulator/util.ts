import { randomBytes } from "node:crypto";

const ALNUM = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";

export function randomAlnum(length: number): string {
  const bytes = randomBytes(length);
  let out = "";
  for (const b of bytes) out += ALNUM[b % ALNUM.length];
  return out;
}

export const randomHex = (bytes: number): string => randomBytes(bytes).toString("hex");

export const nowIso = (): string => new Date().toISOString();

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

export function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

export function clone<T>(value: T): T {
  return structuredClone(value);
}

/** Auth0's `fields` / `include_fields` query: keep (or drop) the listed top-level properties. */
export function selectFields<T extends object>(entity: T, query: URLSearchParams): Partial<T> {
  const fields = query.get("fields");
  if (!fields) return entity;
  const names = new Set(
    fields
      .split(",")
      .map((f) => f.trim())
      .filter(Boolean),
  );
  const include = query.get("include_fields") !== "false";
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(entity)) {
    if (names.has(key) === include) out[key] = value;
  }
  return out as Partial<T>;
}

/** Mulberry32: a small seeded PRNG so fault error rates are reproducible. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Glob where `*` matches any run of characters (including `/`). */
export function globToRegExp(glob: string): RegExp {
  const escaped = glob.replace(/[.+?^${}()|[\]\\]/g, "\\$&").replace(/\*/g, ".*");
  return new RegExp(`^${escaped}$`);
}

/** A JSON value's type as Auth0's payload validation names it ("integer" for whole numbers). */
export function jsonType(value: unknown): string {
  if (value === null) return "null";
  if (value === undefined) return "undefined";
  if (Array.isArray(value)) return "array";
  if (typeof value === "number") return Number.isInteger(value) ? "integer" : "number";
  return typeof value;
}
