import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2 } from "aws-lambda";
import { AppError, PayloadTooLargeError, ServiceUnavailableError, ValidationError } from "./errors.js";
import type { AppLogger } from "./powertools.js";

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
  const query: Record<string, string> = {};
  for (const [name, value] of Object.entries(event.queryStringParameters ?? {})) {
    if (value !== undefined) query[name] = value;
  }
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

/** DynamoDB allows 32 levels of nesting; the items we store a body in add a few. */
const MAX_JSON_DEPTH = 24;

/**
 * Why DynamoDB could not store this JSON value, or undefined: integers beyond ±2^53 (the
 * DocumentClient refuses to round them), magnitudes below 1e-130, empty map keys, too deep.
 * Rejected here they are a 400 before any write, instead of a 500 from the write.
 */
export const unstorable = (value: unknown, path: string, depth = 0): string | undefined => {
  if (depth > MAX_JSON_DEPTH) return `${path} is nested more than ${MAX_JSON_DEPTH} levels deep`;
  if (typeof value === "number") {
    if (Number.isInteger(value) && !Number.isSafeInteger(value))
      return `${path} is an integer beyond ±2^53; send it as a string`;
    if (value !== 0 && Math.abs(value) < 1e-130) return `${path} is a number too close to zero to store`;
    return undefined;
  }
  if (Array.isArray(value)) {
    for (const [i, item] of value.entries()) {
      const problem = unstorable(item, `${path}[${i}]`, depth + 1);
      if (problem) return problem;
    }
    return undefined;
  }
  if (value !== null && typeof value === "object") {
    for (const [key, item] of Object.entries(value)) {
      if (key === "") return `${path} has an empty key`;
      const problem = unstorable(item, `${path}.${key}`, depth + 1);
      if (problem) return problem;
    }
  }
  return undefined;
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
