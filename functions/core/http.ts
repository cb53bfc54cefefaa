import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2 } from "aws-lambda";
import { AppError, PayloadTooLargeError, ServiceUnavailableError, ValidationError } from "./errors.js";
import type { AppLogger } from "./powertools.js";
import { unstorable } from "./storable.js";

/** A request as every handler sees it: lowercased headers and the exact raw body bytes. */
export interface HttpRequest {
  readonly method: string;
  readonly path: string;
  readonly pathParameters: Readonly<Record<string, string>>;
  readonly query: Readonly<Record<string, string>>;
  /** Header names lowercased (API Gateway HTTP APIs already do; the local server does the same). */
  readonly headers: Readonly<Record<string, string>>;
  /** Exactly the bytes the caller sent (base64-decoded when API Gateway encoded them). */
  readonly rawBody: Buffer;
  readonly requestId: string;
  /**
   * Time left to answer, in ms, when the request was read: the Lambda's remaining time (its
   * timeout, which API Gateway's 30 s cap bounds). Undefined without a Lambda context (local).
   */
  readonly remainingMs?: number;
}

export type HttpResponse = APIGatewayProxyStructuredResultV2 & { statusCode: number; body: string };

const JSON_HEADERS = { "content-type": "application/json; charset=utf-8", "cache-control": "no-store" };

/** A JSON response. */
export const json = (
  statusCode: number,
  body: unknown,
  headers: Record<string, string> = {},
): HttpResponse => ({
  statusCode,
  headers: { ...JSON_HEADERS, ...headers },
  body: JSON.stringify(body),
});

/** The design's error body: `{ error, message }` (plus `details` for bad input). */
export const errorBody = (code: string, message: string, details?: readonly string[]) => ({
  error: code,
  message,
  ...(details && details.length > 0 ? { details } : {}),
});

/**
 * Reads an API Gateway v2 event into an {@link HttpRequest}, enforcing the route's body limit
 * before anything else looks at the body.
 */
export const readRequest = (event: APIGatewayProxyEventV2, maxBodyBytes: number): HttpRequest => {
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(event.headers ?? {})) {
    if (value !== undefined) headers[name.toLowerCase()] = value;
  }
  const body = event.body ?? "";
  // Check the size before decoding (base64 carries 3 bytes per 4 characters).
  const size = event.isBase64Encoded ? Math.floor((body.length * 3) / 4) : Buffer.byteLength(body, "utf8");
  if (size > maxBodyBytes + 2) throw new PayloadTooLargeError(maxBodyBytes);
  const rawBody = event.isBase64Encoded ? Buffer.from(body, "base64") : Buffer.from(body, "utf8");
  if (rawBody.length > maxBodyBytes) throw new PayloadTooLargeError(maxBodyBytes);
  // fromEntries defines keys, so a query parameter named `__proto__` is kept as a parameter.
  const query = Object.fromEntries(
    Object.entries(event.queryStringParameters ?? {}).filter(
      (entry): entry is [string, string] => entry[1] !== undefined,
    ),
  );
  const pathParameters: Record<string, string> = {};
  for (const [name, value] of Object.entries(event.pathParameters ?? {})) {
    if (value !== undefined) pathParameters[name] = value;
  }
  return {
    method: event.requestContext?.http?.method ?? "GET",
    path: event.rawPath ?? "/",
    pathParameters,
    query,
    headers,
    rawBody,
    requestId: event.requestContext?.requestId ?? "local",
  };
};

/** Parses the body as a JSON value; an empty body is `{}` only when `allowEmpty`. */
export const parseJsonBody = (request: HttpRequest, options: { allowEmpty?: boolean } = {}): unknown => {
  if (request.rawBody.length === 0) {
    if (options.allowEmpty) return {};
    throw new ValidationError("The request body is empty; a JSON object is required.", [], "invalid_json");
  }
  const text = request.rawBody.toString("utf8");
  let value: unknown;
  try {
    value = JSON.parse(text) as unknown;
  } catch {
    throw new ValidationError("The request body is not valid JSON.", [], "invalid_json");
  }
  const problem = unstorable(value, "body");
  if (problem) throw new ValidationError(`The request body cannot be stored: ${problem}.`, [problem]);
  return value;
};

/**
 * The one mapping from errors to responses. Typed errors keep their status and code; anything
 * else is logged with its stack (never sent) and answered as a generic 500 JSON body.
 */
export const errorResponse = (
  error: unknown,
  logger: AppLogger,
  context: Record<string, unknown> = {},
): HttpResponse => {
  if (error instanceof ServiceUnavailableError) {
    logger.warn("Dependency unavailable; asked the caller to retry", {
      ...context,
      retryAfterSeconds: error.retryAfterSeconds,
      outcome: "service_unavailable",
    });
    return json(503, errorBody(error.code, error.message), {
      "retry-after": String(error.retryAfterSeconds),
    });
  }
  if (error instanceof AppError) {
    const details = error instanceof ValidationError ? error.details : undefined;
    logger.info("Request rejected", {
      ...context,
      statusCode: error.statusCode,
      error: error.code,
      reason: error.message,
    });
    return json(error.statusCode, errorBody(error.code, error.message, details));
  }
  logger.error("Unexpected error while handling a request", { ...context, error });
  return json(
    500,
    errorBody("internal_error", "Something went wrong on our side. It has been logged; please retry."),
  );
};
