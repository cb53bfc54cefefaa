import type { DynamoDBDocumentClient } from "@aws-sdk/lib-dynamodb";
import type { APIGatewayProxyEventV2 } from "aws-lambda";
import { makeHandler as makeCallTool } from "../../functions/call-tool/handler.js";
import type { Clock } from "../../functions/core/clock.js";
import { createDependencies, type Dependencies } from "../../functions/core/dependencies.js";
import type { TaskMessage } from "../../functions/core/dispatcher.js";
import type { HttpResponse } from "../../functions/core/http.js";
import type { LivePush } from "../../functions/core/notifier.js";
import type { AppLogger } from "../../functions/core/powertools.js";
import { makeHandler as makeGetSession } from "../../functions/get-session/handler.js";
import { makeHandler as makePoll } from "../../functions/get-task-result/handler.js";
import { makeHandler as makeResult } from "../../functions/record-task-result/handler.js";
import { makeHandler as makeRegister } from "../../functions/register-session/handler.js";
import { apiEvent } from "./events.js";
import { captureMetrics, NOTIFY_SECRET, SERVICE_TOKEN, TOOL_SECRET } from "./live-fixtures.js";
import { captureLogger } from "./log-capture.js";

/** The live-path routes by name, each a Lambda handler built with `makeHandler`. */
export interface LiveHandlers {
  readonly register: (event: APIGatewayProxyEventV2) => Promise<HttpResponse>;
  readonly getSession: (event: APIGatewayProxyEventV2) => Promise<HttpResponse>;
  readonly callTool: (event: APIGatewayProxyEventV2) => Promise<HttpResponse>;
  readonly poll: (event: APIGatewayProxyEventV2) => Promise<HttpResponse>;
  readonly result: (event: APIGatewayProxyEventV2) => Promise<HttpResponse>;
}

/** Everything a reliability test needs to drive the live path and count its side effects. */
export interface LiveHarness {
  readonly deps: Dependencies;
  readonly handlers: LiveHandlers;
  /** Every task message handed to the (fake) runners, in order. */
  readonly dispatched: TaskMessage[];
  /** Every live push attempt (successful or not), in order. */
  readonly pushes: LivePush[];
  readonly logger: ReturnType<typeof captureLogger> | AppLogger;
  readonly metrics: ReturnType<typeof captureMetrics>;
}

/** Options of {@link createLiveHarness}. */
export interface LiveHarnessOptions {
  readonly doc: DynamoDBDocumentClient;
  readonly tables?: { readonly sessions: string; readonly conversations: string };
  readonly now?: Clock;
  /** @default a capturing logger */
  readonly logger?: Dependencies["logger"];
  /** Extra environment (secrets, EXPOSE_CALLBACK_IN_TOOL_RESPONSE...). */
  readonly env?: Record<string, string>;
  /** Whether a live push succeeds. @default always */
  readonly pushSucceeds?: (payload: LivePush) => boolean;
}

/** The environment the harness builds its dependencies from (test secrets, given table names). */
export const harnessEnv = (
  tables: { readonly sessions: string; readonly conversations: string } = {
    sessions: "sessions",
    conversations: "conversations",
  },
  extra: Record<string, string> = {},
): Record<string, string> => ({
  SESSIONS_TABLE: tables.sessions,
  CONVERSATIONS_TABLE: tables.conversations,
  PUBLIC_BASE_URL: "https://api.example.test",
  SERVICE_TOKEN,
  TOOL_SECRET,
  NOTIFY_SIGNING_SECRET: NOTIFY_SECRET,
  // The recording dispatcher runs no task: a tool call must not wait for a result (tests opt in).
  TOOL_INLINE_WAIT_MS: "0",
  ...extra,
});

/**
 * Builds every live-path handler on one set of dependencies, with a dispatcher and a notifier
 * that only record what they were given (each push succeeds), so tests can count side effects.
 */
export const createLiveHarness = (options: LiveHarnessOptions): LiveHarness => {
  const logger = options.logger ?? captureLogger();
  const metrics = captureMetrics();
  const deps = createDependencies(
    harnessEnv(options.tables, options.env),
    { doc: options.doc, logger, metrics, ...(options.now ? { now: options.now } : {}) },
    ["tables", "publicBaseUrl"],
  );
  const dispatched: TaskMessage[] = [];
  const pushes: LivePush[] = [];
  const handlers: LiveHandlers = {
    register: makeRegister(deps),
    getSession: makeGetSession(deps),
    callTool: makeCallTool({
      ...deps,
      dispatcher: { kind: "test", dispatch: async (message) => void dispatched.push(message) },
    }),
    poll: makePoll(deps),
    result: makeResult({
      ...deps,
      notifier: {
        push: async (_url, payload) => {
          pushes.push(payload);
          return (options.pushSucceeds?.(payload) ?? true)
            ? { ok: true }
            : { ok: false, reason: "receiver answered HTTP 500" };
        },
      },
    }),
  };
  return { deps, handlers, dispatched, pushes, logger, metrics };
};

const serviceAuth = { authorization: `Bearer ${SERVICE_TOKEN}`, "content-type": "application/json" };
const toolAuth = { "x-tool-secret": TOOL_SECRET, "content-type": "application/json" };

/** Well-formed requests for each live-path route (API Gateway v2 events). */
export const liveRequests = {
  register: (conversationId: string, body: unknown = { notifyUrl: "https://app.example.test/live" }) =>
    apiEvent({
      method: "POST",
      path: `/conversations/${conversationId}/session`,
      pathParameters: { conversationId },
      headers: serviceAuth,
      body,
    }),
  getSession: (conversationId: string) =>
    apiEvent({
      method: "GET",
      path: `/conversations/${conversationId}/session`,
      pathParameters: { conversationId },
      headers: { authorization: `Bearer ${SERVICE_TOKEN}` },
    }),
  callTool: (
    conversationId: string,
    params: Record<string, unknown> = { order_id: "A1" },
    toolName = "lookup_order",
  ) =>
    apiEvent({
      method: "POST",
      path: `/tools/${toolName}`,
      pathParameters: { toolName },
      headers: toolAuth,
      body: { conversation_id: conversationId, ...params },
    }),
  poll: (conversationId: string, taskId?: string) =>
    apiEvent({
      method: "POST",
      path: "/tools/get_task_result",
      headers: toolAuth,
      body: { conversation_id: conversationId, ...(taskId ? { task_id: taskId } : {}) },
    }),
  result: (
    message: Pick<TaskMessage, "conversationId" | "taskId" | "callbackToken">,
    body: unknown = { result: { ok: true } },
  ) =>
    apiEvent({
      method: "POST",
      path: `/conversations/${message.conversationId}/tasks/${message.taskId}/result`,
      pathParameters: { conversationId: message.conversationId, taskId: message.taskId },
      headers: { authorization: `Bearer ${message.callbackToken}`, "content-type": "application/json" },
      body,
    }),
};
