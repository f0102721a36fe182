/**
 * Several instances on one database (docs/design.md, "Several instances"): three `scim-bridge serve`
 * processes (the compiled CLI, as deployed) share one store and one Auth0 tenant. The IdP's SCIM
 * traffic is spread across them the way a load balancer would, and one instance is SIGKILLed twice
 * while the outbox drains, then started again. Auth0 must end up exactly as desired: every user once,
 * every membership and role, every deactivation, no dead job. Run on SQLite (one file) and on
 * PostgreSQL by the two test files that call runInstancesScenario.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { join } from "node:path";
import { expect } from "vitest";
import { onboardOrganization } from "../../src/admin/onboarding.js";
import type { SqlStore } from "../../src/directory/sql.js";
import { many } from "../../src/directory/store-op.js";
import { changeBy } from "../../src/directory/write-context.js";
import { startEmulator } from "../../src/emulator/index.js";
import { packageRoot } from "../../src/paths.js";
import { openJobCount } from "../../src/sync/job-queries.js";
import { applyDatabaseMapping } from "./sync-harness.js";

export interface InstancesScenario {
  databaseUrl: string;
  /** A store on the same database, for seeding and for the final checks. */
  store: SqlStore;
  users: number;
  admins: number;
  deactivated: number;
  /** Longest the outbox may take to drain after the last SCIM request. */
  drainMs: number;
}

const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Instance {
  child: ChildProcess;
  port: string;
}

function* deadJobs(organizationId: string) {
  return yield* many<{ key: string; lastError: string | null }>(
    `SELECT key, last_error AS "lastError" FROM jobs WHERE organization_id = ? AND state = 'dead' ORDER BY id`,
    [organizationId],
  );
}

