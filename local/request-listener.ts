import type { IncomingMessage, ServerResponse } from "node:http";
import type { Duplex } from "node:stream";
import type { LambdaHttpHandler } from "../functions/core/handler.js";
import { openApiDocument } from "../functions/core/openapi.js";
import { readBody, sendJson, toEvent } from "./api-gateway-event.js";
import { inInvocationScope } from "./invocation-scope.js";
import type { LocalHealth } from "./local-env.js";
import { LOCAL_RUNNER_PATH, type LocalRunner } from "./local-runner.js";
import { matchRoute } from "./router.js";

// The local service's request listener: what API Gateway does in front of the Lambdas (route
// matching, 404/405/413, the event), plus what only the local service serves (/health, the
// OpenAPI document, the in-process runner's task path). The lifecycle is in local-service.ts.

/** The only address the local service listens on. */
export const HOST = "127.0.0.1";

/**
 * Requests Node's HTTP parser refuses before there is a request (headers too large, bytes that
 * are not allowed in the path or a header) get the service's JSON error shape, like every other
 * answer, instead of Node's empty `400 Bad Request`.
 */
export const answerProtocolError = (error: Error & { code?: string }, socket: Duplex): void => {
  if (error.code === "ECONNRESET" || !socket.writable) {
    socket.destroy();
    return;
  }
  const tooLarge = error.code === "HPE_HEADER_OVERFLOW";
  const [status, reason, body] = tooLarge
    ? [
        431,
        "Request Header Fields Too Large",
        { error: "headers_too_large", message: "The request headers are too large." },
      ]
    : [
        400,
        "Bad Request",
        {
          error: "bad_request",
          message: "The request is not valid HTTP (bad bytes in the request line or a header).",
        },
      ];
  const text = JSON.stringify(body);
  socket.end(
    `HTTP/1.1 ${status} ${reason}\r\ncontent-type: application/json; charset=utf-8\r\ncache-control: no-store\r\n` +
      `content-length: ${Buffer.byteLength(text)}\r\nconnection: close\r\n\r\n${text}`,
  );
};

/** What the request listener reads from the server it serves. */
export interface ListenerState {
  /** The in-process task runner, when there is one. */
  readonly runner?: LocalRunner;
  /** The loaded handlers, or undefined while starting. */
  handlers(): Map<string, LambdaHttpHandler> | undefined;
  health(): Promise<LocalHealth>;
  /** Why DynamoDB Local cannot serve requests now (it exited), else undefined. */
  storeProblem(): string | undefined;
  readonly quiet: boolean;
}

/** What only the local service serves (health, OpenAPI, the runner's path), or its 503s; false for a route. */
const servedLocally = async (
  state: ListenerState,
  req: IncomingMessage,
  res: ServerResponse,
  url: URL,
): Promise<boolean> => {
  if (req.method === "GET" && url.pathname === "/health") {
    const health = await state.health();
    sendJson(res, health.status === "ok" ? 200 : 503, health);
  } else if (req.method === "GET" && url.pathname === "/openapi.json") {
    sendJson(res, 200, openApiDocument(`http://${HOST}:${(req.socket.localPort ?? 0).toString()}`));
  } else if (state.runner && req.method === "POST" && url.pathname === LOCAL_RUNNER_PATH) {
    await state.runner.handle(req, res);
  } else if (!state.handlers()) {
    sendJson(
      res,
      503,
      { error: "starting", message: "The local service is still starting; retry in a moment." },
      { "retry-after": "1" },
    );
  } else {
    const problem = state.storeProblem();
    if (!problem) return false;
    sendJson(res, 503, { error: "dynamodb_unavailable", message: problem }, { "retry-after": "2" });
  }
  return true;
};

/**
 * Serves one request the way API Gateway would: `/health`, 503 while starting, 404/405 from the
 * route table, 413 above the route's limit (with a margin, so the handler answers it as in AWS),
 * else the route's handler with the event Lambda would get.
 */
export const requestListener =
  (state: ListenerState) =>
  async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const started = performance.now();
    let url: URL;
    try {
      url = new URL(req.url ?? "/", `http://${HOST}`);
    } catch {
      return sendJson(res, 400, { error: "bad_request", message: "The request target is not a valid path." });
    }
    try {
      if (await servedLocally(state, req, res, url)) return;
      const match = matchRoute(req.method ?? "GET", url.pathname);
      if (!match)
        return sendJson(res, 404, { error: "route_not_found", message: "No route matches this path." });
      if ("methodNotAllowed" in match) {
        return sendJson(
          res,
          405,
          {
            error: "method_not_allowed",
            message: `Use ${match.methodNotAllowed.join(" or ")} on this path.`,
          },
          { allow: match.methodNotAllowed.join(", ") },
        );
      }
      // A little above the route's limit, so the handler itself answers 413 like in AWS.
      const body = await readBody(req, match.route.maxBodyBytes + 64 * 1024);
      if (body === "too_large") {
        return sendJson(res, 413, {
          error: "payload_too_large",
          message: "The request body is too large for this route.",
        });
      }
      const handler = state.handlers()?.get(match.route.name);
      if (!handler) throw new Error(`No handler loaded for ${match.route.name}`);
      const event = toEvent(
        req,
        url,
        body,
        match.pathParameters,
        `${match.route.method} ${match.route.path}`,
      );
      // Its own invocation scope, as in Lambda: log keys and metrics never leak between requests.
      const result = await inInvocationScope(event.requestContext.requestId, () => handler(event));
      sendJson(res, result.statusCode, result.body, (result.headers ?? {}) as Record<string, string>);
      if (!state.quiet) {
        console.log(
          `${req.method} ${url.pathname} -> ${result.statusCode} (${(performance.now() - started).toFixed(1)} ms)`,
        );
      }
    } catch (error) {
      console.error(error);
      sendJson(res, 500, {
        error: "internal_error",
        message: "The local server failed to handle the request.",
      });
    }
  };
