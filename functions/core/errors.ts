/**
 * Typed errors. Each carries the HTTP status and the snake_case code of the design's error
 * body; one mapper (`http.ts`) turns them into responses. Messages are sentences a person
 * understands and never contain secrets, tokens or stack traces.
 */
export abstract class AppError extends Error {
  abstract readonly statusCode: number;
  abstract readonly code: string;
}

/** Bad input: rejected before anything is written. */
export class ValidationError extends AppError {
  override readonly name = "ValidationError";
  readonly statusCode = 400;
  readonly code: string;
  /** Where the input was wrong (`body.notifyUrl`, `path.conversationId`...). */
  readonly details: readonly string[];
  constructor(message: string, details: readonly string[] = [], code = "invalid_request") {
    super(message);
    this.code = code;
    this.details = details;
  }
}

/** Missing or wrong credentials. The message never says which part was wrong. */
export class UnauthorizedError extends AppError {
  override readonly name = "UnauthorizedError";
  readonly statusCode = 401;
  readonly code = "unauthorized";
  constructor(message = "Missing or invalid credentials.") {
    super(message);
  }
}

/** A body larger than the route allows. */
export class PayloadTooLargeError extends AppError {
  override readonly name = "PayloadTooLargeError";
  readonly statusCode = 413;
  readonly code = "payload_too_large";
  constructor(limitBytes: number) {
    super(`The request body is larger than the ${limitBytes} bytes this route accepts.`);
  }
}

/**
 * A dependency (DynamoDB, the queue) throttled, timed out or was unreachable after the SDK's
 * retries. The caller should retry after `retryAfterSeconds`.
 */
export class ServiceUnavailableError extends AppError {
  override readonly name = "ServiceUnavailableError";
  readonly statusCode = 503;
  readonly code = "service_unavailable";
  readonly retryAfterSeconds: number;
  constructor(message = "The service is briefly unavailable. Please retry shortly.", retryAfterSeconds = 2) {
    super(message);
    this.retryAfterSeconds = retryAfterSeconds;
  }
}

/**
 * A long write stopped before it finished because the request's time ran out (a 20 000-line
 * transcript against a slow or throttled table). What was written stays (writes are idempotent);
 * the caller parks the event so a replay writes the rest.
 */
export class DeadlineExceededError extends ServiceUnavailableError {}

/** Throttling, timeouts and network failures: transient, worth a retry by the caller. */
const TRANSIENT_NAMES = new Set([
  "ProvisionedThroughputExceededException",
  "ThrottlingException",
  "RequestLimitExceeded",
  "InternalServerError",
  "ServiceUnavailable",
  "TimeoutError",
  "RequestTimeout",
  "RequestTimeoutException",
  "TransactionInProgressException",
  // A single-item write on an item a transaction holds: "Transaction is ongoing for the item", OK to retry.
  "TransactionConflictException",
  "AbortError",
  "ECONNRESET",
  "ECONNREFUSED",
  "ETIMEDOUT",
  "EPIPE",
]);

/** True when an SDK or network error is transient (throttled, timed out, unreachable). */
export const isTransientError = (error: unknown): boolean => {
  if (!(error instanceof Error)) return false;
  const code = (error as { code?: unknown }).code;
  const meta = (error as { $metadata?: { httpStatusCode?: number } }).$metadata;
  const retryable = (error as { $retryable?: unknown }).$retryable;
  return (
    TRANSIENT_NAMES.has(error.name) ||
    (typeof code === "string" && TRANSIENT_NAMES.has(code)) ||
    retryable !== undefined ||
    (meta?.httpStatusCode !== undefined && meta.httpStatusCode >= 500)
  );
};
