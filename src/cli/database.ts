import { userInfo } from "node:os";
import type { Actor } from "../directory/audit.js";
import type { Db } from "../directory/database.js";

/**
 * How every command opens the database: one handle per command, closed whatever happens. What the
 * store or a service refuses (unknown name, invalid value, conflict) is thrown on, and the program's
 * one error handler prints its message and exits 1; a command never half-reports an error itself.
 */
export function withDatabase<H extends { db: Db; close(): void }, T>(openDb: () => H, run: (handle: H) => T): T {
  const handle = openDb();
  try {
    return run(handle);
  } finally {
    handle.close();
  }
}

/** The operator at this terminal, for the audit log: `cli:<name>`, by default the OS user. */
export const cliOperator = (name?: string): Actor => ({ type: "operator", id: `cli:${name ?? userInfo().username}` });
