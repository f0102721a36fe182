import type { SQL } from "drizzle-orm";
import { SQLiteSyncDialect } from "drizzle-orm/sqlite-core";
import { directoryGeneration } from "../directory/generations.js";

/**
 * Sequential page walks (Okta's import: startIndex 1, 101, 201, …; Entra's full sync) resume where
 * the previous page ended, by keyset (created_at, id), instead of skipping startIndex - 1 index
 * entries with OFFSET: page 1,000 of a 100,000-user directory then costs what page 1 costs. An anchor
 * is used only if nothing in the directory changed since it was recorded, so the answer is exactly
 * the OFFSET answer. Only the default order (creation) is anchored.
 */
export interface PageEnd {
  createdAt: number;
  id: string;
}

interface Anchor extends PageEnd {
  generation: number;
}

const maxAnchors = 10_000;
const anchors = new Map<string, Anchor>();
const dialect = new SQLiteSyncDialect();

/** Identifies a result set: directory, resource type and filter (SQL text with its parameters). */
export function resultSetKey(directoryId: string, resourceType: string, where: SQL | undefined): string {
  const query = where ? dialect.sqlToQuery(where) : { sql: "", params: [] };
  return JSON.stringify([directoryId, resourceType, query.sql, query.params]);
}

export function anchorAt(key: string, directoryId: string, startIndex: number): PageEnd | undefined {
  const anchor = anchors.get(`${key}@${startIndex}`);
  return anchor && anchor.generation === directoryGeneration(directoryId) ? anchor : undefined;
}

/** Remembers where a page ended, for the request that asks for the page after it. */
export function rememberPageEnd(key: string, directoryId: string, nextStartIndex: number, end: PageEnd): void {
  const id = `${key}@${nextStartIndex}`;
  anchors.delete(id);
  if (anchors.size >= maxAnchors) anchors.delete(anchors.keys().next().value!);
  anchors.set(id, { createdAt: end.createdAt, id: end.id, generation: directoryGeneration(directoryId) });
}
