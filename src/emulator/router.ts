/**
 * A small method + path-pattern router for /api/v2. Path segments are split before they are
 * percent-decoded, so `auth0%7C1` becomes `auth0|1` and an encoded `/` stays inside its segment
 * (node-auth0 percent-encodes path parameters, and Auth0 decodes them).
 */
import { ApiError, badRequest } from "./errors.js";
import type { Category } from "./rate-limit.js";
import type { EmulatorState } from "./state.js";
import type { Plan } from "./types.js";
import { jsonType } from "./util.js";

export { jsonType } from "./util.js";

export interface Reply {
  status: number;
  body?: unknown;
  headers?: Record<string, string>;
}

/** What every handler may read besides the request. */
export interface TenantEnv {
  readonly plan: Plan;
  /** Origin of the emulator (tickets link here). */
  readonly baseUrl: string;
}

export interface RequestContext {
  method: string;
  params: Record<string, string>;
  query: URLSearchParams;
  body: unknown;
  state: EmulatorState;
  env: TenantEnv;
  /** Client id of the access token that authorised the call. */
  clientId: string;
}

export type Handler = (ctx: RequestContext) => Reply | Promise<Reply>;

interface Route {
  method: string;
  segments: string[];
  category: Category;
  handler: Handler;
}

export interface RouteMatch {
  handler: Handler;
  category: Category;
  params: Record<string, string>;
  /** Method-and-pattern label such as "GET /users/:id" (for the call log and buckets). */
  label: string;
}

export class Router {
  private readonly routes: Route[] = [];

  /** `pattern` is relative to /api/v2, e.g. "/users/:id". Earlier routes win. */
  add(method: string, pattern: string, category: Category, handler: Handler): this {
    this.routes.push({ method, segments: pattern.split("/").filter(Boolean), category, handler });
    return this;
  }

  labels(): string[] {
    return this.routes.map((r) => `${r.method} /${r.segments.join("/")}`);
  }

  /** `rawPath` is the still-encoded path relative to /api/v2. Undefined when nothing matches. */
  match(method: string, rawPath: string): RouteMatch | undefined {
    const raw = rawPath.split("/").filter(Boolean);
    for (const route of this.routes) {
      if (route.method !== method || route.segments.length !== raw.length) continue;
      const params: Record<string, string> = {};
      let ok = true;
      for (let i = 0; i < raw.length && ok; i++) {
        const pattern = route.segments[i]!;
        const value = decodeSegment(raw[i]!);
        if (pattern.startsWith(":")) params[pattern.slice(1)] = value;
        else ok = pattern === value;
      }
      if (ok)
        return {
          handler: route.handler,
          category: route.category,
          params,
          label: `${method} /${route.segments.join("/")}`,
        };
    }
    return undefined;
  }
}

function decodeSegment(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    throw badRequest("Path validation error: malformed percent-encoding", "invalid_uri");
  }
}

/** Narrow a JSON body to an object, or answer Auth0's payload error. */
export function objectBody(body: unknown): Record<string, unknown> {
  if (typeof body === "object" && body !== null && !Array.isArray(body)) return body as Record<string, unknown>;
  throw new ApiError(
    400,
    "Payload validation error: 'Expected type object but found type " + jsonType(body) + "'.",
    "invalid_body",
  );
}
