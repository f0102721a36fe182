/**
 * Benchmark: `scim-bridge mapping preview` on a seeded organization of 10,000 users.
 * Seeds a temporary SQLite database through direct inserts into the tables of db/schema.ts
 * (users with Entra-shaped SCIM documents, 60 groups, ~25,000 memberships, holds, inactive and
 * deleted users), applies mappings/okta-groups.yaml as the active mapping, then times
 * previewMapping() of a candidate that changes role rules, a profile field and app_metadata.
 *
 * Run: npx tsx bench/preview.ts [users]   → prints a markdown table row, writes bench/results/preview.md
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { cpus, tmpdir } from "node:os";
import { join } from "node:path";
import { count } from "drizzle-orm";
import { directories, groupMembers, groups, holds, organizations, userEmails, users } from "../db/schema.js";
import { openDatabase } from "../src/directory/database.js";
import { saveMappingVersion } from "../src/directory/mappings.js";
import { loadMappingFile, parseMapping } from "../src/mapping/index.js";
import { packageRoot } from "../src/paths.js";
import { previewMapping } from "../src/sync/preview.js";
import { writeSync } from "../src/directory/store-op.js";
import { sqliteStore } from "../src/directory/sql.js";

const userCount = Number(process.argv[2] ?? 10_000);
const groupNames = [
  "Eng-Admins",
  "Eng-Platform",
  "Eng-Web",
  "Eng-Data",
  "Support-L1",
  "Support-L2",
  "Contractors",
  ...Array.from({ length: 53 }, (_, i) => `Team-${String(i).padStart(2, "0")}`),
];
const departments = ["Finance", "Engineering", "Sales", "Support", "IT", "Legal"];

function chunks<T>(rows: T[], size = 500): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < rows.length; i += size) out.push(rows.slice(i, i + size));
  return out;
}

const dir = mkdtempSync(join(tmpdir(), "bench-preview-"));
const handle = openDatabase(`sqlite:${join(dir, "bridge.db")}`);
const { db } = handle;
const orgId = "org-bench";
const dirId = "dir-bench";
const seedStarted = performance.now();
db.transaction((tx) => {
  tx.insert(organizations)
    .values({
      id: orgId,
      slug: "bench",
      displayName: "Bench",
      userModel: "isolated",
      connection: "acme-users",
      createdAt: 1,
      updatedAt: 1,
    })
    .run();
  tx.insert(directories).values({ id: dirId, organizationId: orgId, name: "okta", createdAt: 1 }).run();
  const groupRows = groupNames.map((name, i) => ({
    id: `g${i}`,
    directoryId: dirId,
    displayName: name,
    displayNameLower: name.toLowerCase(),
    externalId: `00g${i}`,
    resource: "{}",
    version: 1,
    createdAt: 1,
    modifiedAt: 1,
  }));
  for (const c of chunks(groupRows)) tx.insert(groups).values(c).run();
  const userRows = [];
  const emailRows = [];
  const memberRows = [];
  const holdRows = [];
  for (let i = 0; i < userCount; i++) {
    const id = `u${String(i).padStart(6, "0")}`;
    const local = `user${i}`;
    const resource = {
      schemas: [
        "urn:ietf:params:scim:schemas:core:2.0:User",
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User",
      ],
      userName: `${local}@acme.test`,
      externalId: `00u${i}`,
      displayName: `User ${i}`,
      name: { givenName: "User", familyName: String(i) },
      emails: [{ primary: true, type: "work", value: `${local}@acme.test` }],
      title: i % 10 === 0 ? "Engineering Manager" : "Engineer",
      "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {
        department: departments[i % departments.length],
        employeeNumber: String(100000 + i),
      },
    };
    userRows.push({
      id,
      directoryId: dirId,
      userName: resource.userName,
      userNameLower: resource.userName,
      externalId: resource.externalId,
      displayName: resource.displayName,
      active: i % 20 !== 0,
      resource: JSON.stringify(resource),
      version: 1,
      createdAt: 1,
      modifiedAt: 1,
      deletedAt: i % 100 === 1 ? 2 : null,
    });
    emailRows.push({
      userId: id,
      directoryId: dirId,
      position: 0,
      valueLower: resource.userName,
      type: "work",
      primary: true,
    });
    const memberships = new Set([i % groupNames.length, (i * 7) % groupNames.length, (i * 13) % 7]);
    if (i % 3 === 0) memberships.add((i * 31) % groupNames.length);
    for (const g of memberships)
      memberRows.push({ groupId: `g${g}`, memberId: id, directoryId: dirId, memberType: "User", addedAt: 1 });
    if (i % 100 === 7)
      holdRows.push({
        id: `h${i}`,
        organizationId: orgId,
        directoryId: dirId,
        userId: id,
        reason: "review",
        placedBy: "operator:bench",
        placedAt: 1,
      });
  }
  for (const c of chunks(userRows, 200)) tx.insert(users).values(c).run();
  for (const c of chunks(emailRows)) tx.insert(userEmails).values(c).run();
  for (const c of chunks(memberRows)) tx.insert(groupMembers).values(c).run();
  for (const c of chunks(holdRows)) tx.insert(holds).values(c).run();
});
const seedMs = performance.now() - seedStarted;
const memberships = db.select({ n: count() }).from(groupMembers).get()?.n ?? 0;

const active = loadMappingFile(
  readFileSync(join(packageRoot, "mappings", "okta-groups.yaml"), "utf8"),
  "okta-groups.yaml",
);
writeSync(db, saveMappingVersion("bench", active, { actor: { type: "system", id: "bench" } }));
const candidate = parseMapping({
  ...active,
  profile: { ...active.profile, nickname: { from: "userName", transforms: ["uppercase", { capture: "^([^@]+)@" }] } },
  app_metadata: {
    namespace: "acme",
    keys: {
      ...active.app_metadata?.keys,
      department: "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department",
    },
  },
  roles: {
    rules: [
      { name: "managers", when: { attribute: { path: "title", glob: "*Manager" } }, grant: ["manager"] },
      ...active.roles.rules,
    ],
    default: ["member", "viewer"],
  },
});

// The first run is what one `scim-bridge mapping preview` costs (cold JIT and page cache).
const firstStarted = performance.now();
let result = await previewMapping(sqliteStore(handle.sqlite), "bench", candidate);
const firstMs = performance.now() - firstStarted;
const runs: number[] = [];
for (let i = 0; i < 5; i++) {
  const started = performance.now();
  result = await previewMapping(sqliteStore(handle.sqlite), "bench", candidate);
  runs.push(performance.now() - started);
}
handle.close();
rmSync(dir, { recursive: true, force: true });

runs.sort((a, b) => a - b);
const median = runs[Math.floor(runs.length / 2)]!;
const n = (x: number): string => Math.round(x).toLocaleString("en-US");
const c = result.changed;
const row =
  `| mapping preview | ${n(result.total)} users, ${groupNames.length} groups, ${n(memberships)} memberships | ` +
  `first run ${n(firstMs)} ms; then ${n(median)} ms median of 5 (min ${n(runs[0]!)}, max ${n(runs.at(-1)!)}) | ${n((result.total / median) * 1000)} users/s | ` +
  `changed ${n(c.users)}: roles ${n(c.roles)}, profile ${n(c.profile)}, metadata ${n(c.metadata)}, membership ${n(c.membership)}, blocked ${n(c.blocked)} |`;
console.log(row);

const machine = `${cpus().length} × ${cpus()[0]?.model ?? "unknown CPU"}, Node ${process.versions.node}`;
mkdirSync(join(packageRoot, "bench", "results"), { recursive: true });
writeFileSync(
  join(packageRoot, "bench", "results", "preview.md"),
  [
    "<!-- generated by: npx tsx bench/preview.ts -->",
    "| benchmark | data | time | throughput | result |",
    "|---|---|---|---|---|",
    row,
    "",
    `Machine: ${machine}; ${new Date().toISOString().slice(0, 10)}. Seeding took ${n(seedMs)} ms (not timed above).`,
    "previewMapping() reads the organization's users in keyset pages of 1,000 and evaluates desired() twice per user",
    "(active mapping and candidate); it never calls Auth0. The first run includes JIT warm-up and a cold page cache.",
    "",
  ].join("\n"),
);
