/**
 * The bridge's one error vocabulary. Every layer throws these; src/http/errors.ts converts them once,
 * at the edge, into a SCIM Error (RFC 7644 §3.12) or an admin API error body. Anything else that
 * reaches the edge is a bug and answers a generic 500 without internals.
 */

/** kind → HTTP status. The names follow RFC 7644 §3.12 scimType where one exists. */
export const errorStatus = {
  invalidFilter: 400,
  tooMany: 400,
  uniqueness: 409,
  mutability: 400,
  invalidSyntax: 400,
  invalidPath: 400,
  noTarget: 400,
  invalidValue: 400,
  invalidVers: 400,
  sensitive: 400,
  unauthorized: 401,
  forbidden: 403,
  notFound: 404,
  conflict: 409,
  preconditionFailed: 412,
  payloadTooLarge: 413,
  rateLimited: 429,
  unavailable: 503,
} as const;

export type ErrorKind = keyof typeof errorStatus;

/** Kinds that are also RFC 7644 scimType values (the rest go out without scimType). */
const scimTypes = new Set<ErrorKind>([
  "invalidFilter",
  "tooMany",
  "uniqueness",
  "mutability",
  "invalidSyntax",
  "invalidPath",
  "noTarget",
  "invalidValue",
  "invalidVers",
  "sensitive",
]);

export class BridgeError extends Error {
  readonly kind: ErrorKind;
  /** Seconds, for rateLimited and unavailable. */
  readonly retryAfter?: number;

  constructor(kind: ErrorKind, message: string, options?: { cause?: unknown; retryAfter?: number }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = "BridgeError";
    this.kind = kind;
    this.retryAfter = options?.retryAfter;
  }

  get status(): number {
    return errorStatus[this.kind];
  }

  get scimType(): string | undefined {
    return scimTypes.has(this.kind) ? this.kind : undefined;
  }
}

export const isBridgeError = (e: unknown): e is BridgeError => e instanceof BridgeError;

// Named constructors so call sites read like RFC 7644 §3.12.
export const invalidValue = (detail: string): BridgeError => new BridgeError("invalidValue", detail);
export const invalidSyntax = (detail: string): BridgeError => new BridgeError("invalidSyntax", detail);
export const invalidFilter = (detail: string): BridgeError => new BridgeError("invalidFilter", detail);
export const invalidPath = (detail: string): BridgeError => new BridgeError("invalidPath", detail);
export const noTarget = (detail: string): BridgeError => new BridgeError("noTarget", detail);
export const mutability = (detail: string): BridgeError => new BridgeError("mutability", detail);
export const uniqueness = (detail: string): BridgeError => new BridgeError("uniqueness", detail);
export const tooMany = (detail: string): BridgeError => new BridgeError("tooMany", detail);
export const notFound = (detail: string): BridgeError => new BridgeError("notFound", detail);
export const conflict = (detail: string): BridgeError => new BridgeError("conflict", detail);
export const unauthorized = (detail: string): BridgeError => new BridgeError("unauthorized", detail);
export const forbidden = (detail: string): BridgeError => new BridgeError("forbidden", detail);
export const preconditionFailed = (detail: string): BridgeError => new BridgeError("preconditionFailed", detail);
export const payloadTooLarge = (detail: string): BridgeError => new BridgeError("payloadTooLarge", detail);
export const rateLimited = (detail: string, retryAfter: number): BridgeError =>
  new BridgeError("rateLimited", detail, { retryAfter });
export const unavailable = (detail: string, cause?: unknown): BridgeError =>
  new BridgeError("unavailable", detail, { cause });
