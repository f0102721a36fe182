import { existsSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { Worker } from "node:worker_threads";

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

/**
 * Starts the module `name` that sits beside `callerUrl` (the caller's import.meta.url) in a worker
 * thread, with `workerData`. From dist/ it is compiled JavaScript. From src/ (tsx, vitest) it is
 * TypeScript, which a worker thread cannot load by itself (loader hooks are per thread in Node 20):
 * a bootstrap registers tsx in the thread first.
 */
export function startModuleWorker(callerUrl: string, name: string, workerData: object): Worker {
  if (!callerUrl.endsWith(".ts")) return new Worker(new URL(`./${name}.js`, callerUrl), { workerData });
  const api = createRequire(callerUrl).resolve("tsx/esm/api");
  const tsx = pathToFileURL(join(dirname(api), "index.mjs")).href;
  const entry = new URL(`./${name}.ts`, callerUrl).href;
  const code = `
    const { workerData } = require("node:worker_threads");
    import(workerData.tsx)
      .then((tsx) => { tsx.register(); return import(workerData.entry); })
      .catch((err) => setImmediate(() => { throw err; }));`;
  return new Worker(code, { eval: true, workerData: { ...workerData, tsx, entry } });
}