export async function runInstancesScenario(scenario: InstancesScenario): Promise<void> {
  const { databaseUrl, store, users: USERS, admins: ADMINS, deactivated: DEACTIVATED } = scenario;
  const emulator = await startEmulator({ plan: "enterprise", rateLimits: false });
  const instances: (Instance | undefined)[] = [];
  try {
    const onboarded = await onboardOrganization(
      store,
      { slug: "instances" },
      changeBy({ type: "operator", id: "test" }),
    );
    const organizationId = onboarded.organization.id;
    await applyDatabaseMapping(store, organizationId, {
      roles: { rules: [{ when: { group: "Eng-Admins" }, grant: ["admin"] }], default: ["member"] },
    });
    const env = {
      ...process.env,
      DATABASE_URL: databaseUrl,
      AUTH0_DOMAIN: "tenant.example.auth0.com",
      AUTH0_CLIENT_ID: "instances-test",
      AUTH0_CLIENT_SECRET: "instances-test-secret",
      AUTH0_MANAGEMENT_URL: emulator.url,
      AUTH0_PLAN: "enterprise",
      // Time-compressed pacing and short leases keep the test to seconds.
      AUTH0_RATE_SCALE: "20",
      JOB_LEASE_SECONDS: "2",
      SCIM_RATE_LIMIT_PER_SECOND: "100000",
      PORT: "0",
      LOG_LEVEL: "info",
    };
    const start = (): Promise<Instance> => {
      const child = spawn(process.execPath, [join(packageRoot, "bin/scim-bridge.js"), "serve"], {
        env,
        stdio: ["ignore", "pipe", "inherit"],
      });
      return new Promise<Instance>((resolve, reject) => {
        let out = "";
        const onData = (d: Buffer) => {
          out += d.toString();
          const m = /"port":(\d+)/.exec(out);
          if (m) {
            // Keep draining its log so the pipe never fills and stalls the instance.
            resolve({ child, port: m[1]! });
            out = "";
          }
        };
        child.stdout!.on("data", onData);
        child.once("exit", (code, signal) =>
          reject(new Error(`serve exited (${code ?? signal}): ${out.slice(-2000)}`)),
        );
      });
    };
    const exited = (child: ChildProcess) =>
      new Promise<void>((r) =>
        child.exitCode !== null || child.signalCode !== null ? r() : child.once("exit", () => r()),
      );
    // Instances that start together must agree on start-up work (migrations among it).
    instances.push(...(await Promise.all([start(), start(), start()])));
    const began = Date.now();
    const phase = (name: string) => console.log(`${name}: ${((Date.now() - began) / 1000).toFixed(1)} s`);
    let retried503 = 0;

    let turn = 0;
    /**
     * The load balancer and the IdP's retries: round robin over the instances that are up; a
     * connection refused by an instance that was just killed goes to the next one, and a 503 (the
     * write was not applied: its time budget ran out) is sent again after its Retry-After, as Okta
     * and Entra retry.
     */
    const scim = async (method: string, path: string, body?: unknown): Promise<Response> => {
      for (let attempt = 0; ; attempt++) {
        const up = instances.filter((i): i is Instance => i !== undefined);
        const target = up[turn++ % up.length]!;
        let res: Response;
        try {
          res = await fetch(`http://127.0.0.1:${target.port}/scim/v2/${onboarded.directory.id}${path}`, {
            method,
            headers: { authorization: `Bearer ${onboarded.token.token}`, "content-type": "application/scim+json" },
            ...(body === undefined ? {} : { body: JSON.stringify(body) }),
          });
        } catch (err) {
          if (attempt >= 5) throw err;
          continue;
        }
        if (res.status !== 503 || attempt >= 5) return res;
        retried503++;
        await pause(Number(res.headers.get("retry-after") ?? "1") * 1000);
      }
    };
    const expectStatus = async (res: Promise<Response>, status: number) => {
      const r = await res;
      if (r.status !== status) throw new Error(`expected ${status}, got ${r.status}: ${await r.text()}`);
      return r;
    };

    // The IdP pushes every user, ten requests at a time.
    const ids: string[] = new Array<string>(USERS);
    for (let i = 0; i < USERS; i += 10) {
      await Promise.all(
        Array.from({ length: Math.min(10, USERS - i) }, async (_, k) => {
          const n = i + k;
          const email = `u${n}@example.com`;
          const res = await expectStatus(
            scim("POST", "/Users", {
              schemas: ["urn:ietf:params:scim:schemas:core:2.0:User"],
              userName: email,
              emails: [{ value: email, primary: true }],
              active: true,
            }),
            201,
          );
          ids[n] = ((await res.json()) as { id: string }).id;
        }),
      );
    }

    phase(`${USERS} users created`);
    const killAndRestart = async (index: number) => {
      const victim = instances[index]!;
      instances[index] = undefined;
      victim.child.kill("SIGKILL");
      await exited(victim.child);
      await pause(300);
      instances[index] = await start();
    };

    // The sync is under way on all three; one instance dies holding leases.
    await pause(800);
    await killAndRestart(1);

    const group = await expectStatus(
      scim("POST", "/Groups", {
        schemas: ["urn:ietf:params:scim:schemas:core:2.0:Group"],
        displayName: "Eng-Admins",
        members: [],
      }),
      201,
    );
    const groupId = ((await group.json()) as { id: string }).id;
    for (let i = 0; i < ADMINS; i += 50) {
      await expectStatus(
        scim("PATCH", `/Groups/${groupId}`, {
          schemas: ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
          Operations: [{ op: "add", path: "members", value: ids.slice(i, i + 50).map((value) => ({ value })) }],
        }),
        204,
      );
    }
    // The IdP deactivates the last users, spread across the instances, once they have Auth0 accounts
    // whose access must be cut. (A user deactivated before its first push is never created at all:
    // plan() does not create a user only to block it. With a fast sync either can happen, and this
    // scenario is about blocking users who exist.)
    const provisioned = () =>
      ids.slice(USERS - DEACTIVATED).every((_, i) => {
        const n = USERS - DEACTIVATED + i;
        return emulator.state.usersByEmail(`u${n}@example.com`).length === 1;
      });
    const provisionDeadline = Date.now() + scenario.drainMs;
    while (!provisioned()) {
      if (Date.now() > provisionDeadline)
        throw new Error(`the users to deactivate were not all pushed after ${scenario.drainMs} ms`);
      await pause(100);
    }
    await Promise.all(
      ids.slice(USERS - DEACTIVATED).map((id) =>
        expectStatus(
          scim("PATCH", `/Users/${id}`, {
            schemas: ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            Operations: [{ op: "replace", value: { active: false } }],
          }),
          204,
        ),
      ),
    );
    phase("memberships and deactivations sent");
    await pause(500);
    await killAndRestart(1);

    const openJobs = () => store.read(openJobCount(organizationId));
    const deadline = Date.now() + scenario.drainMs;
    while ((await openJobs()) > 0) {
      if (Date.now() > deadline) throw new Error(`${await openJobs()} jobs still open after ${scenario.drainMs} ms`);
      await pause(250);
    }
    phase(`outbox drained (${retried503} requests retried after a 503)`);
    const running = instances.filter((i): i is Instance => i !== undefined);
    for (const i of running) i.child.kill("SIGTERM");
    await Promise.all(running.map((i) => exited(i.child)));
    for (const i of running) expect(i.child.exitCode).toBe(0);
    instances.length = 0;

    const dead = await store.read(deadJobs(organizationId));
    expect(dead.map((j) => `${j.key}: ${j.lastError}`)).toEqual([]);
    const org = emulator.state.organizationByName("instances")!;
    expect(org).toBeDefined();
    const members = new Set(emulator.state.membersOf(org.id));
    const roleNames = (userId: string) =>
      emulator.state
        .memberRolesOf(org.id, userId)
        .map((id) => emulator.state.roles.get(id)!.name)
        .sort();
    for (let n = 0; n < USERS; n++) {
      const found = emulator.state.usersByEmail(`u${n}@example.com`);
      expect(found, `u${n}`).toHaveLength(1);
      const user = found[0]!;
      expect(members.has(user.user_id), `u${n} member`).toBe(true);
      expect(user.blocked ?? false, `u${n} blocked`).toBe(n >= USERS - DEACTIVATED);
      expect(roleNames(user.user_id), `u${n} roles`).toEqual(n < ADMINS ? ["admin"] : ["member"]);
    }
  } finally {
    for (const i of instances) i?.child.kill("SIGKILL");
    await emulator.close();
  }
}
