/**
 * The emulator's user import jobs as node-auth0 and a plain multipart client see them: Auth0's
 * validation messages, the 512,000-byte limit, two concurrent jobs per tenant, asynchronous
 * progress, and error reports with secrets redacted.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import type { ManagementClient } from "auth0";
import { startEmulator, type RunningEmulator } from "../../src/emulator/index.js";
import { clientFor, DB } from "../emulator/helpers.js";
import { emulatorJobs } from "./helpers.js";

let emulator: RunningEmulator;
let client: ManagementClient;
let token: string;
let dbId: string;

beforeAll(async () => {
  emulator = await startEmulator({
    rateLimits: false,
    importJobTiming: { baseMs: 1000, perUserMs: 0 },
    connections: [{ name: "okta", strategy: "okta" }],
  });
  client = clientFor(emulator);
  const res = await fetch(`${emulator.url}/oauth/token`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({
      grant_type: "client_credentials",
      client_id: "x",
      client_secret: "y",
      audience: "https://tenant.example.auth0.com/api/v2/",
    }),
  });
  token = ((await res.json()) as { access_token: string }).access_token;
});
afterAll(() => emulator.close());
beforeEach(() => {
  emulator.reset();
  dbId = emulator.state.connectionByName(DB)!.id;
});

function post(fields: Record<string, string>, users?: string): Promise<Response> {
  const form = new FormData();
  if (users !== undefined) form.append("users", new Blob([users], { type: "application/json" }), "users.json");
  for (const [k, v] of Object.entries(fields)) form.append(k, v);
  return fetch(`${emulator.url}/api/v2/jobs/users-imports`, {
    method: "POST",
    headers: { authorization: `Bearer ${token}` },
    body: form,
  });
}

async function waitDone(id: string) {
  for (;;) {
    const job = await client.jobs.get(id);
    if (job.status !== "pending" && job.status !== "processing") return job;
    await new Promise((r) => setTimeout(r, 20));
  }
}

const hash = {
  algorithm: "sha1",
  hash: { value: "aaf4c61ddcc5e8a2dabede0f3b482cd9aea9434d", encoding: "hex" },
  salt: { value: "pepper" },
};

describe("POST /api/v2/jobs/users-imports", () => {
  it("refuses malformed requests with Auth0's messages", async () => {
    const message = async (r: Promise<Response>) => {
      const res = await r;
      return `${res.status} ${((await res.json()) as { message: string }).message}`;
    };
    expect(await message(post({ connection_id: dbId }))).toBe("400 Must provide 'users' file as multipart part");
    expect(await message(post({ connection_id: dbId }, ""))).toBe("400 Users file must not be empty");
    expect(await message(post({}, "[]"))).toBe("400 Must provide 'connection_id' as multipart part");
    expect(await message(post({ connection_id: "con_short" }, "[]"))).toMatch(
      /^400 Payload validation error: 'String does not match pattern \^con_/,
    );
    expect(await message(post({ connection_id: "con_0123456789abcdef" }, "[]"))).toBe(
      "400 The connection does not exist",
    );
    expect(await message(post({ connection_id: emulator.state.connectionByName("okta")!.id }, "[]"))).toBe(
      "400 Connection must be a database connection",
    );
    expect(await message(post({ connection_id: dbId }, "x".repeat(512_001)))).toBe(
      "413 Payload content length greater than maximum allowed: 512000",
    );
    expect(emulatorJobs(emulator)).toHaveLength(0);
  });

  it("runs at most two jobs at a time per tenant", async () => {
    const users = JSON.stringify([{ email: "a@example.com" }]);
    expect((await post({ connection_id: dbId }, users)).status).toBe(202);
    expect((await post({ connection_id: dbId }, users)).status).toBe(202);
    const third = await post({ connection_id: dbId }, users);
    expect(third.status).toBe(429);
    expect(emulatorJobs(emulator)).toHaveLength(2);
  });

  it("imports asynchronously through node-auth0, and reports each refused user with secrets redacted", async () => {
    await client.users.create({ connection: DB, email: "taken@example.com", password: "Str0ng!pass" });
    const file = Buffer.from(
      JSON.stringify([
        { email: "new@example.com", custom_password_hash: hash, user_metadata: { plan: "gold" } },
        { email: "TAKEN@example.com", custom_password_hash: hash },
        {
          email: "bad-hash@example.com",
          custom_password_hash: { algorithm: "sha1", hash: { value: "zz", encoding: "hex" } },
        },
        { email: "extra@example.com", organization: "acme" },
      ]),
    );
    const job = await client.jobs.usersImports.create({
      users: { data: file, filename: "users.json" },
      connection_id: dbId,
      send_completion_email: false,
    });
    expect(job).toMatchObject({ status: "pending", type: "users_import", connection_id: dbId });
    expect((await waitDone(job.id!)).summary).toEqual({ total: 4, inserted: 1, updated: 0, failed: 3 });
    const errors = (await client.jobs.errors.get(job.id!)) as {
      user: Record<string, unknown>;
      errors: { code: string; path: string }[];
    }[];
    expect(errors.map((e) => [e.user.email, e.errors.map((x) => `${x.code} ${x.path}`)])).toEqual([
      ["TAKEN@example.com", ["CONFLICT_EMAIL email"]],
      ["bad-hash@example.com", ["FORMAT custom_password_hash.hash.value"]],
      ["extra@example.com", ["OBJECT_REQUIRED organization"]],
    ]);
    expect(JSON.stringify(errors)).not.toContain("aaf4c61d");
    expect((errors[0]!.user.custom_password_hash as { hash: { value: string } }).hash.value).toBe("*****");
  });

  it("with upsert, replaces the metadata of a user matched by email instead of refusing it", async () => {
    const first = await client.jobs.usersImports.create({
      users: { data: Buffer.from(JSON.stringify([{ email: "u@example.com", user_metadata: { a: 1, b: 2 } }])) },
      connection_id: dbId,
    });
    await waitDone(first.id!);
    const second = await client.jobs.usersImports.create({
      users: { data: Buffer.from(JSON.stringify([{ email: "u@example.com", user_metadata: { c: 3 } }])) },
      connection_id: dbId,
      upsert: true,
    });
    expect((await waitDone(second.id!)).summary).toEqual({ total: 1, inserted: 0, updated: 1, failed: 0 });
    expect(emulator.state.usersByEmail("u@example.com")[0]!.user_metadata).toEqual({ c: 3 });
    expect(await client.jobs.errors.get(second.id!)).toBeUndefined();
  });

  it("fails the whole job for a file that is not JSON, and says so in the errors report", async () => {
    const job = await client.jobs.usersImports.create({
      users: { data: Buffer.from("email,name\na@example.com,A") },
      connection_id: dbId,
    });
    expect((await waitDone(job.id!)).status).toBe("failed");
    expect(await client.jobs.errors.get(job.id!)).toMatchObject({
      status: "failed",
      status_details: expect.stringMatching(/valid JSON/),
    });
    await expect(client.jobs.get("job_doesnotexist0000")).rejects.toMatchObject({ statusCode: 404 });
  });
});
