import type { FilterNode } from "./filter/ast.js";

/**
 * Sequential page walks (Okta's import: startIndex 1, 101, 201, …; Entra's full sync) resume where
 * the previous page ended, by keyset (created_at, id), instead of skipping startIndex - 1 index
 * entries with OFFSET: page 1,000 of a 100,000-user directory then costs what page 1 costs. An anchor
 * is used only if the directory's generation (see directory/generations.ts) has not moved since it was
 * recorded, so the answer is exactly the OFFSET answer. Only the default order (creation) is anchored.
 */
export interface PageEnd {
  createdAt: number;
  id: string;
}

interface Anchor extends PageEnd {
  generation: number;
}

/**
 * Identifies a result set: directory, resource type and parsed filter (which decides the SQL, on
 * either dialect, with its parameters).
 */
export function resultSetKey(directoryId: string, resourceType: string, filter: FilterNode | undefined): string {
  return JSON.stringify([directoryId, resourceType, filter ?? null]);
}

/**
 * The anchors of one SCIM app (one per bridge): they describe that bridge's database only, so two
 * bridges in one process never share them. Bounded: the oldest entry goes first. Correct with several
 * instances on one PostgreSQL database: a write by another instance moves the directory's generation,
 * which each page reads in its own read unit before trusting an anchor.
 */
export class PageAnchors {
  readonly #anchors = new Map<string, Anchor>();

  constructor(private readonly maxAnchors = 10_000) {}

  /** Where the page starting at `startIndex` begins, if recorded at the directory's current `generation`. */
  at(key: string, generation: number, startIndex: number): PageEnd | undefined {
    const anchor = this.#anchors.get(`${key}@${startIndex}`);
    return anchor && anchor.generation === generation ? anchor : undefined;
  }

  /** Remembers where a page ended, for the request that asks for the page after it. */
  remember(key: string, generation: number, nextStartIndex: number, end: PageEnd): void {
    const id = `${key}@${nextStartIndex}`;
    this.#anchors.delete(id);
    if (this.#anchors.size >= this.maxAnchors) this.#anchors.delete(this.#anchors.keys().next().value!);
    this.#anchors.set(id, { createdAt: end.createdAt, id: end.id, generation });
  }
}
