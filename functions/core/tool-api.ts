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
import { DISPATCH_WINDOW_MS, visibleStatus } from "./task-dispatch.js";
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
 * from `system__conversation_id`. Some setups wrap them as `{ tool_name, parameters, ... }`;
 * both are accepted.
 */
export const toolBodySchema = z.looseObject({
  conversation_id: z.string().check(z.regex(ID_PATTERN)),
});

const readToolBody = (request: HttpRequest): { conversationId: string; params: Record<string, unknown> } => {
  let body = parseJsonBody(request);
  if (body && typeof body === "object" && !Array.isArray(body)) {
    const wrapped = body as { parameters?: unknown; conversation_id?: unknown };
    if (wrapped.parameters && typeof wrapped.parameters === "object" && !Array.isArray(wrapped.parameters)) {
      body = { conversation_id: wrapped.conversation_id, ...(wrapped.parameters as Record<string, unknown>) };
    }
  }
  const { conversation_id: conversationId, ...params } = parseWith(toolBodySchema, body, "body");
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
      // One clock read for the guard and createdAt: accepted at nowMs means createdAt < expiresAt.
      atMs: nowMs,
    },
    [deps.sessions.activeCondition(conversationId, nowMs)],
  );
  if (!created.created) {
    // The session ended between the read and the conditional write: the failed check says when.
    const ended = await deps.sessions.explainInactive(conversationId, nowMs, created.failedCheck);
    return notLiveAnswer(ended, conversationId, toolName);
  }

  const callbackUrl = `${deps.publicBaseUrl}/conversations/${conversationId}/tasks/${taskId}/result`;
  if (deps.now() - nowMs > DISPATCH_WINDOW_MS) {
    // Too late to dispatch safely: readers may soon call it abandoned, so it must stay undispatched.
    deps.logger.error("Task recorded too late to dispatch: it will read as abandoned", {
      conversationId,
      taskId,
      toolName,
      elapsedMs: deps.now() - nowMs,
    });
    throw new ServiceUnavailableError("The task could not be started in time. Please try again.", 2);
  }
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
  try {
    await deps.tasks.markDispatched(conversationId, taskId, deps.now());
  } catch (error) {
    // Dispatched (the runner holds the token and will report back), so the answer is still
    // `accepted`; until its result arrives the task may read as abandoned.
    deps.logger.warn("Task dispatched but its dispatch mark could not be stored", {
      conversationId,
      taskId,
      toolName,
      error: error instanceof Error ? error.message : String(error),
    });
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
  deps: Pick<ToolDeps, "sessions" | "tasks" | "now">,
  request: HttpRequest,
): Promise<Outcome> => {
  const body = parseWith(pollBodySchema, parseJsonBody(request), "body");
  const conversationId = body.conversation_id;
  const lookup = await deps.sessions.lookup(conversationId);
  if (lookup.status !== "active") return notLiveAnswer(lookup, conversationId, "get_task_result");
  const nowMs = deps.now();
  const tasks = (await deps.tasks.listTasks(conversationId))
    .filter((t) => !body.task_id || t.taskId === body.task_id)
    .map((t) => ({
      taskId: t.taskId,
      toolName: t.toolName,
      status: visibleStatus(t, nowMs),
      ...(t.result !== undefined ? { result: t.result } : {}),
      ...(t.resultAt ? { completedAt: t.resultAt } : {}),
    }));
  const pending = tasks.filter((t) => t.status === "pending").length;
  const abandoned = tasks.filter((t) => t.status === "abandoned").length;
  const finished = tasks.length - pending - abandoned;
  return {
    kind: "task_results_listed",
    body: {
      status: "active",
      tasks,
      message:
        tasks.length === 0
          ? "There are no tasks for this conversation yet."
          : `${finished} of ${tasks.length} task(s) have finished.` +
            (abandoned > 0
              ? ` ${abandoned} task(s) were never started because the tool call failed; call the tool again if it is still needed.`
              : ""),
    },
    log: { conversationId, taskCount: tasks.length, pendingCount: pending, abandonedCount: abandoned },
  };
};
