import { randomUUID } from "node:crypto";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTestBridge, type TestBridge } from "../helpers/scim.js";
import { storedUser, writeFootprint } from "../helpers/store.js";

/**
 * Bad input (docs/design.md, invariant 6): each answer is a SCIM Error with the right status and
 * scimType, never a 500, and nothing is written.
 */
let bridge: TestBridge;
let userId: string;
let groupId: string;
beforeAll(async () => {
  bridge = await createTestBridge();
  userId = (await bridge.scim.post("/Users", { userName: "victim@x.test", active: true }).expect(201)).body.id;
  groupId = (await bridge.scim.post("/Groups", { displayName: "Victims", members: [{ value: userId }] }).expect(201))
    .body.id;
});
afterAll(async () => bridge.close());

const errorSchema = "urn:ietf:params:scim:api:messages:2.0:Error";
const patchOp = (Operations: unknown) => ({ schemas: ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], Operations });

async function expectRefused(
  send: () => PromiseLike<{ status: number; body: Record<string, unknown>; headers: Record<string, string> }>,
  status: number,
  scimType?: string,
) {
  const before = await writeFootprint(bridge.store);
  const res = await send();
  expect(res.status).toBe(status);
  expect(res.headers["content-type"]).toMatch(/^application\/scim\+json/);
  expect(res.body.schemas).toEqual([errorSchema]);
  expect(res.body.status).toBe(String(status));
  expect(typeof res.body.detail).toBe("string");
  if (scimType) expect(res.body.scimType).toBe(scimType);
  expect(await writeFootprint(bridge.store)).toEqual(before);
}

describe("malformed bodies", () => {
  const raw = (method: "post" | "put" | "patch", path: string, body: string, type = "application/scim+json") =>
    bridge.scim.raw(method, path, body, type);

  it.each([
    ["POST /Users", "post", "/Users"],
    ["PUT /Users/:id", "put", "/Users/:user"],
    ["PATCH /Users/:id", "patch", "/Users/:user"],
    ["POST /Groups", "post", "/Groups"],
    ["PATCH /Groups/:id", "patch", "/Groups/:group"],
  ] as const)("answers malformed JSON on %s with 400 invalidSyntax", async (_l, method, path) => {
    const target = path.replace(":user", userId).replace(":group", groupId);
    await expectRefused(() => raw(method, target, '{"acve": tre, "userName": '), 400, "invalidSyntax");
  });

  // PostgreSQL cannot store U+0000, nor read back JSON holding an unpaired surrogate: such a body is
  // refused alike on both stores, never a 500 (or a stored resource that breaks later filters).
  it("refuses U+0000 or an unpaired surrogate in any string or member name of a body with 400 invalidValue, writing nothing", async () => {
    const nul = "\u0000";
    const bodies: [method: "post" | "put" | "patch", path: string, body: unknown][] = [
      ["post", "/Users", { userName: `nul${nul}@x.test` }],
      ["post", "/Users", { userName: "nul-name@x.test", displayName: `a${nul}b` }],
      ["post", "/Users", { userName: "nul-mail@x.test", emails: [{ value: `a${nul}@x.test` }] }],
      ["post", "/Users", { userName: "nul-key@x.test", [`urn:x:${nul}`]: { a: 1 } }],
      ["put", `/Users/${userId}`, { userName: "nul-put@x.test", nickName: `x${nul}` }],
      ["patch", `/Users/${userId}`, patchOp([{ op: "replace", path: "title", value: `x${nul}` }])],
      ["post", "/Groups", { displayName: `g${nul}` }],
      ["patch", `/Groups/${groupId}`, patchOp([{ op: "add", path: "members", value: [{ value: `a${nul}b` }] }])],
      ["post", "/Users", { userName: "lone-high\ud800@x.test" }],
      ["post", "/Users", { userName: "lone-low@x.test", title: "\udc00x" }],
      ["patch", `/Users/${userId}`, patchOp([{ op: "replace", path: "nickName", value: "end\ud83d" }])],
    ];
    for (const [method, path, body] of bodies)
      await expectRefused(() => bridge.scim.request(method, path, body), 400, "invalidValue");
    // A surrogate pair is one character (an emoji), and is stored.
    await bridge.scim.post("/Users", { userName: "pair@x.test", title: "\ud83d\ude00" }).expect(201);
    const found = await bridge.scim.get(`/Users?filter=${encodeURIComponent('title eq "\u{1F600}"')}`).expect(200);
    expect(found.body.totalResults).toBe(1);
  });

  it("answers 404 for a resource id holding U+0000, as for any unknown id, on every method", async () => {
    for (const resource of ["Users", "Groups"])
      for (const method of ["get", "put", "patch", "delete"] as const)
        await expectRefused(() => bridge.scim.request(method, `/${resource}/a%00b`, { userName: "x" }), 404);
  });

  it("answers a JSON array, a JSON string, an empty body and a non-JSON content type with 400", async () => {
    await expectRefused(() => raw("post", "/Users", "[]"), 400, "invalidSyntax");
    await expectRefused(() => raw("post", "/Users", '"userName"'), 400, "invalidSyntax");
    await expectRefused(() => raw("post", "/Users", ""), 400, "invalidValue"); // an empty resource lacks userName
    await expectRefused(() => raw("post", "/Users", "userName=x", "text/plain"), 400, "invalidSyntax");
  });

  it("answers a body over 1 MiB with 413", async () => {
    const huge = JSON.stringify({ userName: "big@x.test", nickName: "x".repeat(1024 * 1024) });
    await expectRefused(() => raw("post", "/Users", huge), 413);
  });

  it("survives JSON nested 100,000 deep", async () => {
    const deep = '{"userName":"deep@x.test","name":' + "[".repeat(100_000) + "]".repeat(100_000) + "}";
    const res = await raw("post", "/Users", deep);
    expect([400, 413]).toContain(res.status);
    expect(res.body.schemas).toEqual([errorSchema]);
  });
});

