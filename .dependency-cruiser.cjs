// The dependency rule: which part of src/ may import which (docs/architecture.md explains each
// part). Imports point down this list, never up, and never in a cycle:
//   main.ts → bridge.ts (the composition root), cli/ → console/ → http/ → scim/, admin/ → sync/ → directory/, auth0/ → mapping/ → config, errors, logging, paths
// emulator/ stands apart: it imports nothing from the rest, and only main.ts and cli/ start it.
/** @param {string} part @param {string[]} allowed */
const only = (part, allowed) => ({
  name: `${part}-imports-down-only`,
  comment: `src/${part}/ may import only: ${allowed.join(", ") || "nothing outside itself"} (docs/architecture.md)`,
  severity: "error",
  from: { path: `^src/${part}/` },
  to: {
    path: "^src/",
    pathNot: [
      `^src/${part}/`,
      ...allowed.map((a) => (a.endsWith(".ts") ? `^src/${a.replace(".", "[.]")}$` : `^src/${a}/`)),
    ],
  },
});
const shared = ["config.ts", "errors.ts", "logging.ts", "paths.ts"];

module.exports = {
  forbidden: [
    {
      name: "no-circular",
      severity: "error",
      comment: "a cycle makes two parts one; move the shared piece down",
      from: {},
      to: { circular: true },
    },
    {
      name: "shared-modules-import-no-part",
      severity: "error",
      comment: "config, errors, logging and paths serve every part and import none",
      from: { path: "^src/(config|errors|logging|paths)[.]ts$" },
      to: { path: "^src/[^/]+/" },
    },
    only("emulator", []),
    only("mapping", ["errors.ts"]),
    only("auth0", [...shared, "mapping"]),
    only("directory", [...shared, "mapping"]),
    only("sync", [...shared, "directory", "mapping", "auth0"]),
    only("scim", [...shared, "directory", "sync", "mapping"]),
    only("admin", [...shared, "directory", "sync", "mapping", "auth0"]),
    only("http", [...shared, "scim", "admin", "directory", "sync", "mapping", "auth0"]),
    only("console", [...shared, "http", "admin", "directory", "sync", "mapping", "auth0"]),
    only("cli", [...shared, "console", "http", "admin", "directory", "sync", "mapping", "auth0", "emulator"]),
    {
      name: "composition-root-below-main",
      severity: "error",
      comment: "bridge.ts builds the parts; only main.ts (and tests) build a bridge, and it never reaches the CLI",
      from: { path: "^src/bridge[.]ts$" },
      to: { path: "^src/(main[.]ts|cli/)" },
    },
    {
      name: "parts-build-no-bridge",
      severity: "error",
      comment: "a part that built the bridge would import everything above it",
      from: { path: "^src/", pathNot: "^src/main[.]ts$" },
      to: { path: "^src/bridge[.]ts$" },
    },
    {
      name: "tests-reach-no-dist",
      severity: "error",
      comment: "tests import the sources, not the compiled output",
      from: { path: "^(test|bench)/" },
      to: { path: "^dist/" },
    },
  ],
  options: {
    doNotFollow: { path: "node_modules" },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: "tsconfig.json" },
  },
};
