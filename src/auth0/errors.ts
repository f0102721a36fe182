import { ManagementError } from "auth0";

/**
 * How the sync engine must react to a failed Management API call. This module is the only reader of
 * node-auth0's ManagementError (statusCode, body.errorCode, rawResponse headers).
 */
export type Auth0FailureKind =
  /** 429, 5xx, 408, timeouts, network errors: try again later. */
  | "retryable"
  /** 409 on a create: the thing exists; look it up and link it. */
  | "conflict"
  /** 404 `inexistent_user`: the Auth0 user is gone. Only this 404 means that. */
  | "userNotFound"
  /** Any other 404 (`inexistent_organization`, `inexistent_connection`, a role, an unknown route). */
  | "notFound"
  /**
   * 400 `operation_not_supported`: e.g. a root attribute of a user whose connection syncs the
   * profile at each login ("Configure Connection Sync with Auth0"). The caller re-reads the
   * connection and plans again instead of failing the job.
   */
  | "unsupported"
  /** 400 PasswordStrengthError (or dictionary, personal data): the connection's password policy refused the password. */
  | "weakPassword"
  /** 403 on an endpoint the tenant's plan lacks (sessions, refresh tokens): fall back and record. */
  | "forbiddenByPlan"
  /** 400 validation, 401/403 misconfiguration: retrying cannot help; the job goes to dead with this reason. */
  | "fatal";

export class Auth0CallError extends Error {
  constructor(
    readonly kind: Auth0FailureKind,
    readonly statusCode: number | undefined,
    readonly errorCode: string | undefined,
    message: string,
    /** Epoch ms before which a retry is pointless (x-ratelimit-reset or Retry-After). */
    readonly retryAt?: number,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = "Auth0CallError";
  }
}

function bodyField(body: unknown, key: string): string | undefined {
  if (body && typeof body === "object" && key in body) {
    const v = (body as Record<string, unknown>)[key];
    return typeof v === "string" ? v : undefined;
  }
  return undefined;
}

/** Epoch ms from Retry-After (seconds or HTTP date) or x-ratelimit-reset (epoch seconds). */
export function retryAtFromHeaders(headers: Headers | undefined, now = Date.now()): number | undefined {
  if (!headers) return undefined;
  const retryAfter = headers.get("retry-after");
  if (retryAfter) {
    const secs = Number(retryAfter);
    if (Number.isFinite(secs)) return now + secs * 1000;
    const date = Date.parse(retryAfter);
    if (!Number.isNaN(date)) return date;
  }
  const reset = Number(headers.get("x-ratelimit-reset"));
  if (Number.isFinite(reset) && reset > 0) return reset * 1000;
  return undefined;
}

/** Paths whose 403 means "your plan does not include this" rather than a misconfigured client. */
const planGatedPath = /\/users\/[^/]+\/(sessions|refresh-tokens|revoke-access)$/;

export function classifyAuth0Error(err: unknown, path?: string): Auth0CallError {
  if (err instanceof Auth0CallError) return err;
  if (err instanceof ManagementError) {
    const status = err.statusCode;
    const errorCode = bodyField(err.body, "errorCode");
    const detail = bodyField(err.body, "message") ?? err.message;
    const headers = err.rawResponse?.headers;
    const message = `Auth0 ${status ?? "error"}${errorCode ? ` ${errorCode}` : ""}: ${detail}`;
    const make = (kind: Auth0FailureKind, retryAt?: number) =>
      new Auth0CallError(kind, status, errorCode, message, retryAt, { cause: err });
    if (status === undefined || status === 408 || status === 429 || status >= 500) {
      return make("retryable", retryAtFromHeaders(headers));
    }
    if (status === 409) return make("conflict");
    if (status === 404) return make(errorCode === "inexistent_user" ? "userNotFound" : "notFound");
    if (status === 400 && errorCode === "operation_not_supported") return make("unsupported");
    // "PasswordStrengthError: Password is too weak" and its siblings (dictionary, personal data, history).
    if (
      status === 400 &&
      (errorCode === "invalid_password" ||
        /Password(Strength|Dictionary|NoUserInfo|History)Error/.test(`${bodyField(err.body, "name") ?? ""} ${detail}`))
    ) {
      return make("weakPassword");
    }
    if (status === 403 && path !== undefined && planGatedPath.test(path) && errorCode !== "insufficient_scope") {
      return make("forbiddenByPlan");
    }
    return make("fatal");
  }
  // Network failures, aborted requests and timeouts from fetch: transient by nature.
  const message = err instanceof Error ? err.message : String(err);
  return new Auth0CallError("retryable", undefined, undefined, `Auth0 unreachable: ${message}`, undefined, {
    cause: err,
  });
}
