/**
 * Comments and docs stand alone: a reader of this repository must be able to follow every reference
 * in it. So no text here may point to a file outside the repository (design notes, research notes, a
 * sibling checkout) or to an issue-tracker number of this project; cite an RFC section, a public
 * document by title, a public GitHub issue as owner/repo#n, or a page under docs/ instead.
 *
 * The patterns are assembled from pieces, so that this file can be scanned like every other one
 * without flagging itself.
 */
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, extname, join, relative, resolve } from "node:path";
import { describe, expect, it } from "vitest";
import { packageRoot } from "../../src/paths.js";

const md = "\\.md";
const S = "§";

/** Research notes that lived beside the repository, by name: never cite them. */
const noteNames = [
  "idp" + "-wire",
  "auth0" + "-management-api",
  "auth0" + "-user-import",
  "code-style" + "-anchors",
  "reliability" + "-and-security",
  "stack" + "-notes",
  "postgres" + "-notes",
  "peers" + md,
].join("|");

interface Rule {
  name: string;
  pattern: RegExp;
  /** A hit is fine when the line also matches this. */
  unless?: RegExp;
}

const rules: Rule[] = [
  { name: "design notes outside the repository", pattern: new RegExp("\\bDESIGN" + md + "\\b") },
  { name: "research notes outside the repository", pattern: new RegExp("(?<![\\w/-])(?:" + noteNames + ")\\b") },
  { name: "a notes folder outside the repository", pattern: new RegExp("(?<![\\w/-])reference/[\\w-]+" + md + "\\b") },
  { name: "a section of unnamed reference notes", pattern: new RegExp("\\b(?:reference|ref|rel) " + S) },
  {
    name: "a sibling checkout",
    pattern: new RegExp("\\.\\./" + "shared\\b|\\bshared/" + "reference\\b"),
    // The conformance collections' default folder is a real, configurable setting.
    unless: new RegExp("SCIM_" + "CONFORMANCE_DIR"),
  },
  {
    name: "an issue or task number of this project",
    // The word, a space and a number, in either case; a public issue names its repository instead.
    pattern: new RegExp("(?<![\\w.-]/[\\w.-]{1,100} )\\b(?:[Ii]ssues?|[Tt]asks?) #?[0-9]+\\b"),
  },
  {
    name: "a bare #number",
    // A hash and digits alone; not after owner/repo, nor an HTML entity, a CSS colour or an anchor.
    pattern: new RegExp("(?<![\\w/&:#-])#[0-9]{1,6}\\b(?![\\w-])"),
  },
];

export interface Finding {
  line: number;
  rule: string;
  text: string;
}

/** Every dangling reference in one file's text, with its 1-based line number. */
export function danglingReferences(text: string, mdLinkExists: (target: string) => boolean = () => true): Finding[] {
  const findings: Finding[] = [];
  text.split("\n").forEach((lineText, i) => {
    for (const rule of rules) {
      if (rule.pattern.test(lineText) && !(rule.unless?.test(lineText) ?? false)) {
        findings.push({ line: i + 1, rule: rule.name, text: lineText.trim() });
      }
    }
    // A relative Markdown link must land on a file of the repository.
    for (const m of lineText.matchAll(/\]\(([^)#\s]+?\.md)(?:#[^)]*)?\)/g)) {
      const target = m[1]!;
      if (!/^[a-z]+:/i.test(target) && !mdLinkExists(target)) {
        findings.push({ line: i + 1, rule: "a Markdown link to a missing file", text: lineText.trim() });
      }
    }
  });
  return findings;
}

const scannedDirs = ["src", "test", "bench", "docs", "db", "scim", "mappings", "bin", ".ci"];
const textExtensions = new Set([
  ".ts",
  ".js",
  ".cjs",
  ".mjs",
  ".md",
  ".json",
  ".yaml",
  ".yml",
  ".sql",
  ".html",
  ".css",
  "",
]);
const skippedDirs = new Set(["node_modules", "dist", ".git"]);

function walk(dir: string, out: string[]): void {
  if (!existsSync(dir)) return;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) {
      // Generated migration snapshots are drizzle-kit's output, not prose.
      if (!skippedDirs.has(entry.name) && !(entry.name === "meta" && dirname(dir) === join(packageRoot, "db")))
        walk(path, out);
    } else if (entry.isFile() && textExtensions.has(extname(entry.name))) {
      out.push(path);
    }
  }
}

function scannedFiles(): string[] {
  const files: string[] = [];
  for (const dir of scannedDirs) walk(join(packageRoot, dir), files);
  // Top-level configuration and documentation (package-lock.json is generated).
  for (const entry of readdirSync(packageRoot)) {
    const path = join(packageRoot, entry);
    if (!statSync(path).isFile() || entry === "package-lock.json") continue;
    if (
      /\.(?:ts|js|cjs|mjs|json|md)$/.test(entry) ||
      /^(?:Dockerfile|\.[\w.-]+rc(?:\.json)?|\.dependency-cruiser\.cjs)$/.test(entry)
    ) {
      files.push(path);
    }
  }
  return files;
}

describe("comments and docs stand alone", () => {
  it("no file points outside the repository or to an issue number", () => {
    const files = scannedFiles();
    expect(files.length).toBeGreaterThan(100);
    const report: string[] = [];
    for (const file of files) {
      const exists = (target: string) => existsSync(resolve(dirname(file), target));
      for (const f of danglingReferences(readFileSync(file, "utf8"), exists)) {
        report.push(`${relative(packageRoot, file)}:${f.line}: ${f.rule}: ${f.text.slice(0, 160)}`);
      }
    }
    expect(report, `cite an RFC section, a public document by title or docs/ instead:\n${report.join("\n")}`).toEqual(
      [],
    );
  });

  it("flags each kind of dangling reference and names its line", () => {
    const bad = [
      "see " + "DESIGN" + ".md " + S + "6",
      "(" + "idp" + "-wire" + ".md " + S + "1.3)",
      "facts in `" + "reference/" + "stack" + "-notes.md`",
      "(ref " + S + "1a)",
      "../" + "shared/" + "conformance/README.md",
      "the admin API (" + "iss" + "ue 6)",
      "Issue" + " 5, fault tests",
      "as in " + "#" + "12",
      "[the design](" + "missing-page" + ".md)",
    ];
    const text = ["first line", ...bad].join("\n");
    const found = danglingReferences(text, (t) => t !== "missing-page.md");
    expect(found.map((f) => f.line).sort((a, b) => a - b)).toEqual(bad.map((_, i) => i + 2));
  });

  it("leaves legitimate references alone", () => {
    const good = [
      "204, or 200 with the resource (RFC 7644 " + S + "3.5.2; RFC 7643 " + S + "7)",
      "answers 404, never 403; 429 with Retry-After",
      ".badge{background:#eceff3;color:#" + "222}",
      '"\'": "&#' + '39;"',
      "(scimmyjs/scimmy#" + "51; auth0/auth0-java#" + "283)",
      'a Post-Login Action (Auth0 docs "Block and Unblock Users")',
      "SCIM_" + "CONFORMANCE_DIR (default `../" + "shared/conformance`)",
      "see [console.md](" + "console.md#setup-links) and docs/design.md, invariant 5",
      "| # | rule | where | source |",
    ];
    expect(danglingReferences(good.join("\n"))).toEqual([]);
  });
});