describe("filters", () => {
  it.each([
    "userName eq",
    'userName "x"',
    'userName eq "x" and',
    'userName eq "x" or',
    '(userName eq "x"',
    'userName eq "x")',
    'emails[type eq "work"',
    'emails[type eq "work"]]',
    'userName eq "unterminated',
    'userName zz "x"',
    "not",
    '"x" eq userName',
    'emails[value eq "a" and members[value eq "b"]]',
    "active gt true",
    'active eq "maybe"',
    'meta.lastModified gt "not a date"',
    'name eq "complex"',
  ])("answers %j with 400 invalidFilter, never every row", async (filter) => {
    await expectRefused(() => bridge.scim.get(`/Users?filter=${encodeURIComponent(filter)}`), 400, "invalidFilter");
  });

  it("refuses a 64 KB filter, 1,000 nested parentheses and 200 clauses quickly", async () => {
    const started = Date.now();
    // In a URL, Node's 16 KB header limit answers first (431); long filters belong in POST /.search (RFC 7644 §3.4.3).
    await expectRefused(
      () => bridge.scim.get(`/Users?filter=${encodeURIComponent(`userName eq "${"a".repeat(5_000)}"`)}`),
      400,
      "invalidFilter",
    );
    await expectRefused(
      () => bridge.scim.post("/.search", { filter: `userName eq "${"a".repeat(65_536)}"` }),
      400,
      "invalidFilter",
    );
    await expectRefused(
      () =>
        bridge.scim.get(`/Users?filter=${encodeURIComponent("(".repeat(1000) + 'userName eq "x"' + ")".repeat(1000))}`),
      400,
      "invalidFilter",
    );
    const clauses = Array.from({ length: 200 }, (_, i) => `userName eq "u${i}"`).join(" or ");
    await expectRefused(() => bridge.scim.post("/Users/.search", { filter: clauses }), 400, "invalidFilter");
    expect(Date.now() - started).toBeLessThan(5_000);
  });

  it.each([
    ["/Users?startIndex=abc", "invalidValue"],
    ["/Users?count=1.5", "invalidValue"],
    ["/Users?sortBy=nonsense", "invalidValue"],
    ["/Users?sortBy=userName&sortOrder=sideways", "invalidValue"],
  ])("answers %s with 400 %s", async (path, scimType) => {
    await expectRefused(() => bridge.scim.get(path), 400, scimType);
  });
});

