/**
 * An acknowledged SCIM write is committed (docs/design.md, invariant 1): `scim-bridge serve` (the
 * compiled CLI, as deployed) is SIGKILLed right after the last answer, with no orderly shutdown, and
 * every user it answered 201 for is in the database with its audit entry and its sync job. Writes
 * from one client in sequence (each alone in its transaction) and from ten at once (group commits).
 */
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, expect, it } from "vitest";
import { onboardOrganizationOp } from "../../src/admin/onboarding.js";
import { openDatabase } from "../../src/directory/database.js";
import { getUser } from "../../src/directory/users.js";
import { changeBy } from "../../src/directory/write-context.js";
import { startEmulator } from "../../src/emulator/index.js";
import { packageRoot } from "../../src/paths.js";
import { auditFor, pendingJob } from "../helpers/store.js";
import { sqliteStore } from "../../src/directory/sql.js";
import { runSync, writeSync } from "../../src/directory/store-op.js";

const workdir = mkdtempSync(join(tmpdir(), "scim-bridge-acked-"));
afterAll(() => rmSync(workdir, { recursive: true, force: true }));

it("keeps every acknowledged create when the server is killed right after answering", async () => {
  const emulator = await startEmulator({ plan: "enterprise", rateLimits: false });
  const databaseUrl = `sqlite:${join(workdir, "bridge.db")}`;
  const setup = openDatabase(databaseUrl);
  const onboarded = writeSync(
    setup.db,
    onboardOrganizationOp({ slug: "acked" }, changeBy({ type: "operator", id: "test" })),
  );
  setup.close();
  let child: ChildProcess | undefined;
  try {
    child = spawn(process.execPath, [join(packageRoot, "bin/scim-bridge.js"), "serve"], {
      env: {
        ...process.env,
        DATABASE_URL: databaseUrl,
        AUTH0_DOMAIN: "tenant.example.auth0.com",
        AUTH0_CLIENT_ID: "acked",
        AUTH0_CLIENT_SECRET: "acked-secret",
        AUTH0_MANAGEMENT_URL: emulator.url,
        AUTH0_PLAN: "enterprise",
        SCIM_RATE_LIMIT_PER_SECOND: "100000",
        PORT: "0",
        LOG_LEVEL: "info",
      },
      stdio: ["ignore", "pipe", "inherit"],
    });
    const port = await new Promise<string>((resolve, reject) => {
      let out = "";
      child!.stdout!.on("data", (d: Buffer) => {
        out += d.toString();
        const m = /"port":(\d+)/.exec(out);
        if (m) resolve(m[1]!);
      });
      child!.once("exit", (code) => reject(new Error(`serve exited with ${code}: ${out.slice(-2000)}`)));
    });
    const post = async (userName: string): Promise<string | undefined> => {
      const res = await fetch(`http://127.0.0.1:${port}/scim/v2/${onboarded.directory.id}/Users`, {
        method: "POST",
        headers: { authorization: `Bearer ${onboarded.token.token}`, "content-type": "application/scim+json" },
        body: JSON.stringify({ userName, active: true, emails: [{ value: userName, type: "work" }] }),
      });
      return res.status === 201 ? ((await res.json()) as { id: string }).id : undefined;
    };
    const acknowledged: { id: string; userName: string }[] = [];
    for (let i = 0; i < 20; i++) {
      const userName = `serial-${i}@acked.test`;
      const id = await post(userName);
      if (id) acknowledged.push({ id, userName });
    }
    for (let round = 0; round < 3; round++) {
      const names = Array.from({ length: 10 }, (_, i) => `parallel-${round}-${i}@acked.test`);
      const ids = await Promise.all(names.map(post));
      ids.forEach((id, i) => id && acknowledged.push({ id, userName: names[i]! }));
    }
    child.kill("SIGKILL");
    await new Promise((r) =>
      child!.exitCode !== null || child!.signalCode !== null ? r(null) : child!.once("exit", r),
    );
    expect(acknowledged).toHaveLength(50);

    const after = openDatabase(databaseUrl);
    try {
      for (const { id, userName } of acknowledged) {
        expect(runSync(after.db, getUser(onboarded.directory.id, id))?.userName, userName).toBe(userName);
        expect(
          (await auditFor(sqliteStore(after.sqlite), id)).map((e) => e.action),
          userName,
        ).toEqual(["user.create"]);
        // Its sync job is pending or already taken by the worker: either way it is in the jobs table.
        const job =
          (await pendingJob(sqliteStore(after.sqlite), "user", id)) ??
          after.sqlite.prepare("SELECT id FROM jobs WHERE key = ?").get(`user:${id}`);
        expect(job, userName).toBeDefined();
      }
    } finally {
      after.close();
    }
  } finally {
    if (child && child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
    await emulator.close();
  }
}, 120_000);
