import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { scimLimits } from "../../src/scim/limits.js";
import { createTestBridge, type TestBridge } from "../helpers/scim.js";
import { writeFootprint } from "../helpers/store.js";
import { seedUsers } from "./seed.js";

/** A group's member list is bounded per request, and a full replace costs in proportion to it. */
const max = scimLimits.maxMembersPerRequest;
const patchOp = (Operations: unknown[]) => ({ schemas: ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], Operations });

let bridge: TestBridge;
let ids: string[];
beforeAll(async () => {
  bridge = await createTestBridge();
  ids = seedUsers(bridge.sqlite, bridge.directoryId, max + max / 2, "member");
});
afterAll(async () => bridge.close());

const members = (from: number, count: number) => ids.slice(from, from + count).map((value) => ({ value }));

describe("members per request", () => {
  it("refuses a POST, PUT or PATCH carrying more than the maximum with 400 invalidValue naming members, writing nothing", async () => {
    const group = (await bridge.scim.post("/Groups", { displayName: "Bounded" }).expect(201)).body.id as string;
    const before = await writeFootprint(bridge.store);
    const over = members(0, max + 1);
    for (const res of [
      await bridge.scim.post("/Groups", { displayName: "Too big", members: over }),
      await bridge.scim.put(`/Groups/${group}`, { displayName: "Bounded", members: over }),
      await bridge.scim.patch(`/Groups/${group}`, patchOp([{ op: "add", path: "members", value: over }])),
      // Summed over operations.
      await bridge.scim.patch(
        `/Groups/${group}`,
        patchOp([
          { op: "add", path: "members", value: members(0, max / 2) },
          { op: "add", path: "members", value: members(max / 2, max / 2 + 1) },
        ]),
      ),
      // A list of hundreds of thousands (the ids need not exist: it is refused before they are looked up).
      await bridge.scim.put(`/Groups/${group}`, {
        displayName: "Bounded",
        members: Array.from({ length: 200_000 }, (_, i) => ({ value: `u${i}` })),
      }),
    ]) {
      expect(res.status).toBe(400);
      expect(res.body.scimType).toBe("invalidValue");
      expect(res.body.detail).toBe(
        `"members": a request may carry at most ${max} members; add the rest with PATCH "add" operations`,
      );
    }
    expect(await writeFootprint(bridge.store)).toEqual(before);
  });

  it("replaces a full list of the maximum with another, half overlapping, writing only the difference", async () => {
    const group = (await bridge.scim.post("/Groups", { displayName: "Full", members: members(0, max) }).expect(201))
      .body.id as string;
    await bridge.scim.put(`/Groups/${group}`, { displayName: "Full", members: members(max / 2, max) }).expect(200);
    const res = await bridge.scim.get(`/Groups/${group}`).expect(200);
    const stored = new Set((res.body.members as { value: string }[]).map((m) => m.value));
    expect(stored.size).toBe(max);
    expect(stored.has(ids[max / 2]!)).toBe(true);
    expect(stored.has(ids[max / 2 - 1]!)).toBe(false);
    expect(stored.has(ids[max + max / 2 - 1]!)).toBe(true);
    // Larger groups grow by PATCH.
    await bridge.scim
      .patch(`/Groups/${group}`, patchOp([{ op: "add", path: "members", value: members(0, max / 2) }]))
      .expect(204);
    expect((await bridge.scim.get(`/Groups/${group}?attributes=displayName`).expect(200)).body.id).toBe(group);
    const count = bridge.sqlite.prepare("SELECT count(*) FROM group_members WHERE group_id = ?").pluck().get(group);
    expect(count).toBe(max + max / 2);
  });
});
