import * as z from "zod/mini";
import { bearerToken, taskTokenMatches } from "./auth.js";
import type { Clock } from "./clock.js";
import type { TaskRecord } from "./conversation-items.js";
import { UnauthorizedError } from "./errors.js";
import { type HttpRequest, parseJsonBody } from "./http.js";
import { assertValidId } from "./ids.js";
import type { Notifier } from "./notifier.js";
import { once } from "./objects.js";
import type { Outcome } from "./outcomes.js";
import type { EndReason, SessionStore } from "./session-store.js";
import type { TaskStore } from "./task-store.js";
import { parseWith } from "./validation.js";

/** What the task-result callback needs. */
export interface TaskResultDeps {
  readonly sessions: SessionStore;
  readonly tasks: TaskStore;
  readonly notifier: Notifier;
  readonly now: Clock;
}

/** Body of the task callback (also the OpenAPI document's source). */
export const resultBodySchema = once(() =>
  z.strictObject({
    status: z.optional(z.enum(["succeeded", "failed"])),
    result: z.optional(z.unknown()),
    error: z.optional(z.string().check(z.maxLength(2000))),
  }),
);

interface Expiry {
  readonly expiredAt: string;
  readonly expiredForMs: number;
}

const duplicateOutcome = (conversationId: string, task: TaskRecord): Outcome => ({
  kind: "callback_duplicate",
  body: {
    outcome: task.outcome,
    duplicate: true,
    taskId: task.taskId,
    ...(task.expiredAt ? { expiredAt: task.expiredAt, expiredForMs: task.expiredForMs } : {}),
    ...(task.endReason ? { reason: task.endReason } : {}),
  },
  log: { conversationId, taskId: task.taskId, firstOutcome: task.outcome },
});

const taskNotFound = (conversationId: string, taskId: string): Outcome => ({
  kind: "task_not_found",
  body: { error: "task_not_found", message: "No such task exists in this conversation." },
  log: { conversationId, taskId },
});

/**
 * `POST /conversations/{conversationId}/tasks/{taskId}/result`. The result is always stored in
 * history, exactly once. Whether it counts as delivered is decided by a conditional write on
 * the session (`expiresAtMs > now`) in the same transaction, so a callback racing the expiry
 * instant gets exactly one outcome. A late callback is a 200 with `session_expired`, not an error.
 */
