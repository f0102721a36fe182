import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

/**
 * The package root (where package.json, db/, scim/ and mappings/ live), found by walking up from
 * this file, so that the same code works from src/ under tsx and from dist/src/ once compiled.
 */
export const packageRoot: string = (() => {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (existsSync(join(dir, "package.json")) && existsSync(join(dir, "db"))) return dir;
    const parent = dirname(dir);
    if (parent === dir)
      throw new Error("scim-bridge: cannot find the package root above " + fileURLToPath(import.meta.url));
    dir = parent;
  }
})();
