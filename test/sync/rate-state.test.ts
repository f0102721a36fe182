/**
 * `serve` and a CLI `reconcile` on the same tenant are two processes with two limiters: through the
 * database they spend one budget (not twice the tenant's limit), keep one deprovisioning reserve,
 * and a 429 seen by one holds the other back too. Two connections to one SQLite file stand for the
 * two processes.
 */
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { RateLimiter, rateProfile } from "../../src/auth0/rate-limiter.js";
import { openDatabase, type OpenDatabase } from "../../src/directory/database.js";
import { DatabaseBudget } from "../../src/sync/rate-state.js";

const opened: OpenDatabase[] = [];
const limiters: RateLimiter[] = [];
afterEach(() => {
  for (const l of limiters.splice(0)) l.stop();
  for (const o of opened.splice(0)) o.close();
});

function twoProcesses(tenant = "acme.eu.auth0.com"): [RateLimiter, RateLimiter] {
  const file = join(mkdtempSync(join(tmpdir(), "scim-bridge-rate-")), "bridge.db");
  const make = () => {
    const o = openDatabase(`sqlite:${file}`, { durability: "normal" });
    opened.push(o);
    const l = new RateLimiter(rateProfile("free"), { shared: new DatabaseBudget(o.db, tenant), syncMs: 20 });
    limiters.push(l);
    return l;
  };
  return [make(), make()];
}

/** Provisioning calls granted within `ms` when both processes ask as fast as they can. */
async function grantedWithin(limiter: RateLimiter, ms: number, lane = 1): Promise<number> {
  let n = 0;
  const end = Date.now() + ms;
  const loop = async () => {
    while (Date.now() < end) {
      await limiter.acquire("usersWrite", lane);
      if (Date.now() <= end) n++;
    }
  };
  await Promise.all([loop(), loop()]);
  return n;
}

describe("the tenant's rate budget shared through the database", () => {
  it("two processes together stay within the plan's budget, not twice it", async () => {
    const [serve, cli] = twoProcesses();
    // Free plan: burst 2 (1 held back for deprovisioning), 2 per second.
    const [a, b] = await Promise.all([grantedWithin(serve, 3_000), grantedWithin(cli, 3_000)]);
    // One process alone would get about 1 + 2 × 3 = 7; two unshared processes about 14.
    expect(a + b).toBeLessThanOrEqual(9);
    expect(a + b).toBeGreaterThanOrEqual(5);
  });

  it("keeps the deprovisioning reserve for either process while the other provisions flat out", async () => {
    const [serve, cli] = twoProcesses();
    const flood = grantedWithin(cli, 2_000);
    await new Promise((r) => setTimeout(r, 500));
    const asked = Date.now();
    await serve.acquire("usersWrite", 0);
    expect(Date.now() - asked).toBeLessThan(600);
    await flood;
  });

  it("a 429 seen by one process holds the other back until the reset", async () => {
    const [serve, cli] = twoProcesses();
    const reset = Math.ceil((Date.now() + 1_500) / 1000);
    cli.observe(
      "usersWrite",
      429,
      new Headers({ "x-ratelimit-limit": "2", "x-ratelimit-remaining": "0", "x-ratelimit-reset": String(reset) }),
    );
    await new Promise((r) => setTimeout(r, 50));
    await serve.acquire("usersWrite", 0);
    expect(Date.now()).toBeGreaterThanOrEqual(reset * 1000 - 5);
  });

  it("never mixes two tenants' budgets", async () => {
    const file = join(mkdtempSync(join(tmpdir(), "scim-bridge-rate-")), "bridge.db");
    const o = openDatabase(`sqlite:${file}`, { durability: "normal" });
    opened.push(o);
    const a = new RateLimiter(rateProfile("free"), { shared: new DatabaseBudget(o.db, "a.auth0.com"), syncMs: 0 });
    const b = new RateLimiter(rateProfile("free"), { shared: new DatabaseBudget(o.db, "b.auth0.com"), syncMs: 0 });
    limiters.push(a, b);
    a.observe(
      "usersWrite",
      429,
      new Headers({
        "x-ratelimit-limit": "2",
        "x-ratelimit-remaining": "0",
        "x-ratelimit-reset": String(Math.ceil(Date.now() / 1000) + 30),
      }),
    );
    const asked = Date.now();
    await b.acquire("usersWrite", 0);
    expect(Date.now() - asked).toBeLessThan(200);
  });
});
