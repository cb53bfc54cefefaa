import { randomUUID } from "node:crypto";
import * as z from "zod/mini";
import { hashToken, newTaskToken } from "./auth.js";
import type { Clock } from "./clock.js";
import type { SessionStartMode } from "./config.js";
import type { TaskRecord } from "./conversation-items.js";
import type { ConversationStore } from "./conversation-store.js";
import type { TaskDispatcher, TaskMessage } from "./dispatcher.js";
import { ServiceUnavailableError, ValidationError } from "./errors.js";
import { type HttpRequest, parseJsonBody } from "./http.js";
import { assertValidId, ID_PATTERN } from "./ids.js";
import { waitForResult } from "./inline-wait.js";
import { once, withoutUndefined } from "./objects.js";
import type { Outcome } from "./outcomes.js";
import type { AppLogger } from "./powertools.js";
import type { CallContext, InactiveSession, SessionStore } from "./session-store.js";
import { unstorable } from "./storable.js";
import { DISPATCH_WINDOW_MS, visibleStatus } from "./task-dispatch.js";
import type { TaskInput, TaskStore } from "./task-store.js";
import { parseWith } from "./validation.js";

/** What the tool routes need. */
export interface ToolDeps {
  readonly sessions: SessionStore;
  readonly conversations: ConversationStore;
  readonly tasks: TaskStore;
  readonly dispatcher: TaskDispatcher;
  readonly now: Clock;
  readonly logger: AppLogger;
  readonly publicBaseUrl: string;
  readonly exposeCallbackInToolResponse: boolean;
  /** Whether a tool call may start the session of a conversation that never had one. */
  readonly sessionStart: SessionStartMode;
  /** How long to wait for the task's own result before answering `accepted` (0: never). */
  readonly inlineWaitMs?: number;
  /** @default setTimeout (tests pass fake timers) */
  readonly sleep?: (ms: number) => Promise<void>;
}

/**
 * The call facts a tool may send, from ElevenLabs' system dynamic variables. The tool sends them
 * under the variables' own names (`system__call_sid`...); the short names (`call_sid`...) are
 * read too when no `system__` name is present, but stay task parameters (a tool may mean its own
 * parameter by them). Every `system__*` name is call context, never a task parameter.
 */
const CALL_CONTEXT_FIELDS = {
  agentId: "agent_id",
  callSid: "call_sid",
  callerId: "caller_id",
  calledNumber: "called_number",
} as const satisfies Record<keyof CallContext, string>;
const MAX_CONTEXT_VALUE = 128;

/** The call facts of a tool request, each a non-empty string of at most 128 characters. */
export const callContextOf = (params: Readonly<Record<string, unknown>>): CallContext => {
  const context: Record<string, string> = {};
  for (const [field, name] of Object.entries(CALL_CONTEXT_FIELDS)) {
    const value = [params[`system__${name}`], params[name]].find(
      (v): v is string => typeof v === "string" && v.trim() !== "" && v.length <= MAX_CONTEXT_VALUE,
    );
    if (value !== undefined) context[field] = value.trim();
  }
  // The agent id names the session's agent: only a well-formed id is kept as such.
  if (context.agentId !== undefined && !ID_PATTERN.test(context.agentId)) delete context.agentId;
  return context;
};

/**
 * The tool's own parameters: `null` and `""` mean "absent" (LLMs fill optional parameters with
 * them), and `system__*` values are call context, not parameters.
 */
export const taskParamsOf = (params: Readonly<Record<string, unknown>>): Record<string, unknown> =>
  Object.fromEntries(
    Object.entries(params).filter(([name, v]) => v !== null && v !== "" && !name.startsWith("system__")),
  );

/**
 * ElevenLabs sends the tool's parameters as a flat JSON object (POST) or as query parameters
 * (GET, every value a string), with `conversation_id` filled from `system__conversation_id`.
 * Some setups wrap them as `{ tool_name, conversation_id, parameters }`; both are accepted. Which
 * `conversation_id` counts is decided by {@link toolInput}: always the system's.
 */
export const toolBodySchema = once(() =>
  z.looseObject({
    conversation_id: z.string().check(z.regex(ID_PATTERN)),
  }),
);

const isObject = (value: unknown): value is Record<string, unknown> =>
  typeof value === "object" && value !== null && !Array.isArray(value);

const SYSTEM_ID = "system__conversation_id";
/** `null` and `""` mean "absent" (LLMs and templating fill optional values so). */
const isPresent = (value: unknown) => value !== undefined && value !== null && value !== "";

/** A copy of `record` without `omit` (every other key kept as an own key, `__proto__` included). */
const without = (record: Readonly<Record<string, unknown>>, omit: string): Record<string, unknown> =>
  Object.fromEntries(Object.entries(record).filter(([key]) => key !== omit));

