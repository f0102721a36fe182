/**
 * The control plane under /__emulator/ (not part of Auth0): reset, state dump, call log, faults,
 * connections, post-login hook, and the simulated login. It is neither rate limited, faulted,
 * authenticated nor logged.
 */
import { ApiError, invalidBody, routeNotFound } from "./errors.js";
import type { FaultsView } from "./faults.js";
import { validateOptions } from "./connection-options.js";
import { parseLoginRequest } from "./login.js";
import type { Reply } from "./router.js";
import type {
  CallLogEntry,
  Connection,
  ConnectionSpec,
  FaultsInput,
  LoginRequest,
  LoginResult,
  PostLoginHookConfig,
} from "./types.js";
import { isPlainObject } from "./util.js";

/** What the control plane drives; implemented by EmulatorServer. */
export interface ControlTarget {
  reset(): void;
  revokeTokens(): void;
  dump(): Record<string, unknown>;
  calls(): CallLogEntry[];
  clearCalls(): void;
  setFaults(faults: FaultsInput): void;
  clearFaults(): void;
  faultsView(): FaultsView;
  addConnection(spec: ConnectionSpec): Connection;
  setPostLoginHook(hook: PostLoginHookConfig | undefined): void;
  postLoginHook(): PostLoginHookConfig | undefined;
  login(request: LoginRequest): Promise<LoginResult>;
  setGrantScopes(scopes: string[] | undefined): void;
  grantScopes(): string[];
  setAsyncDelay(ms: number): void;
}

const ENDPOINTS = [
  "POST /__emulator/reset",
  "GET /__emulator/state",
  "DELETE /__emulator/tokens",
  "GET|DELETE /__emulator/calls",
  "GET|PUT|DELETE /__emulator/faults",
  "POST /__emulator/connections",
  "GET|PUT|DELETE /__emulator/hook",
  "POST /__emulator/login",
  "GET|PUT /__emulator/grant",
  "PUT /__emulator/async-delay",
];

export async function handleControl(
  target: ControlTarget,
  method: string,
  path: string,
  body: unknown,
): Promise<Reply> {
  const route = `${method} ${path.replace(/\/+$/, "")}`;
  switch (route) {
    case "GET /__emulator":
      return { status: 200, body: { endpoints: ENDPOINTS } };
    case "POST /__emulator/reset":
      target.reset();
      return { status: 204 };
    case "DELETE /__emulator/tokens":
      target.revokeTokens();
      return { status: 204 };
    case "GET /__emulator/state":
      return { status: 200, body: target.dump() };
    case "GET /__emulator/calls":
      return { status: 200, body: target.calls() };
    case "DELETE /__emulator/calls":
      target.clearCalls();
      return { status: 204 };
    case "GET /__emulator/faults":
      return { status: 200, body: target.faultsView() };
    case "PUT /__emulator/faults":
      if (!isPlainObject(body)) throw invalidBody("faults must be a JSON object.");
      target.setFaults(body as FaultsInput);
      return { status: 200, body: target.faultsView() };
    case "DELETE /__emulator/faults":
      target.clearFaults();
      return { status: 204 };
    case "POST /__emulator/connections": {
      if (
        !isPlainObject(body) ||
        typeof body.name !== "string" ||
        typeof body.strategy !== "string" ||
        !body.name ||
        !body.strategy
      ) {
        throw invalidBody("a connection needs {name, strategy}.");
      }
      if (body.id !== undefined && typeof body.id !== "string") throw invalidBody("id must be a string.");
      const spec: ConnectionSpec = {
        name: body.name,
        strategy: body.strategy,
        ...(typeof body.id === "string" ? { id: body.id } : {}),
      };
      if (body.options !== undefined) spec.options = validateOptions(body.options);
      return { status: 201, body: target.addConnection(spec) };
    }
    case "GET /__emulator/grant":
      return { status: 200, body: { scopes: target.grantScopes() } };
    case "PUT /__emulator/grant": {
      // {"scopes": [...]} restricts the client grant; an absent or null list restores every scope.
      const scopes = isPlainObject(body) ? body.scopes : undefined;
      if (
        !isPlainObject(body) ||
        (scopes !== undefined &&
          scopes !== null &&
          (!Array.isArray(scopes) || !scopes.every((x) => typeof x === "string")))
      ) {
        throw invalidBody('the grant is {"scopes": ["read:users", …]} (absent or null = every scope).');
      }
      target.setGrantScopes(Array.isArray(scopes) ? (scopes as string[]) : undefined);
      return { status: 200, body: { scopes: target.grantScopes() } };
    }
    case "PUT /__emulator/async-delay": {
      const ms = isPlainObject(body) ? body.ms : undefined;
      if (typeof ms !== "number" || !Number.isFinite(ms) || ms < 0)
        throw invalidBody('the async delay is {"ms": <milliseconds ≥ 0>}.');
      target.setAsyncDelay(ms);
      return { status: 204 };
    }
    case "GET /__emulator/hook": {
      const hook = target.postLoginHook();
      return { status: 200, body: hook ? { url: hook.url, timeoutMs: hook.timeoutMs } : {} };
    }
    case "PUT /__emulator/hook":
      if (!isPlainObject(body) || typeof body.url !== "string" || typeof body.secret !== "string") {
        throw invalidBody("the hook needs {url, secret[, timeoutMs]}.");
      }
      if (body.timeoutMs !== undefined && typeof body.timeoutMs !== "number")
        throw invalidBody("timeoutMs must be a number.");
      try {
        new URL(body.url);
      } catch {
        throw invalidBody("url is not a URL.");
      }
      target.setPostLoginHook(body as unknown as PostLoginHookConfig);
      return { status: 204 };
    case "DELETE /__emulator/hook":
      target.setPostLoginHook(undefined);
      return { status: 204 };
    case "POST /__emulator/login": {
      const result = await target.login(parseLoginRequest(body));
      return { status: result.decision === "allow" ? 200 : 403, body: result };
    }
    default:
      if (!path.startsWith("/__emulator")) throw new ApiError(500, "control plane routing error");
      throw routeNotFound();
  }
}
