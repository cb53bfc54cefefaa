import type { IncomingMessage } from "node:http";
import { describe, expect, it } from "vitest";
import { toEvent } from "../../../local/api-gateway-event.js";

/** What Node hands the local server for one request (only the fields the adapter reads). */
const request = (method: string, headers: IncomingMessage["headers"]): IncomingMessage =>
  ({ method, headers, socket: { remoteAddress: "127.0.0.1" } }) as unknown as IncomingMessage;

/** The local server builds the API Gateway HTTP API payload 2.0 event Lambda would get. */
describe("local adapter: HTTP request -> API Gateway v2 event", () => {
  it("fills the v2 fields the handlers read, from the real request", () => {
    const url = new URL("http://127.0.0.1:3000/conversations/conv-1/session?limit=5");
    const event = toEvent(
      request("POST", {
        "content-type": "application/json",
        authorization: "Bearer t",
        "x-tool-secret": "s",
      }),
      url,
      Buffer.from('{"a":1}'),
      { conversationId: "conv-1" },
      "POST /conversations/{conversationId}/session",
    );
    expect(event).toMatchObject({
      version: "2.0",
      routeKey: "POST /conversations/{conversationId}/session",
      rawPath: "/conversations/conv-1/session",
      rawQueryString: "limit=5",
      headers: { "content-type": "application/json", authorization: "Bearer t", "x-tool-secret": "s" },
      queryStringParameters: { limit: "5" },
      pathParameters: { conversationId: "conv-1" },
      body: '{"a":1}',
      isBase64Encoded: false,
      requestContext: {
        http: { method: "POST", path: "/conversations/conv-1/session", sourceIp: "127.0.0.1" },
        routeKey: "POST /conversations/{conversationId}/session",
        stage: "$default",
      },
    });
    expect(event.requestContext.requestId).toMatch(/^[0-9a-f-]{36}$/);
  });

  it("joins a repeated query parameter with commas, and keeps __proto__ an ordinary key", () => {
    const url = new URL("http://127.0.0.1:3000/conversations?limit=1&limit=2&__proto__=x");
    const event = toEvent(request("GET", {}), url, Buffer.alloc(0), {}, "GET /conversations");
    expect(event.queryStringParameters).toEqual({ limit: "1,2", ["__proto__"]: "x" });
    expect(Object.getPrototypeOf(event.queryStringParameters)).toBe(Object.prototype);
    expect(event).not.toHaveProperty("body");
    expect(event).not.toHaveProperty("pathParameters");
    expect(event.isBase64Encoded).toBe(false);
  });

  it("moves cookies into their own list and base64-encodes a non-text body, as API Gateway does", () => {
    const bytes = Buffer.from([0, 255, 1, 2]);
    const event = toEvent(
      request("POST", { cookie: "a=1; b=2", "content-type": "application/octet-stream" }),
      new URL("http://127.0.0.1:3000/webhooks/elevenlabs/post-call"),
      bytes,
      {},
      "POST /webhooks/elevenlabs/post-call",
    );
    expect(event.cookies).toEqual(["a=1", "b=2"]);
    expect(event.headers).not.toHaveProperty("cookie");
    expect(event.isBase64Encoded).toBe(true);
    expect(Buffer.from(event.body ?? "", "base64")).toEqual(bytes);
  });
});
