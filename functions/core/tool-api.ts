import { randomUUID } from "node:crypto";
import * as z from "zod/mini";
import { hashToken, newTaskToken } from "./auth.js";
import type { Clock } from "./clock.js";
import type { TaskDispatcher } from "./dispatcher.js";
import { ServiceUnavailableError } from "./errors.js";
import { type HttpRequest, parseJsonBody } from "./http.js";
import { assertValidId, ID_PATTERN } from "./ids.js";
import type { Outcome } from "./outcomes.js";
import type { AppLogger } from "./powertools.js";
import type { InactiveSession, SessionStore } from "./session-store.js";
import type { TaskStore } from "./task-store.js";
import { parseWith } from "./validation.js";

/** What the tool routes need. */
export interface ToolDeps {
  readonly sessions: SessionStore;
  readonly tasks: TaskStore;
  readonly dispatcher: TaskDispatcher;
  readonly now: Clock;
  readonly logger: AppLogger;
  readonly publicBaseUrl: string;
  readonly exposeCallbackInToolResponse: boolean;
}

/**
 * ElevenLabs sends the tool's parameters as a flat JSON object, with `conversation_id` filled
 * from `system__conversation_id`. Some setups wrap them as `{ tool_name, parameters,
 * conversation_id }`; both are accepted. The top-level `conversation_id` is the system's and the
 * only one that counts: `parameters` is filled by the LLM, so a `conversation_id` in it (a
 * prompt injection's way into another conversation) is never read and never stored.
 */
export const toolBodySchema = z.looseObject({
  conversation_id: z.string().check(z.regex(ID_PATTERN)),
});

const isObject = (value: unknown): value is Record<string, unknown> =>
  typeof value === "object" && value !== null && !Array.isArray(value);

/** The tool's own parameters: every key but the system's `conversation_id`, `__proto__` included. */
const ownParams = (source: Record<string, unknown>): Record<string, unknown> =>
  Object.fromEntries(Object.entries(source).filter(([key]) => key !== "conversation_id"));

const readToolBody = (request: HttpRequest): { conversationId: string; params: Record<string, unknown> } => {
  const body = parseJsonBody(request);
  const { conversation_id: conversationId } = parseWith(toolBodySchema, body, "body");
  // Read from the parsed JSON, not zod's copy: zod drops a `__proto__` key, which is ordinary data here.
  const source = body as Record<string, unknown>;
  const params = isObject(source.parameters) ? ownParams(source.parameters) : ownParams(source);
  return { conversationId, params };
};

/** What the agent hears when its session is gone; said plainly so the LLM can relay it. */
const notLiveAnswer = (lookup: InactiveSession, conversationId: string, toolName: string): Outcome =>
  lookup.status === "expired"
    ? {
        kind: "tool_session_expired",
        body: {
          status: "session_expired",
          message:
            "This conversation's session has expired, so I can't start that task now. Please start a new session to try again.",
        },
        log: { conversationId, toolName, expiredAt: lookup.expiredAt, expiredForMs: lookup.expiredForMs },
      }
    : {
        kind: "tool_session_not_found",
        body: {
          status: "session_not_found",
          message:
            "This conversation has no active session, so I can't start that task. The app needs to register the session first.",
        },
        log: { conversationId, toolName },
      };

/**
 * `POST /tools/{toolName}`: while the session is active, records a pending task (only the
 * token's hash), dispatches it and answers at once. The task write is conditional on the session
 * still being active at that instant, so a call racing the expiry has one outcome.
 */
