/**
 * The dependency rule (.dependency-cruiser.cjs, explained in docs/architecture.md) holds for the
 * tree, and it does fail on an upward import: a store module importing the HTTP layer.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { cruise, type ICruiseOptions, type ICruiseResult } from "dependency-cruiser";
import extractDepcruiseOptions from "dependency-cruiser/config-utl/extract-depcruise-options";
import extractTSConfig from "dependency-cruiser/config-utl/extract-ts-config";
import { afterAll, describe, expect, it } from "vitest";
import { packageRoot } from "../../src/paths.js";

const rules = (): Promise<ICruiseOptions> => extractDepcruiseOptions(join(packageRoot, ".dependency-cruiser.cjs"));

async function violationsIn(
  baseDir: string,
  paths: string[],
  tsConfig: string,
): Promise<{ rule: string; from: string; to: string }[]> {
  const options = await rules();
  const result = await cruise(paths, { ...options, baseDir, validate: true }, undefined, {
    tsConfig: extractTSConfig(join(baseDir, tsConfig)),
  });
  const output = result.output as ICruiseResult;
  return output.summary.violations.map((v) => ({ rule: v.rule.name, from: v.from, to: v.to }));
}

const fixtures: string[] = [];
afterAll(() => {
  for (const dir of fixtures) rmSync(dir, { recursive: true, force: true });
});

function fixture(files: Record<string, string>): string {
  const dir = mkdtempSync(join(tmpdir(), "depcruise-"));
  fixtures.push(dir);
  for (const [path, text] of Object.entries(files)) {
    mkdirSync(dirname(join(dir, path)), { recursive: true });
    writeFileSync(join(dir, path), text);
  }
  return dir;
}

const tsconfig = JSON.stringify({
  compilerOptions: { module: "NodeNext", moduleResolution: "NodeNext", strict: true },
  include: ["src"],
});

describe("the dependency rule", () => {
  it("names the rule when the store imports the HTTP layer", async () => {
    const dir = fixture({
      "tsconfig.json": tsconfig,
      "src/http/errors.ts": `export const contentType = "application/scim+json";\n`,
      "src/directory/users.ts": `import { contentType } from "../http/errors.js";\nexport const user = { contentType };\n`,
    });
    const violations = await violationsIn(dir, ["src"], "tsconfig.json");
    expect(violations).toEqual([
      { rule: "directory-imports-down-only", from: "src/directory/users.ts", to: "src/http/errors.ts" },
    ]);
  });

  it("accepts the same import pointing down", async () => {
    const dir = fixture({
      "tsconfig.json": tsconfig,
      "src/directory/users.ts": `export const user = { id: "u1" };\n`,
      "src/http/errors.ts": `import { user } from "../directory/users.js";\nexport const shown = user.id;\n`,
    });
    expect(await violationsIn(dir, ["src"], "tsconfig.json")).toEqual([]);
  });

  it("finds a cycle inside one part", async () => {
    const dir = fixture({
      "tsconfig.json": tsconfig,
      "src/scim/a.ts": `import type { B } from "./b.js";\nexport type A = { b?: B };\n`,
      "src/scim/b.ts": `import type { A } from "./a.js";\nexport type B = { a?: A };\n`,
    });
    expect((await violationsIn(dir, ["src"], "tsconfig.json")).map((v) => v.rule)).toContain("no-circular");
  });

  it("holds for src, test and bench", async () => {
    expect(await violationsIn(packageRoot, ["src", "test", "bench"], "tsconfig.json")).toEqual([]);
  }, 30_000);
});
