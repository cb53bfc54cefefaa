import type { APIGatewayProxyEventV2 } from "aws-lambda";

/** What a test says about a request; everything else gets API Gateway's defaults. */
export interface ApiEventInput {
  method?: string;
  path?: string;
  pathParameters?: Record<string, string>;
  query?: Record<string, string>;
  headers?: Record<string, string>;
  /** An object is JSON-encoded; a string is sent as is. */
  body?: unknown;
  isBase64Encoded?: boolean;
}

/** Builds an API Gateway HTTP API (v2) event, with header names lowercased as API Gateway does. */
export const apiEvent = (input: ApiEventInput = {}): APIGatewayProxyEventV2 => {
  const method = input.method ?? "POST";
  const path = input.path ?? "/";
  const headers = Object.fromEntries(
    Object.entries(input.headers ?? {}).map(([k, v]) => [k.toLowerCase(), v]),
  );
  let body: string | undefined;
  if (input.body !== undefined)
    body = typeof input.body === "string" ? input.body : JSON.stringify(input.body);
  if (body !== undefined && input.isBase64Encoded) body = Buffer.from(body, "utf8").toString("base64");
  return {
    version: "2.0",
    routeKey: `${method} ${path}`,
    rawPath: path,
    rawQueryString: new URLSearchParams(input.query ?? {}).toString(),
    headers,
    ...(input.query ? { queryStringParameters: input.query } : {}),
    ...(input.pathParameters ? { pathParameters: input.pathParameters } : {}),
    requestContext: {
      accountId: "123456789012",
      apiId: "api",
      domainName: "api.example.test",
      domainPrefix: "api",
      http: { method, path, protocol: "HTTP/1.1", sourceIp: "127.0.0.1", userAgent: "vitest" },
      requestId: `req-${Math.random().toString(36).slice(2)}`,
      routeKey: `${method} ${path}`,
      stage: "$default",
      time: new Date().toISOString(),
      timeEpoch: Date.now(),
    },
    ...(body !== undefined ? { body } : {}),
    isBase64Encoded: input.isBase64Encoded ?? false,
  };
};

/** Parses a handler response body. */
export const bodyOf = (response: { body?: string }): Record<string, unknown> =>
  JSON.parse(response.body ?? "{}") as Record<string, unknown>;