describe("wrongly typed values", () => {
  it.each([
    [{ userName: 42 }],
    [{ userName: "typed@x.test", active: "maybe" }],
    [{ userName: "typed@x.test", name: "not complex" }],
    [{ userName: "typed@x.test", emails: [{ value: 5 }] }],
    [
      {
        userName: "typed@x.test",
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": { employeeNumber: { nested: true } },
      },
    ],
    [{ active: true }],
    [{ userName: "" }],
  ])("refuses POST /Users %j with 400 invalidValue", async (body) => {
    await expectRefused(() => bridge.scim.post("/Users", body), 400, "invalidValue");
  });

  it.each([
    ["a string where PatchOp expects an object", "patch me", "invalidSyntax"],
    ["no Operations", { schemas: ["urn:ietf:params:scim:api:messages:2.0:PatchOp"] }, "invalidValue"],
    ["an unknown op", patchOp([{ op: "explode", path: "active" }]), "invalidSyntax"],
    ["remove without a path", patchOp([{ op: "remove" }]), "noTarget"],
    ["a broken value filter", patchOp([{ op: "replace", path: 'emails[type eq "work"', value: "x" }]), "invalidPath"],
    ["a boolean that is not one", patchOp([{ op: "replace", path: "active", value: "maybe" }]), "invalidValue"],
    ["a non-object no-path value", patchOp([{ op: "replace", value: "x" }]), "invalidValue"],
    [
      "a foreign schema",
      { schemas: ["urn:x"], Operations: [{ op: "replace", path: "active", value: false }] },
      "invalidSyntax",
    ],
  ])("refuses a user PATCH with %s", async (_label, body, scimType) => {
    await expectRefused(() => bridge.scim.patch(`/Users/${userId}`, body), 400, scimType);
  });

  it("applies no operation of a PATCH whose last operation fails", async () => {
    const before = (await storedUser(bridge.store, userId))!;
    await expectRefused(
      () =>
        bridge.scim.patch(
          `/Users/${userId}`,
          patchOp([
            { op: "replace", path: "displayName", value: "Changed" },
            { op: "replace", path: "active", value: false },
            { op: "replace", path: "userName", value: 12 },
          ]),
        ),
      400,
      "invalidValue",
    );
    expect(await storedUser(bridge.store, userId)).toEqual(before);
  });

  it.each([
    ["a bare string member (Microsoft garbage suite)", patchOp([{ op: "add", path: "members", value: "string id 1" }])],
    ["an empty member object", patchOp([{ op: "add", path: "members", value: [{}] }])],
    ["an unknown user id", patchOp([{ op: "add", path: "members", value: [{ value: randomUUID() }] }])],
    ["a nested group", patchOp([{ op: "add", path: "members", value: [{ value: userId, type: "Group" }] }])],
    ["a member sub-attribute path", patchOp([{ op: "replace", path: "members.display", value: "x" }])],
  ])("refuses a group PATCH with %s and keeps the members", async (_label, body) => {
    await expectRefused(() => bridge.scim.patch(`/Groups/${groupId}`, body), 400);
  });
});

describe("hostile keys", () => {
  it("never pollutes prototypes through PATCH paths or keys", async () => {
    for (const body of [
      patchOp([{ op: "add", path: "__proto__.polluted", value: "yes" }]),
      patchOp([
        { op: "add", value: { __proto__: { polluted: "yes" }, constructor: { prototype: { polluted: "yes" } } } },
      ]),
      patchOp([{ op: "add", path: "name.__proto__", value: { polluted: "yes" } }]),
    ]) {
      const res = await bridge.scim.patch(`/Users/${userId}`, body);
      expect(res.status).toBeLessThan(500);
    }
    await bridge.scim
      .post(
        "/Users",
        JSON.parse(
          '{"userName":"proto@x.test","__proto__":{"polluted":"yes"},"name":{"__proto__":{"polluted":"yes"}}}',
        ),
      )
      .expect(201);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect(JSON.stringify((await storedUser(bridge.store, userId))!.document)).not.toContain("polluted");
  });
});

describe("no input gives a 500", () => {
  const json = fc.jsonValue({ maxDepth: 4 });
  it("answers arbitrary JSON bodies on every write route with a status below 500", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(
          "post:/Users",
          "put:/Users/:user",
          "patch:/Users/:user",
          "post:/Groups",
          "put:/Groups/:group",
          "patch:/Groups/:group",
          "post:/.search",
        ),
        json,
        async (route, body) => {
          const [method, path] = route.split(":") as ["post" | "put" | "patch", string];
          const res = await bridge.scim[method](path.replace(":user", userId).replace(":group", groupId), body);
          expect(res.status).toBeLessThan(500);
        },
      ),
      { numRuns: 150 },
    );
  });

  it("answers arbitrary filter strings with 200 or 400", async () => {
    const token = fc.constantFrom(
      "userName",
      "emails",
      "[",
      "]",
      "(",
      ")",
      " eq ",
      " co ",
      " and ",
      " or ",
      "not ",
      '"x"',
      "true",
      "null",
      ".value",
      " pr",
      "urn:x:y",
      "\\",
      '"',
      "gt",
      "1.5e3",
    );
    await fc.assert(
      fc.asyncProperty(fc.array(fc.oneof(token, fc.string({ maxLength: 6 })), { maxLength: 12 }), async (parts) => {
        const res = await bridge.scim.get(`/Users?filter=${encodeURIComponent(parts.join(""))}`);
        expect([200, 400]).toContain(res.status);
        if (res.status === 400) expect(res.body.scimType).toBe("invalidFilter");
      }),
      { numRuns: 200 },
    );
  });
});

describe("group bodies", () => {
  it("accepts a full-member-list PUT of a few MiB (Okta AIW) but refuses one over 8 MiB with 413", async () => {
    const group = await bridge.scim.post("/Groups", { displayName: `Big ${randomUUID()}` }).expect(201);
    const padding = "p".repeat(2 * 1024 * 1024);
    await bridge.scim
      .put(`/Groups/${group.body.id}`, { displayName: "Big", members: [{ value: userId, display: padding }] })
      .expect(200);
    await expectRefused(
      () =>
        bridge.scim.put(`/Groups/${group.body.id}`, {
          displayName: "Big",
          members: [{ value: userId, display: "x".repeat(9 * 1024 * 1024) }],
        }),
      413,
    );
  });
});