/**
 * The request's parameters, the query of a GET (values are strings) or the JSON body of a POST,
 * with exactly one `conversation_id`: the system's. It is the first present of
 * `system__conversation_id` at the top, `conversation_id` at the top, and (wrapped body only)
 * `system__conversation_id` in `parameters`. `parameters` is filled by the LLM, so a
 * `conversation_id` in it (a prompt injection's way into another conversation) is never read and
 * never stored; in the wrapped shape the top-level `system__*` values win over the parameters'.
 * Read from the parsed JSON, never zod's copy (which drops a key named `__proto__`).
 */
export const toolInput = (request: HttpRequest): unknown => {
  const sent: unknown = request.method === "GET" ? queryInput(request) : parseJsonBody(request);
  if (!isObject(sent)) return sent;
  const wrapped = isObject(sent.parameters) ? sent.parameters : undefined;
  const conversationId = [sent[SYSTEM_ID], sent.conversation_id, wrapped?.[SYSTEM_ID]].find(isPresent);
  const system = Object.entries(sent).filter(([key]) => key.startsWith("system__"));
  const params = wrapped ? { ...wrapped, ...Object.fromEntries(system) } : sent;
  return { ...without(params, "conversation_id"), conversation_id: conversationId };
};

/** A GET's query as tool input: refused (400, nothing written) where DynamoDB could not store it. */
const queryInput = (request: HttpRequest): Record<string, unknown> => {
  const problem = unstorable(request.query, "query");
  if (problem) throw new ValidationError(`The query cannot be stored: ${problem}.`, [problem]);
  return { ...request.query };
};

const readToolBody = (
  request: HttpRequest,
): { conversationId: string; params: Record<string, unknown>; context: CallContext } => {
  const source = request.method === "GET" ? "query" : "body";
  const input = toolInput(request);
  const { conversation_id: conversationId } = parseWith(toolBodySchema(), input, source);
  const raw = without(input as Record<string, unknown>, "conversation_id");
  return { conversationId, params: taskParamsOf(raw), context: callContextOf(raw) };
};

