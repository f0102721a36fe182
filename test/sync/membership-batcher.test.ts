import { describe, expect, it } from "vitest";
import { Auth0CallError } from "../../src/auth0/errors.js";
import { MembershipBatcher, type MembershipPort } from "../../src/sync/membership-batcher.js";

function recordingPort(
  failFor?: string,
): MembershipPort & { calls: { action: string; orgId: string; ids: string[] }[] } {
  const calls: { action: string; orgId: string; ids: string[] }[] = [];
  const record = (action: string) => async (orgId: string, userIds: string[] | (() => string[])) => {
    const ids = typeof userIds === "function" ? userIds() : userIds;
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

  it("keeps a call open to more users while it waits for its rate-limit bucket, then sends them in one call", async () => {
    // The port stands in for the gateway: the call is let go only when the test opens the bucket.
    let openBucket!: () => void;
    const bucket = new Promise<void>((r) => (openBucket = r));
    const calls: { ids: string[]; lane: number }[] = [];
    const take = async (_orgId: string, userIds: string[] | (() => string[]), lane: number) => {
      await bucket;
      calls.push({ ids: typeof userIds === "function" ? userIds() : userIds, lane });
    };
    const batcher = new MembershipBatcher({ addMembers: take, removeMembers: take }, 5);
    const first = batcher.add("org_a", "u0", 1);
    await new Promise((r) => setTimeout(r, 30)); // the first call is now waiting for the bucket
    const later = Array.from({ length: 12 }, (_, i) => batcher.add("org_a", `u${i + 1}`, 1));
    await new Promise((r) => setTimeout(r, 30));
    openBucket();
    await Promise.all([first, ...later]);
    expect(calls.map((c) => c.ids.length)).toEqual([10, 3]);
    expect(new Set(calls.flatMap((c) => c.ids)).size).toBe(13);
  });

  it("sends a deprovision-lane change in its own lane, not in a provisioning call waiting for its bucket", async () => {
    let openBucket!: () => void;
    const bucket = new Promise<void>((r) => (openBucket = r));
    const calls: { ids: string[]; lane: number }[] = [];
    const take = async (_orgId: string, userIds: string[] | (() => string[]), lane: number) => {
      const call = { ids: [] as string[], lane };
      calls.push(call);
      if (lane > 0) await bucket;
      call.ids = typeof userIds === "function" ? userIds() : userIds;
    };
    const batcher = new MembershipBatcher({ addMembers: take, removeMembers: take }, 5);
    const waiting = batcher.remove("org_a", "u1", 1);
    await new Promise((r) => setTimeout(r, 30));
    await batcher.remove("org_a", "leaver", 0); // answered while the provisioning call still waits
    expect(calls).toEqual([
      { ids: [], lane: 1 },
      { ids: ["leaver"], lane: 0 },
    ]);
    openBucket();
    await waiting;
    expect(calls[0]).toEqual({ ids: ["u1"], lane: 1 });
  });
});
