/**
 * The gateway's outage detection: failures in a row pause provisioning (Auth0 looks down), but
 * calls that fail together count once, the deprovision lane keeps going, and an answer ends the pause.
 */
import type { ManagementClient } from "auth0";
import { describe, expect, it } from "vitest";
import { Auth0Gateway, type OutagePolicy } from "../../src/auth0/gateway.js";
import { RateLimiter, rateProfile } from "../../src/auth0/rate-limiter.js";

/** Pauses an hour long: a call held by one would never finish within the test. */
const policy: OutagePolicy = {
  failuresBeforePause: 3,
  firstPauseMs: 3_600_000,
  maxPauseMs: 3_600_000,
  transientRetryMs: { min: 0, max: 1 },
};

/** A Management client whose user updates fail (a dropped connection) while `down` says so. */
function fakeAuth0() {
  const auth0 = {
    down: false,
    /** Updates that are sent but not answered yet; `answer()` settles them all at once. */
    held: [] as (() => void)[],
    holding: false,
    sent: [] as string[],
    answer() {
      const held = auth0.held.splice(0);
      for (const settle of held) settle();
    },
  };
  const client = {
    users: {
      update: (id: string) => ({
        withRawResponse: () => {
          auth0.sent.push(id);
          const settle = (resolve: (v: unknown) => void, reject: (e: unknown) => void) => () =>
            auth0.down
              ? reject(new TypeError("fetch failed: other side closed"))
              : resolve({
                  data: { user_id: id },
                  rawResponse: { status: 200, headers: new Headers() },
                });
          return new Promise((resolve, reject) => {
            if (auth0.holding) auth0.held.push(settle(resolve, reject));
            else settle(resolve, reject)();
          });
        },
      }),
    },
  } as unknown as ManagementClient;
  return { auth0, client };
}

describe("Auth0 gateway outage detection", () => {
  it("counts calls in flight that fail together as one failure, so they pause nothing", async () => {
    const { auth0, client } = fakeAuth0();
    const gateway = new Auth0Gateway(client, new RateLimiter(rateProfile("enterprise")), {}, { outage: policy });
    // 20 calls in flight lose their connections at once; their retries (sent after) succeed.
    auth0.holding = true;
    auth0.down = true;
    const calls = Array.from({ length: 20 }, (_, i) => gateway.updateUser(`auth0|${i}`, {}, 1));
    await new Promise((r) => setImmediate(r));
    expect(auth0.held).toHaveLength(20);
    auth0.holding = false;
    auth0.answer();
    auth0.down = false;
    // Counted one by one, 20 failures in a row would have paused provisioning for an hour.
    await expect(Promise.all(calls)).resolves.toHaveLength(20);
    await expect(gateway.updateUser("auth0|later", {}, 1)).resolves.toEqual({ user_id: "auth0|later" });
  });

  it("keeps sending deactivations while Auth0 looks down, and the first answer ends the pause for everyone", async () => {
    const { auth0, client } = fakeAuth0();
    const gateway = new Auth0Gateway(client, new RateLimiter(rateProfile("enterprise")), {}, { outage: policy });
    auth0.down = true;
    // Attempts one after another fail (a call is retried once): the third makes Auth0 look down, and
    // provisioning pauses, with that call's retry held.
    await expect(gateway.updateUser("auth0|p0", {}, 1)).rejects.toThrow();
    const provisioning = gateway.updateUser("auth0|waiting", {}, 1);
    await new Promise((r) => setTimeout(r, 20));
    expect(auth0.sent).toEqual(["auth0|p0", "auth0|p0", "auth0|waiting"]);
    // Auth0 is back: a deactivation is not held by the pause, and its answer lets provisioning go.
    auth0.down = false;
    await expect(gateway.updateUser("auth0|leaver", { blocked: true }, 0)).resolves.toEqual({
      user_id: "auth0|leaver",
    });
    await expect(provisioning).resolves.toEqual({ user_id: "auth0|waiting" });
    expect(auth0.sent.slice(-2)).toEqual(["auth0|leaver", "auth0|waiting"]);
  });
});