/** What the agent hears when its session is gone; said plainly so the LLM can relay it. */
const notLiveAnswer = (lookup: InactiveSession, conversationId: string, toolName: string): Outcome =>
  lookup.status === "expired"
    ? {
        kind: "tool_session_expired",
        body: {
          status: "session_expired",
          reason: lookup.reason,
          message:
            lookup.reason === "call_ended"
              ? "This call has ended, so I can't start that task now."
              : "This conversation's session has expired, so I can't start that task now. Please start a new session to try again.",
        },
        log: {
          conversationId,
          toolName,
          expiredAt: lookup.expiredAt,
          expiredForMs: lookup.expiredForMs,
          reason: lookup.reason,
        },
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

/** The live session a task may be created under, or the session this call starts, or why neither. */
type TaskSession =
  | { readonly kind: "live"; readonly task: TaskRecord; readonly remainingMs: number; readonly atMs: number }
  | { readonly kind: "not_live"; readonly answer: Outcome };

/**
 * Creates the task under the active session (conditional on it still being active), or, for a
 * conversation that never had a session and `SESSION_START=first-tool-call`, starts the session
 * in the same transaction as the task. Two concurrent first calls: one starts it, the other
 * finds it started and creates its task under it.
 */
const createTaskInSession = async (
  deps: ToolDeps,
  conversationId: string,
  toolName: string,
  task: Omit<TaskInput, "sessionId" | "notifyUrl" | "atMs">,
  context: CallContext,
): Promise<TaskSession> => {
  for (let attempt = 0; ; attempt++) {
    const lookup = await deps.sessions.lookup(conversationId);
    const nowMs = deps.now();
    if (lookup.status === "missing" && deps.sessionStart === "first-tool-call" && attempt === 0) {
      const start = deps.sessions.startWrites(conversationId, nowMs, context);
      const [metaWrite] = deps.conversations.sessionRegistrationWrites(conversationId, start.meta, {
        sessionStart: withoutUndefined({
          by: "first_tool_call",
          toolName,
          at: start.session.createdAt,
          ...context,
        }),
      });
      const created = await deps.tasks.createTask(
        conversationId,
        // One clock read for the session's start, the task's createdAt and the dispatch window.
        { ...task, sessionId: start.session.sessionId, atMs: nowMs },
        [start.sessionPut],
        { ...(metaWrite ? { metaWrite } : {}), extra: start.historyLines },
      );
      if (created.created) {
        deps.sessions.noteStarted(start.session, toolName);
        return { kind: "live", task: created.task, remainingMs: deps.sessions.ttlMs, atMs: nowMs };
      }
      continue; // Another first call started it (or a window exists now): decide again from what is stored.
    }
    if (lookup.status !== "active") {
      const inactive: InactiveSession =
        lookup.status === "expired"
          ? {
              status: "expired",
              expiredAt: lookup.expiredAt,
              expiredForMs: lookup.expiredForMs,
              reason: lookup.reason,
            }
          : { status: "missing" };
      return { kind: "not_live", answer: notLiveAnswer(inactive, conversationId, toolName) };
    }
    const created = await deps.tasks.createTask(
      conversationId,
      {
        ...task,
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
      return { kind: "not_live", answer: notLiveAnswer(ended, conversationId, toolName) };
    }
    return { kind: "live", task: created.task, remainingMs: lookup.remainingMs, atMs: nowMs };
  }
};

/**
 * Hands a recorded task to the runners and marks it dispatched. Refuses (503) when the task was
 * recorded too long ago to dispatch safely (readers may already call it abandoned) or when the
 * dispatcher fails; the task then stays undispatched and reads as abandoned, never pending forever.
 */
const dispatchTask = async (deps: ToolDeps, message: TaskMessage, recordedAtMs: number): Promise<void> => {
  const { conversationId, taskId, toolName } = message;
  if (deps.now() - recordedAtMs > DISPATCH_WINDOW_MS) {
    // Too late to dispatch safely: readers may soon call it abandoned, so it must stay undispatched.
    deps.logger.error("Task recorded too late to dispatch: it will read as abandoned", {
      conversationId,
      taskId,
      toolName,
      elapsedMs: deps.now() - recordedAtMs,
    });
    throw new ServiceUnavailableError("The task could not be started in time. Please try again.", 2);
  }
  try {
    await deps.dispatcher.dispatch(message);
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
};

/**
 * `POST /tools/{toolName}`: while the session is active, records a pending task (only the
 * token's hash), dispatches it and answers at once. The task write is conditional on the session
 * still being active at that instant, so a call racing the expiry has one outcome.
 */
export const callTool = async (deps: ToolDeps, request: HttpRequest): Promise<Outcome> => {
  const toolName = request.pathParameters.toolName;
  assertValidId(toolName, "toolName");
  const { conversationId, params, context } = readToolBody(request);

  const taskId = randomUUID();
  const token = newTaskToken();
  const outcome = await createTaskInSession(
    deps,
    conversationId,
    toolName,
    { taskId, toolName, params, tokenHash: hashToken(token) },
    context,
  );
  if (outcome.kind === "not_live") return outcome.answer;
  const nowMs = outcome.atMs;

  const callbackUrl = `${deps.publicBaseUrl}/conversations/${conversationId}/tasks/${taskId}/result`;
  await dispatchTask(
    deps,
    {
      taskId,
      conversationId,
      toolName,
      params,
      callbackUrl,
      callbackToken: token,
      createdAt: outcome.task.createdAt,
    },
    nowMs,
  );

  // A quick task answers in this response: wait for its result, never past the session's end,
  // and only where a runner will report one (manual mode has none to wait for).
  const waitMs = deps.dispatcher.kind === "none" ? 0 : Math.min(deps.inlineWaitMs ?? 0, outcome.remainingMs);
  const inline = waitMs > 0 ? await waitForResult(deps, conversationId, taskId, nowMs + waitMs) : undefined;
  if (inline?.finished) {
    const { result } = inline.finished;
    return {
      kind: "task_completed_inline",
      body: {
        status: "completed",
        taskId,
        result,
        message: "The task has finished; its result is included.",
      },
      log: {
        conversationId,
        taskId,
        toolName,
        dispatcher: deps.dispatcher.kind,
        waitedMs: inline.waitedMs,
        reads: inline.reads,
      },
    };
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
      remainingMs: outcome.remainingMs,
      ...(inline ? { waitedMs: inline.waitedMs, reads: inline.reads } : {}),
    },
  };
};

/** Body of `POST /tools/get_task_result` (also the OpenAPI document's source). */
export const pollBodySchema = once(() =>
  z.looseObject({
    conversation_id: z.string().check(z.regex(ID_PATTERN)),
    // `null` and `""` mean "absent": LLMs fill optional parameters so.
    task_id: z.optional(z.union([z.null(), z.literal(""), z.string().check(z.regex(ID_PATTERN))])),
  }),
);

/**
 * `POST /tools/get_task_result` (or GET with query parameters): the agent polls for its results
 * (ElevenLabs cannot be pushed into mid-call). Answers while the session is active; before any
 * session it answers that there are no tasks yet (a read never starts a session).
 */
export const getTaskResults = async (
  deps: Pick<ToolDeps, "sessions" | "tasks" | "now">,
  request: HttpRequest,
): Promise<Outcome> => {
  const body = parseWith(pollBodySchema(), toolInput(request), request.method === "GET" ? "query" : "body");
  const conversationId = body.conversation_id;
  const lookup = await deps.sessions.lookup(conversationId);
  if (lookup.status === "missing") {
    return {
      kind: "task_results_none_yet",
      body: {
        status: "no_tasks",
        tasks: [],
        message: "There are no tasks for this conversation yet.",
      },
      log: { conversationId },
    };
  }
  if (lookup.status !== "active") {
    return {
      kind: "tool_session_expired",
      body: {
        status: "session_expired",
        reason: lookup.reason,
        message:
          lookup.reason === "call_ended"
            ? "This call has ended, so its task results are no longer available here."
            : "This conversation's session has expired, so its task results are no longer available here.",
      },
      log: {
        conversationId,
        toolName: "get_task_result",
        expiredAt: lookup.expiredAt,
        expiredForMs: lookup.expiredForMs,
        reason: lookup.reason,
      },
    };
  }
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
