/**
 * The Auth0 Management API emulator (docs/emulator.md): a plain HTTP server with in-memory state that
 * the bridge reaches through the real node-auth0 client, redirected by AUTH0_MANAGEMENT_URL.
 * It imports nothing from the rest of src/.
 *
 *   const emulator = await startEmulator({ plan: "enterprise" });
 *   // AUTH0_MANAGEMENT_URL = emulator.url
 *   await emulator.close();
 */
import type { AddressInfo } from "node:net";
import { EmulatorServer } from "./server.js";
import { PLANS, type EmulatorOptions, type RunningEmulator } from "./types.js";

export * from "./types.js";
export { signHookBody, LOGIN_CLIENT_ID } from "./login.js";
export { PLAN_LIMITS } from "./rate-limit.js";
export { DEFAULT_DATABASE_CONNECTION } from "./state.js";
export { ALL_SCOPES, ROUTE_SCOPES } from "./scopes.js";
export { requiredScopes, routeLabels } from "./server.js";
export { passwordPolicyViolations, type PasswordOwner } from "./password-policy.js";

export async function startEmulator(options: EmulatorOptions = {}): Promise<RunningEmulator> {
  const plan = options.plan ?? "enterprise";
  if (!PLANS.includes(plan)) throw new Error(`unknown plan "${String(plan)}" (expected ${PLANS.join(", ")})`);
  if (options.asyncDelayMs !== undefined && !(Number.isFinite(options.asyncDelayMs) && options.asyncDelayMs >= 0)) {
    throw new Error("asyncDelayMs is a number of milliseconds ≥ 0");
  }
  if ((options.clientId === undefined) !== (options.clientSecret === undefined)) {
    throw new Error("clientId and clientSecret go together");
  }
  const server = new EmulatorServer({ ...options, plan });
  const host = options.host ?? "127.0.0.1";
  await new Promise<void>((resolve, reject) => {
    server.http.once("error", reject);
    server.http.listen(options.port ?? 0, host, () => {
      server.http.off("error", reject);
      resolve();
    });
  });
  const { port } = server.http.address() as AddressInfo;
  const url = `http://${host.includes(":") ? `[${host}]` : host}:${port}`;
  server.setBaseUrl(url);

  let closed: Promise<void> | undefined;
  return {
    url,
    port,
    state: server.state,
    calls: () => server.calls(),
    clearCalls: () => server.clearCalls(),
    setFaults: (faults) => server.setFaults(faults),
    reset: () => server.reset(),
    revokeTokens: () => server.revokeTokens(),
    login: (request) => server.login(request),
    addConnection: (spec) => server.addConnection(spec),
    setPostLoginHook: (hook) => server.setPostLoginHook(hook),
    setGrantScopes: (scopes) => server.setGrantScopes(scopes),
    setAsyncDelay: (ms) => server.setAsyncDelay(ms),
    close: () =>
      (closed ??= new Promise<void>((resolve, reject) => {
        server.http.close((err) => (err ? reject(err) : resolve()));
        server.http.closeAllConnections();
      })),
  };
}
