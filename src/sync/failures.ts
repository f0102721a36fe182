import type { Logger } from "pino";
import type { Auth0CallError } from "../auth0/errors.js";
import type { Auth0FailureSink } from "./reconcile-user.js";

/** What an operator should do about a repeated Auth0 error, by error code or status. */
function hint(err: Auth0CallError): string {
  if (err.errorCode === "insufficient_scope")
    return "grant the missing scope to the bridge's application (Auth0 Dashboard > Applications > APIs > Auth0 Management API)";
  if (err.statusCode === 401) return "check AUTH0_CLIENT_ID and AUTH0_CLIENT_SECRET";
  if (err.statusCode === 429) return "the tenant's rate limit is exhausted; other clients may be spending it";
  if (err.errorCode === "inexistent_connection")
    return "create the mapped connection in Auth0 or fix the mapping's connection name";
  if (err.errorCode === "operation_not_supported")
    return "check the connection's sync setting (set_user_root_attributes) against the mapping";
  if (err.kind === "retryable") return "Auth0 looks unavailable; jobs retry on their own";
  return "see the failing users' sync state (lastError) and the dead jobs";
}

/**
 * Counts reconciles that fail on Auth0 errors per organization and error code. Every failure
 * reaches the metrics counter; the third in a row of one code in one organization, and every tenth
 * after it, is logged at warn with the organization, the code and what to do. A success resets the
 * organization's counts.
 */
export function auth0FailureSink(
  log: Logger | undefined,
  count?: (organizationId: string, errorCode: string) => void,
): Auth0FailureSink {
  const streaks = new Map<string, Map<string, number>>();
  return {
    failed(organization, err) {
      const code = err.errorCode ?? (err.statusCode !== undefined ? String(err.statusCode) : "network_error");
      count?.(organization.id, code);
      const byCode = streaks.get(organization.id) ?? new Map<string, number>();
      streaks.set(organization.id, byCode);
      const n = (byCode.get(code) ?? 0) + 1;
      byCode.set(code, n);
      if (n === 3 || (n > 3 && n % 10 === 0)) {
        log?.warn(
          {
            organization: organization.slug,
            organizationId: organization.id,
            auth0ErrorCode: code,
            auth0Status: err.statusCode,
            failures: n,
            detail: err.message,
            action: hint(err),
          },
          "Auth0 keeps failing for this organization",
        );
      }
    },
    succeeded(organizationId) {
      streaks.delete(organizationId);
    },
  };
}
