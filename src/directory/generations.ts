/**
 * A per-directory counter of committed-or-attempted SCIM writes in this process. Caches derived from
 * a directory's contents (page anchors) are valid only while it has not moved. A write that rolls
 * back still moves it, which only costs a cache miss. Writers in other processes are not seen: the
 * bridge has one writer process per SQLite database.
 */
const generations = new Map<string, number>();

export const directoryGeneration = (directoryId: string): number => generations.get(directoryId) ?? 0;

export function bumpDirectoryGeneration(directoryId: string): void {
  generations.set(directoryId, directoryGeneration(directoryId) + 1);
}
