import { ManagementClient } from "auth0";
import type { Auth0Config } from "../config.js";

export interface ManagementClientOptions {
  /**
   * node-auth0 retries 408/429/5xx itself (default 2), sleeping on Retry-After inside the call:
   * outside the limiter and its lane priority, and hiding the 429 from it. The bridge's limiter and
   * job backoff own every retry, so this stays 0 except in tests that exercise the SDK itself.
   */
  maxRetries?: number;
  timeoutInSeconds?: number;
}

/**
 * A fetch that sends requests for https://{domain} to another origin (the emulator). Both the
 * Management API calls and the client-credentials token request go through it.
 */
export function redirectingFetch(domain: string, managementUrl: string): typeof fetch {
  const from = `https://${domain}`;
  const to = managementUrl.replace(/\/+$/, "");
  return (input, init) => {
    if (input instanceof Request) {
      const url = input.url.startsWith(from) ? to + input.url.slice(from.length) : input.url;
      return fetch(new Request(url, input), init);
    }
    const url = String(input);
    return fetch(url.startsWith(from) ? to + url.slice(from.length) : url, init);
  };
}

/** The node-auth0 v7 Management client for a tenant, redirected by AUTH0_MANAGEMENT_URL when set. */
export function createManagementClient(config: Auth0Config, options: ManagementClientOptions = {}): ManagementClient {
  return new ManagementClient({
    domain: config.domain,
    clientId: config.clientId,
    clientSecret: config.clientSecret,
    maxRetries: options.maxRetries ?? 0,
    timeoutInSeconds: options.timeoutInSeconds ?? 30,
    ...(config.managementUrl ? { fetch: redirectingFetch(config.domain, config.managementUrl) } : {}),
  });
}
