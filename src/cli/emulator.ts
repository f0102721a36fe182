/**
 * `scim-bridge auth0-emulator`: runs the Auth0 Management API emulator alone, prints its URL and
 * serves until SIGINT/SIGTERM (docs/design.md, "Contract").
 */
import { InvalidArgumentError, Option, type Command } from "commander";
import {
  ALL_SCOPES,
  PLANS,
  startEmulator,
  type ConnectionSpec,
  type EmulatorOptions,
  type Plan,
} from "../emulator/index.js";

function parsePort(value: string): number {
  const port = Number(value);
  if (!/^\d+$/.test(value) || port > 65535) throw new InvalidArgumentError("a port is an integer from 0 to 65535");
  return port;
}

function parseMs(value: string): number {
  if (!/^\d+$/.test(value)) throw new InvalidArgumentError("expected a whole number of milliseconds");
  return Number(value);
}

function parseScopes(value: string): string[] {
  const scopes = value
    .split(",")
    .map((s) => s.trim())
    .filter(Boolean);
  const unknown = scopes.filter((s) => !ALL_SCOPES.includes(s));
  if (unknown.length)
    throw new InvalidArgumentError(`unknown scope(s): ${unknown.join(", ")} (known: ${ALL_SCOPES.join(", ")})`);
  return scopes;
}

function collectConnection(value: string, previous: ConnectionSpec[]): ConnectionSpec[] {
  const m = /^([^:]+):([a-z0-9-]+)$/.exec(value);
  if (!m) throw new InvalidArgumentError('expected NAME:STRATEGY, e.g. "acme-okta:okta"');
  return [...previous, { name: m[1]!, strategy: m[2]! }];
}

interface EmulatorCommandOptions {
  port: number;
  host: string;
  plan: Plan;
  clientId?: string;
  clientSecret?: string;
  domain?: string;
  connection: ConnectionSpec[];
  hookUrl?: string;
  hookSecret?: string;
  searchDelayMs?: number;
  rateLimits: boolean;
  rateScale?: number;
  scopes?: string[];
  asyncDelayMs?: number;
}

export function registerEmulatorCommand(program: Command): void {
  program
    .command("auth0-emulator")
    .description("run the Auth0 Management API emulator (in-memory; for tests, demos and sandbox mode)")
    .option("--port <port>", "port to listen on (0 = any free port)", parsePort, 0)
    .option("--host <host>", "interface to bind", "127.0.0.1")
    .addOption(
      new Option("--plan <plan>", "Auth0 plan profile (rate limits, Enterprise-only endpoints)")
        .choices(PLANS)
        .default("enterprise"),
    )
    .option("--client-id <id>", "accept only this client id at /oauth/token (default: any)")
    .option("--client-secret <secret>", "and this client secret")
    .option("--domain <host>", "insist on the audience https://<host>/api/v2/ at /oauth/token")
    .option(
      "--connection <name:strategy>",
      "declare an enterprise connection (repeatable), e.g. acme-okta:okta",
      collectConnection,
      [],
    )
    .option("--hook-url <url>", "post-login hook called by simulated logins")
    .option("--hook-secret <secret>", "HMAC secret for the post-login hook signature")
    .option("--search-delay-ms <ms>", "make GET /users eventually consistent by this delay", parseMs)
    .option("--no-rate-limits", "turn rate limiting off")
    .option("--scopes <a,b,c>", "restrict the client grant to these scopes (default: every scope)", parseScopes)
    .option(
      "--async-delay-ms <ms>",
      "delay before member removal and session/refresh-token deletion show (Auth0: about 5000–10000)",
      parseMs,
    )
    .option(
      "--rate-scale <n>",
      "multiply every bucket's refill rate (time compression for benchmarks)",
      (v: string) => {
        const n = Number(v);
        if (!Number.isFinite(n) || n <= 0) throw new InvalidArgumentError("--rate-scale takes a positive number");
        return n;
      },
    )
    .action(async (opts: EmulatorCommandOptions) => {
      if ((opts.clientId === undefined) !== (opts.clientSecret === undefined)) {
        throw new InvalidArgumentError("--client-id and --client-secret go together");
      }
      if ((opts.hookUrl === undefined) !== (opts.hookSecret === undefined)) {
        throw new InvalidArgumentError("--hook-url and --hook-secret go together");
      }
      const options: EmulatorOptions = {
        port: opts.port,
        host: opts.host,
        plan: opts.plan,
        connections: opts.connection,
        rateLimits: opts.rateLimits,
        ...(opts.rateScale !== undefined ? { rateScale: opts.rateScale } : {}),
        ...(opts.clientId !== undefined ? { clientId: opts.clientId, clientSecret: opts.clientSecret } : {}),
        ...(opts.domain ? { domain: opts.domain } : {}),
        ...(opts.hookUrl && opts.hookSecret ? { postLoginHook: { url: opts.hookUrl, secret: opts.hookSecret } } : {}),
        ...(opts.searchDelayMs !== undefined ? { searchConsistencyDelayMs: opts.searchDelayMs } : {}),
        ...(opts.scopes !== undefined ? { scopes: opts.scopes } : {}),
        ...(opts.asyncDelayMs !== undefined ? { asyncDelayMs: opts.asyncDelayMs } : {}),
      };
      const emulator = await startEmulator(options);
      console.log(`Auth0 Management API emulator (${opts.plan} plan) listening on ${emulator.url}`);
      console.log(`  AUTH0_MANAGEMENT_URL=${emulator.url}   control plane: ${emulator.url}/__emulator`);
      await new Promise<void>((resolve) => {
        const stop = () => {
          process.off("SIGINT", stop);
          process.off("SIGTERM", stop);
          resolve();
        };
        process.on("SIGINT", stop);
        process.on("SIGTERM", stop);
      });
      await emulator.close();
    });
}
