import { describe, expect, it } from "vitest";
import { Auth0CallError } from "../../src/auth0/errors.js";
import { MembershipBatcher, type MembershipPort } from "../../src/sync/membership-batcher.js";

function recordingPort(
  failFor?: string,
): MembershipPort & { calls: { action: string; orgId: string; ids: string[] }[] } {
  const calls: { action: string; orgId: string; ids: string[] }[] = [];
  const record = (action: string) => async (orgId: string, ids: string[]) => {
    calls.push({ action, orgId, ids });
    if (failFor && ids.includes(failFor))
      throw new Auth0CallError("fatal", 400, "invalid_body", "Auth0 400: bad member");
  };
  return { calls, addMembers: record("add"), removeMembers: record("remove") };
}

describe("MembershipBatcher", () => {
  it("sends 25 provisioning adds of one organization as 3 calls of at most 10", async () => {
    const port = recordingPort();
    const batcher = new MembershipBatcher(port, 10);
    await Promise.all(Array.from({ length: 25 }, (_, i) => batcher.add("org_a", `u${i}`, 1)));
    expect(port.calls.map((c) => c.ids.length)).toEqual([10, 10, 5]);
    expect(new Set(port.calls.flatMap((c) => c.ids)).size).toBe(25);
  });

  it("never mixes organizations or adds with removes in one call", async () => {
    const port = recordingPort();
    const batcher = new MembershipBatcher(port, 10);
    await Promise.all([batcher.add("org_a", "u1", 1), batcher.add("org_b", "u2", 1), batcher.remove("org_a", "u3", 1)]);
    expect(port.calls).toHaveLength(3);
    expect(port.calls.every((c) => c.ids.length === 1)).toBe(true);
  });

  it("isolates the one user that makes a batch fail", async () => {
    const port = recordingPort("bad");
    const batcher = new MembershipBatcher(port, 10);
    const results = await Promise.allSettled(["u1", "bad", "u2"].map((u) => batcher.add("org_a", u, 1)));
    expect(results.map((r) => r.status)).toEqual(["fulfilled", "rejected", "fulfilled"]);
  });

  it("does not hold a deprovision-lane removal back waiting for company", async () => {
    const port = recordingPort();
    const batcher = new MembershipBatcher(port, 10_000);
    const started = Date.now();
    await batcher.remove("org_a", "leaver", 0);
    expect(Date.now() - started).toBeLessThan(1_000);
    expect(port.calls).toEqual([{ action: "remove", orgId: "org_a", ids: ["leaver"] }]);
  });
});