export const callTool = async (deps: ToolDeps, request: HttpRequest): Promise<Outcome> => {
  const toolName = request.pathParameters.toolName;
  assertValidId(toolName, "toolName");
  const { conversationId, params } = readToolBody(request);

  const lookup = await deps.sessions.lookup(conversationId);
  if (lookup.status !== "active") return notLiveAnswer(lookup, conversationId, toolName);

  const taskId = randomUUID();
  const token = newTaskToken();
  const nowMs = deps.now();
  const created = await deps.tasks.createTask(
    conversationId,
    {
      taskId,
      toolName,
      params,
      tokenHash: hashToken(token),
      sessionId: lookup.session.sessionId,
      ...(lookup.session.notifyUrl ? { notifyUrl: lookup.session.notifyUrl } : {}),
    },
    [deps.sessions.activeCondition(conversationId, nowMs)],
  );
  if (!created.created) {
    // The session ended between the read and the conditional write: the failed check says when.
    const ended = await deps.sessions.explainInactive(conversationId, nowMs, created.failedCheck);
    return notLiveAnswer(ended, conversationId, toolName);
  }

  const callbackUrl = `${deps.publicBaseUrl}/conversations/${conversationId}/tasks/${taskId}/result`;
  try {
    await deps.dispatcher.dispatch({
      taskId,
      conversationId,
      toolName,
      params,
      callbackUrl,
      callbackToken: token,
      createdAt: created.task.createdAt,
    });
  } catch (error) {
    // The task stays recorded as pending (visible in history); ElevenLabs gets a retryable error.
    deps.logger.error("Task recorded but could not be dispatched to the runners", {
      conversationId,
      taskId,
      toolName,
      dispatcher: deps.dispatcher.kind,
      error: error instanceof Error ? error.message : String(error),
    });
    throw new ServiceUnavailableError(
      "The task could not be handed to a worker. Please try again in a moment.",
      2,
    );
  }

  return {
    kind: "task_accepted",
    body: {
      status: "accepted",
      taskId,
      message: "The task has started. Its result will be available shortly.",
      ...(deps.exposeCallbackInToolResponse ? { callbackUrl, callbackToken: token } : {}),
    },
    log: {
      conversationId,
      taskId,
      toolName,
      dispatcher: deps.dispatcher.kind,
      remainingMs: lookup.remainingMs,
    },
  };
};

/** Body of `POST /tools/get_task_result` (also the OpenAPI document's source). */
export const pollBodySchema = z.looseObject({
  conversation_id: z.string().check(z.regex(ID_PATTERN)),
  task_id: z.optional(z.string().check(z.regex(ID_PATTERN))),
});

/**
 * `POST /tools/get_task_result`: the agent polls for its results (ElevenLabs cannot be pushed
 * into mid-call). Answers only while the session is active.
 */
export const getTaskResults = async (
  deps: Pick<ToolDeps, "sessions" | "tasks">,
  request: HttpRequest,
): Promise<Outcome> => {
  const raw = parseJsonBody(request);
  // The wrapped shape carries task_id in the LLM's `parameters`; conversation_id only ever counts at the top.
  const wrapped = isObject(raw) && isObject(raw.parameters) ? raw.parameters : undefined;
  const body = parseWith(
    pollBodySchema,
    wrapped && isObject(raw) ? { ...wrapped, conversation_id: raw.conversation_id } : raw,
    "body",
  );
  const conversationId = body.conversation_id;
  const lookup = await deps.sessions.lookup(conversationId);
  if (lookup.status !== "active") return notLiveAnswer(lookup, conversationId, "get_task_result");
  const tasks = (await deps.tasks.listTasks(conversationId))
    .filter((t) => !body.task_id || t.taskId === body.task_id)
    .map((t) => ({
      taskId: t.taskId,
      toolName: t.toolName,
      status: t.status,
      ...(t.result !== undefined ? { result: t.result } : {}),
      ...(t.resultAt ? { completedAt: t.resultAt } : {}),
    }));
  const pending = tasks.filter((t) => t.status === "pending").length;
  return {
    kind: "task_results_listed",
    body: {
      status: "active",
      tasks,
      message:
        tasks.length === 0
          ? "There are no tasks for this conversation yet."
          : `${tasks.length - pending} of ${tasks.length} task(s) have finished.`,
    },
    log: { conversationId, taskCount: tasks.length, pendingCount: pending },
  };
};
