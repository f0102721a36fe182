/**
 * Shared setup for the emulator contract tests: an emulator on 127.0.0.1:0 and the bridge's own
 * node-auth0 v7 client (src/auth0/client.ts), redirected to it as AUTH0_MANAGEMENT_URL does.
 */
import type { ManagementClient } from "auth0";
import { ManagementError } from "auth0";
import { expect } from "vitest";
import { createManagementClient } from "../../src/auth0/client.js";
import { startEmulator, type EmulatorOptions, type RunningEmulator } from "../../src/emulator/index.js";

export const DOMAIN = "tenant.example.auth0.com";
export const DB = "Username-Password-Authentication";

export interface Harness {
  emulator: RunningEmulator;
  client: ManagementClient;
}

/** `maxRetries` defaults to 0 so that error tests see the first answer. */
export async function startHarness(options: EmulatorOptions = {}, maxRetries = 0): Promise<Harness> {
  const emulator = await startEmulator({ rateLimits: false, ...options });
  return { emulator, client: clientFor(emulator, maxRetries) };
}

export function clientFor(
  emulator: RunningEmulator,
  maxRetries = 0,
  credentials = { clientId: "bridge", clientSecret: "s3cret" },
): ManagementClient {
  return createManagementClient(
    { domain: DOMAIN, ...credentials, managementUrl: emulator.url },
    { maxRetries, timeoutInSeconds: 10 },
  );
}

/** Await a rejection and check it is the SDK's typed error with Auth0's body. */
export async function expectApiError<E extends ManagementError>(
  promise: Promise<unknown>,
  errorClass: abstract new (...args: never[]) => E,
  status: number,
  errorCode?: string,
): Promise<E> {
  const err: unknown = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(errorClass);
  expect(err).toBeInstanceOf(ManagementError);
  const apiError = err as E;
  expect(apiError.statusCode).toBe(status);
  const body = apiError.body as Record<string, unknown>;
  expect(body.statusCode).toBe(status);
  expect(typeof body.error).toBe("string");
  expect(typeof body.message).toBe("string");
  if (errorCode !== undefined) expect(body.errorCode).toBe(errorCode);
  return apiError;
}

let counter = 0;
export const uniqueEmail = (prefix = "user"): string =>
  `${prefix}.${Date.now().toString(36)}.${++counter}@example.test`;

export async function createDbUser(
  client: ManagementClient,
  email = uniqueEmail(),
  extra: Record<string, unknown> = {},
): Promise<string> {
  const user = await client.users.create({ connection: DB, email, password: "Correct-Horse-9", ...extra });
  return user.user_id!;
}

/** Raw HTTP to the emulator (control plane, or API calls the SDK cannot make malformed). */
export async function http(
  emulator: RunningEmulator,
  method: string,
  path: string,
  body?: unknown,
  headers: Record<string, string> = {},
): Promise<{ status: number; headers: Headers; body: unknown }> {
  const response = await fetch(`${emulator.url}${path}`, {
    method,
    headers: {
      ...(body !== undefined && typeof body !== "string" ? { "content-type": "application/json" } : {}),
      ...headers,
    },
    ...(body !== undefined ? { body: typeof body === "string" ? body : JSON.stringify(body) } : {}),
  });
  const text = await response.text();
  let parsed: unknown = text;
  try {
    parsed = text ? JSON.parse(text) : undefined;
  } catch {
    /* not JSON */
  }
  return { status: response.status, headers: response.headers, body: parsed };
}

/** A bearer token for raw API calls. */
export async function bearer(emulator: RunningEmulator): Promise<string> {
  const response = await fetch(`${emulator.url}/oauth/token`, {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams({
      grant_type: "client_credentials",
      client_id: "raw",
      client_secret: "raw",
      audience: `https://${DOMAIN}/api/v2/`,
    }).toString(),
  });
  const json = (await response.json()) as { access_token: string };
  return json.access_token;
}
