/**
 * Auth0 Management API error bodies: `{statusCode, error, message, errorCode}` (node-auth0's
 * ManagementApiError reads these fields; 401s carry no errorCode). Handlers throw ApiError; the server turns it
 * into the wire body once.
 */
import { STATUS_CODES } from "node:http";

/** hapi (which serves Auth0's Management API) names a few statuses differently from Node. */
const ERROR_NAMES: Record<number, string> = { 413: "Request Entity Too Large" };

export function errorName(status: number): string {
  return ERROR_NAMES[status] ?? STATUS_CODES[status] ?? "Error";
}

export interface ErrorBody {
  statusCode: number;
  error: string;
  message: string;
  errorCode?: string;
}

export class ApiError extends Error {
  constructor(
    readonly statusCode: number,
    message: string,
    readonly errorCode?: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
    this.name = "ApiError";
  }

  toBody(): ErrorBody {
    return {
      statusCode: this.statusCode,
      error: errorName(this.statusCode),
      message: this.message,
      ...(this.errorCode ? { errorCode: this.errorCode } : {}),
    };
  }
}

/** 400 invalid_body, with Auth0's "Payload validation error" wording. */
export const invalidBody = (detail: string): ApiError =>
  new ApiError(400, `Payload validation error: ${detail}`, "invalid_body");

export const invalidQuery = (detail: string): ApiError =>
  new ApiError(400, `Query validation error: ${detail}`, "invalid_query_string");

export const badRequest = (message: string, errorCode = "invalid_body"): ApiError =>
  new ApiError(400, message, errorCode);

export const userNotFound = (): ApiError => new ApiError(404, "The user does not exist.", "inexistent_user");

export const organizationNotFound = (): ApiError =>
  new ApiError(404, "No organization found by that id or name", "inexistent_organization");

export const roleNotFound = (): ApiError => new ApiError(404, "The role does not exist.", "inexistent_role");

export const connectionNotFound = (): ApiError =>
  new ApiError(404, "The connection does not exist.", "inexistent_connection");

export const conflict = (message: string, errorCode: string): ApiError => new ApiError(409, message, errorCode);

export const unauthorized = (message: string): ApiError => new ApiError(401, message);

export const routeNotFound = (): ApiError => new ApiError(404, "Not Found");

export const tooManyRequests = (headers: Record<string, string>): ApiError =>
  new ApiError(
    429,
    "Too many requests. Check the X-RateLimit-Limit, X-RateLimit-Remaining and X-RateLimit-Reset headers.",
    "too_many_requests",
    headers,
  );

/**
 * Session and refresh-token endpoints are Enterprise-only; Auth0 does not document the exact body
 * it returns on other plans.
 */
export const notOnPlan = (): ApiError =>
  new ApiError(
    403,
    "This feature is not available on your plan. Session and refresh token management is available to customers on Enterprise plans.",
    "operation_not_supported",
  );
