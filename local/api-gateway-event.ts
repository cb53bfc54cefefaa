import { isUtf8 } from "node:buffer";
import { randomUUID } from "node:crypto";
import type { IncomingMessage, ServerResponse } from "node:http";
import type { APIGatewayProxyEventV2 } from "aws-lambda";

// The local stand-in for API Gateway: a Node request in, the HTTP API (v2) event Lambda would
// get out, and JSON answers with the handlers' base headers for the server's own errors.

/** Reads a request body, or says it is larger than `limit` bytes. */
export const readBody = (req: IncomingMessage, limit: number): Promise<Buffer | "too_large"> =>
  new Promise((resolveBody, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on("data", (chunk: Buffer) => {
      size += chunk.length;
      if (size <= limit) chunks.push(chunk);
    });
    req.on("end", () => resolveBody(size > limit ? "too_large" : Buffer.concat(chunks)));
    req.on("error", reject);
  });

/** Answers JSON with the same base headers as the handlers. */
export const sendJson = (
  res: ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
) => {
  // The same base headers as the handlers' answers, so the server's own 404/405/413/503 look alike.
  res.writeHead(status, {
    "content-type": "application/json; charset=utf-8",
    "cache-control": "no-store",
    ...headers,
  });
  res.end(typeof body === "string" ? body : JSON.stringify(body));
};

const TEXT_TYPES = /^(application\/(json|x-www-form-urlencoded)|text\/)/i;

/** Builds the API Gateway HTTP API (v2) event the handler would get in AWS. */
export const toEvent = (
  req: IncomingMessage,
  url: URL,
  body: Buffer,
  pathParameters: Record<string, string>,
  routeKey: string,
): APIGatewayProxyEventV2 => {
  const headers: Record<string, string> = {};
  let cookies: string[] = [];
  for (const [name, value] of Object.entries(req.headers)) {
    if (value === undefined) continue;
    // Payload 2.0 moves cookies into their own list.
    if (name === "cookie") cookies = String(value).split(/;\s*/).filter(Boolean);
    else headers[name.toLowerCase()] = Array.isArray(value) ? value.join(",") : value;
  }
  // Like API Gateway: text bodies arrive as strings, anything else base64-encoded. A "text" body
  // that is not valid UTF-8 is base64-encoded too: decoding it would replace bytes, and a signature
  // over the bytes the caller sent (the post-call webhook) would no longer verify.
  const isText = TEXT_TYPES.test(headers["content-type"] ?? "application/json") && isUtf8(body);
  // Like API Gateway: a repeated query parameter arrives once, its values joined by commas.
  const params = new Map<string, string>();
  for (const [name, value] of url.searchParams) {
    const seen = params.get(name);
    params.set(name, seen === undefined ? value : `${seen},${value}`);
  }
  const query = Object.fromEntries(params);
  return {
    version: "2.0",
    routeKey,
    rawPath: url.pathname,
    rawQueryString: url.search.slice(1),
    ...(cookies.length > 0 ? { cookies } : {}),
    headers,
    ...(Object.keys(query).length > 0 ? { queryStringParameters: query } : {}),
    ...(Object.keys(pathParameters).length > 0 ? { pathParameters } : {}),
    requestContext: {
      accountId: "local",
      apiId: "local",
      domainName: url.host,
      domainPrefix: "local",
      http: {
        method: req.method ?? "GET",
        path: url.pathname,
        protocol: "HTTP/1.1",
        sourceIp: req.socket.remoteAddress ?? "",
        userAgent: headers["user-agent"] ?? "",
      },
      requestId: randomUUID(),
      routeKey,
      stage: "$default",
      time: new Date().toISOString(),
      timeEpoch: Date.now(),
    },
    ...(body.length > 0 ? { body: isText ? body.toString("utf8") : body.toString("base64") } : {}),
    isBase64Encoded: body.length > 0 && !isText,
  };
};