export const recordTaskResult = async (deps: TaskResultDeps, request: HttpRequest): Promise<Outcome> => {
  const { conversationId, taskId } = request.pathParameters;
  assertValidId(conversationId);
  assertValidId(taskId, "taskId");
  const token = bearerToken(request.headers);
  if (token === undefined)
    throw new UnauthorizedError(
      "A task token is required: this route expects Authorization: Bearer <callbackToken>.",
    );
  const body = parseWith(resultBodySchema(), parseJsonBody(request), "body");
  const result = {
    status: body.status ?? "succeeded",
    ...(body.result !== undefined ? { result: body.result } : {}),
    ...(body.error ? { error: body.error } : {}),
  };

  const task = await deps.tasks.getTask(conversationId, taskId);
  if (!task) return taskNotFound(conversationId, taskId);
  // Tokens are per task and per conversation: another task's token never matches this hash.
  if (!taskTokenMatches(token, task.tokenHash))
    throw new UnauthorizedError(
      "The task token is not valid for this task: this route expects Authorization: Bearer <callbackToken> of this task.",
    );
  const receivedAtMs = deps.now();
  if (task.outcome) return answerDuplicate(deps, conversationId, task, receivedAtMs);

  const live = await deps.tasks.storeTaskResult(
    conversationId,
    taskId,
    { result, outcome: "delivered", receivedAtMs, pushPending: task.notifyUrl !== undefined },
    { guard: deps.sessions.activeCondition(conversationId, receivedAtMs), known: task },
  );
  if (live.kind === "duplicate") return answerDuplicate(deps, conversationId, live.task, receivedAtMs);
  if (live.kind === "task_not_found") return taskNotFound(conversationId, taskId);
  if (live.kind === "stored") return pushLive(deps, conversationId, live.task, receivedAtMs);

  // The session was not active at `receivedAtMs`: keep the result anyway, outcome session_expired.
  const ended = await deps.sessions.explainInactive(conversationId, receivedAtMs, live.failedCheck);
  // No window is known (deleted without history, or re-registered since): it ended by now.
  const expiry: Expiry =
    ended.status === "expired"
      ? { expiredAt: ended.expiredAt, expiredForMs: ended.expiredForMs }
      : { expiredAt: new Date(receivedAtMs).toISOString(), expiredForMs: 0 };
  // Why the window is over: timed out, the call ended (post-call webhook), or it is gone (deleted).
  const reason: EndReason = ended.status === "expired" ? ended.reason : "deleted";
  const late = await deps.tasks.storeTaskResult(
    conversationId,
    taskId,
    { result, outcome: "session_expired", receivedAtMs, ...expiry, endReason: reason },
    { known: task },
  );
  if (late.kind === "duplicate") return answerDuplicate(deps, conversationId, late.task, receivedAtMs);
  if (late.kind !== "stored") return taskNotFound(conversationId, taskId);
  return {
    kind: "callback_after_expiry",
    body: {
      outcome: "session_expired",
      taskId,
      ...expiry,
      reason,
      message:
        reason === "call_ended"
          ? "The call had ended; the result was stored in the conversation history."
          : "The session had expired; the result was stored in the conversation history.",
    },
    log: {
      conversationId,
      taskId,
      toolName: task.toolName,
      ...expiry,
      reason,
      receivedAt: new Date(receivedAtMs).toISOString(),
    },
  };
};

/**
 * A repeated callback answers the first outcome. If that first request stored the result but
 * never got to push it (its answer was lost, or it failed right after the commit), this request
 * finishes the push: the claim makes sure it still happens at most once.
 */
const answerDuplicate = async (
  deps: TaskResultDeps,
  conversationId: string,
  task: TaskRecord,
  receivedAtMs: number,
): Promise<Outcome> => {
  if (task.outcome !== "delivered" || task.push !== "pending") return duplicateOutcome(conversationId, task);
  const finished = await pushLive(deps, conversationId, task, receivedAtMs);
  return { ...finished, body: { ...finished.body, duplicate: true } };
};

/** Pushes a delivered result to the session's notifyUrl, at most once. A failed push is still a stored result. */
const pushLive = async (
  deps: TaskResultDeps,
  conversationId: string,
  task: TaskRecord,
  receivedAtMs: number,
): Promise<Outcome> => {
  const base = { conversationId, taskId: task.taskId, toolName: task.toolName };
  if (!task.notifyUrl || !(await deps.tasks.claimPush(conversationId, task.taskId, receivedAtMs))) {
    // Nothing to push (the agent polls), or another request holds the push.
    return {
      kind: "callback_delivered",
      body: { outcome: "delivered", taskId: task.taskId, pushed: false },
      log: { ...base, pushed: false },
    };
  }
  const push = await deps.notifier.push(task.notifyUrl, {
    type: "task_result",
    conversationId,
    taskId: task.taskId,
    toolName: task.toolName,
    result: task.result,
    receivedAt: new Date(receivedAtMs).toISOString(),
  });
  await deps.tasks.finishPush(conversationId, task, push.ok);
  if (push.ok) {
    return {
      kind: "callback_delivered",
      body: { outcome: "delivered", taskId: task.taskId, pushed: true },
      log: { ...base, pushed: true },
    };
  }
  return {
    kind: "callback_delivery_failed",
    body: {
      outcome: "delivery_failed",
      taskId: task.taskId,
      message: "The result was stored, but pushing it to the app failed.",
    },
    log: { ...base, reason: push.reason },
  };
};
