import type { Actor } from "./audit.js";

/** Who writes, for which tenant: every store write records it in its audit entry and scopes its rows by it. */
export interface WriteContext {
  organizationId: string;
  directoryId: string;
  actor: Actor;
  requestId?: string;
  /** Epoch ms; defaults to now. One value per request keeps created/modified/audit times equal. */
  now?: number;
}

/** Attribute names whose values differ: what an audit entry says changed, without the values themselves. */
export function changedAttributes(before: Record<string, unknown>, after: Record<string, unknown>): string[] {
  const keys = new Set([...Object.keys(before), ...Object.keys(after)]);
  return [...keys].filter((k) => JSON.stringify(before[k]) !== JSON.stringify(after[k])).sort();
}

export const isUniqueViolation = (err: unknown): boolean =>
  typeof err === "object" && err !== null && (err as { code?: unknown }).code === "SQLITE_CONSTRAINT_UNIQUE";
