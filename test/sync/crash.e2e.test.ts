/**
 * Crash test (docs/design.md, invariant 2): SIGKILL the bridge at random points while
 * 2,000 users sync, restart it each time, and check that Auth0 ends up exactly as desired: every
 * user once (no twins from a create whose result was lost), every membership, every deactivation.
 * The bridge runs as a real child process (`scim-bridge serve`) against the emulator in this process.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { inArray, eq } from "drizzle-orm";
import { afterAll, describe, expect, it } from "vitest";
import { jobs } from "../../db/schema.js";
import { openDatabase } from "../../src/directory/database.js";
import { onboardOrganizationOp } from "../../src/admin/onboarding.js";
import { changeBy } from "../../src/directory/write-context.js";
import { createUser, getUser, updateUser } from "../../src/directory/users.js";
import { startEmulator } from "../../src/emulator/index.js";
import { packageRoot } from "../../src/paths.js";
import { runSync, writeSync } from "../../src/directory/store-op.js";

const USERS = 2_000;
const DEACTIVATED = 100;
const workdir = mkdtempSync(join(tmpdir(), "scim-bridge-crash-"));
afterAll(() => rmSync(workdir, { recursive: true, force: true }));

describe("crash safety", () => {
  it("converges with no duplicate and no lost membership after repeated SIGKILLs during a 2,000-user sync", async () => {
    const emulator = await startEmulator({ plan: "enterprise", rateLimits: false });
    const databaseUrl = `sqlite:${join(workdir, "bridge.db")}`;
    const { db, close } = openDatabase(databaseUrl);
    const actor = { type: "directory" as const, id: "idp" };
    try {
      const onboarded = writeSync(
        db,
        onboardOrganizationOp({ slug: "crash-test" }, changeBy({ type: "operator", id: "test" })),
      );
      const ctx = {
        organizationId: onboarded.organization.id,
        directoryId: onboarded.directory.id,
        actor,
        requestId: null,
        at: Date.now(),
      };
      const ids: string[] = [];
      db.transaction((tx) => {
        for (let i = 0; i < USERS; i++) {
          const email = `u${i}@example.com`;
          ids.push(
            runSync(
              tx,
              createUser(ctx, {
                schemas: ["urn:ietf:params:scim:schemas:core:2.0:User"],
                userName: email,
                emails: [{ value: email, primary: true }],
                active: true,
              }),
            ).id,
          );
        }
      });

      const env = {
        ...process.env,
        DATABASE_URL: databaseUrl,
        AUTH0_DOMAIN: "tenant.example.auth0.com",
        AUTH0_CLIENT_ID: "crash-test",
        AUTH0_CLIENT_SECRET: "crash-test-secret",
        AUTH0_MANAGEMENT_URL: emulator.url,
        AUTH0_PLAN: "enterprise",
        // Time-compressed pacing (20× the enterprise rate) and short leases keep the test to seconds.
        AUTH0_RATE_SCALE: "20",
        JOB_LEASE_SECONDS: "2",
        PORT: "0",
        LOG_LEVEL: "error",
      };
      const serve = (): ChildProcess =>
        spawn(process.execPath, [join(packageRoot, "bin/scim-bridge.js"), "serve"], {
          env,
          stdio: ["ignore", "ignore", "inherit"],
        });
      const exited = (child: ChildProcess) =>
        new Promise<void>((r) =>
          child.exitCode !== null || child.signalCode !== null ? r() : child.once("exit", () => r()),
        );
      const openJobs = () =>
        db
          .select({ id: jobs.id })
          .from(jobs)
          .where(inArray(jobs.state, ["pending", "running"]))
          .all().length;

      let kills = 0;
      for (let round = 0; round < 6; round++) {
        const child = serve();
        await new Promise((r) => setTimeout(r, 400 + Math.floor(Math.random() * 1_200)));
        if (round === 2) {
          // The IdP deactivates 100 users while the bridge keeps crashing.
          db.transaction((tx) => {
            for (const id of ids.slice(0, DEACTIVATED)) {
              const existing = runSync(tx, getUser(ctx.directoryId, id))!;
              const resource = { ...(JSON.parse(existing.resource) as Record<string, unknown>), active: false };
              runSync(tx, updateUser(ctx, existing, resource, "user.patch"));
            }
          });
        }
        child.kill("SIGKILL");
        await exited(child);
        kills++;
        if (openJobs() === 0) break;
      }
      expect(kills).toBeGreaterThanOrEqual(3);

      const last = serve();
      const deadline = Date.now() + 120_000;
      while (openJobs() > 0) {
        if (Date.now() > deadline) throw new Error(`${openJobs()} jobs still open after 120 s`);
        await new Promise((r) => setTimeout(r, 200));
      }
      last.kill("SIGTERM");
      await exited(last);
      expect(last.exitCode).toBe(0);

      const dead = db.select().from(jobs).where(eq(jobs.state, "dead")).all();
      expect(dead.map((j) => `${j.key}: ${j.lastError}`)).toEqual([]);
      const org = emulator.state.organizationByName("crash-test")!;
      expect(org).toBeDefined();
      const members = new Set(emulator.state.membersOf(org.id));
      // Users the IdP deactivated before the bridge ever created them are never created only to
      // be blocked; any that a lost create did make are found and blocked.
      for (let i = 0; i < USERS; i++) {
        const found = emulator.state.usersByEmail(`u${i}@example.com`);
        if (i < DEACTIVATED) {
          expect(found.length, `u${i}`).toBeLessThanOrEqual(1);
          if (found[0]) {
            expect(found[0].blocked, `u${i} blocked`).toBe(true);
            expect(members.has(found[0].user_id), `u${i} member`).toBe(true);
          }
          continue;
        }
        expect(found, `u${i}`).toHaveLength(1);
        expect(members.has(found[0]!.user_id), `u${i} member`).toBe(true);
        expect(found[0]!.blocked ?? false, `u${i} blocked`).toBe(false);
      }
      console.log(`converged after ${kills} SIGKILLs; ${emulator.calls().length} Auth0 calls for ${USERS} users`);
    } finally {
      close();
      await emulator.close();
    }
  }, 240_000);
});
