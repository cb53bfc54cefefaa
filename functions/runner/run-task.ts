import type { TaskMessage } from "../core/dispatcher.js";
import type { AppLogger } from "../core/logger.js";
import {
  type CallbackAnswer,
  type CallbackDeps,
  type CallbackPolicy,
  CallbackRejectedError,
  postTaskResult,
  type TaskResultBody,
} from "./callback.js";

/** What a tool sees of its task. Never the callback token. */
export interface TaskContext {
  readonly taskId: string;
  readonly conversationId: string;
  readonly toolName: string;
  /** When the service created the task (ISO 8601). */
  readonly createdAt: string;
  /** Epoch ms by which the tool must have answered; after it the task is reported `failed`. */
  readonly deadlineAtMs: number;
  /** Aborted at the deadline: pass it to fetch and the SDK so abandoned work stops. */
  readonly signal: AbortSignal;
}

/** One tool: its params as the agent sent them (minus `conversation_id`), its result any JSON value. */
export type Tool = (params: Record<string, unknown>, task: TaskContext) => Promise<unknown>;

/** Tools by the name the agent calls them (the `{toolName}` of `POST /tools/{toolName}`). */
export type ToolSet = Readonly<Record<string, Tool>>;

/** Everything `runTask` needs besides the message. */
export interface RunDeps extends CallbackDeps {
  readonly logger: AppLogger;
  readonly callbackPolicy: CallbackPolicy;
  /**
   * Waits `ms` or until `signal` aborts (then rejects). The default is `node:timers/promises`;
   * tests pass one driven by fake timers.
   */
  readonly sleepUntilAborted: (ms: number, signal: AbortSignal) => Promise<void>;
}

/** The time budget of one task, in epoch ms. */
export interface TaskBudget {
  /** The tool is stopped and the task reported `failed` at this instant. */
  readonly toolDeadlineAtMs: number;
  /** No callback attempt starts after this instant (then SQS delivers the message again). */
  readonly callbackDeadlineAtMs: number;
}

/** How one task ended; the result itself is never part of it (nor of any log line). */
export interface TaskReport {
  readonly taskId: string;
  readonly toolName: string;
  readonly status: TaskResultBody["status"];
  readonly callback: CallbackAnswer;
}

/** The service keeps at most this many characters of a failure message. */
export const MAX_ERROR_LENGTH = 2000;

const errorMessage = (error: unknown): string => {
  const text = error instanceof Error ? error.message || error.name : String(error);
  return text.length > MAX_ERROR_LENGTH ? `${text.slice(0, MAX_ERROR_LENGTH - 1)}…` : text;
};

class ToolDeadlineError extends Error {
  override readonly name = "ToolDeadlineError";
}

/** Runs the tool until it settles or the deadline passes, whichever comes first. Never throws. */
const runTool = async (
  deps: RunDeps,
  tools: ToolSet,
  message: TaskMessage,
  deadlineAtMs: number,
): Promise<TaskResultBody> => {
  const tool = Object.hasOwn(tools, message.toolName) ? tools[message.toolName] : undefined;
  if (!tool) {
    const known = Object.keys(tools).sort().join(", ") || "none";
    return {
      status: "failed",
      error: `Unknown tool "${message.toolName}": this runner has no such tool (it runs: ${known}).`,
    };
  }
  const budgetMs = Math.max(0, deadlineAtMs - deps.now());
  const stop = new AbortController();
  const context: TaskContext = {
    taskId: message.taskId,
    conversationId: message.conversationId,
    toolName: message.toolName,
    createdAt: message.createdAt,
    deadlineAtMs,
    signal: stop.signal,
  };
  const timer = new AbortController();
  const deadline = deps.sleepUntilAborted(budgetMs, timer.signal).then(
    () => {
      throw new ToolDeadlineError(`Tool "${message.toolName}" did not finish within ${budgetMs} ms.`);
    },
    () => new Promise<never>(() => undefined),
  );
  try {
    // The tool starts inside the try: one that throws synchronously is a failure like any other.
    const result = await Promise.race([
      Promise.resolve().then(() => tool(message.params, context)),
      deadline,
    ]);
    // The service stores JSON; a result that cannot be serialized is the tool's failure, said now.
    if (result !== undefined) JSON.stringify(result);
    return result === undefined ? { status: "succeeded" } : { status: "succeeded", result };
  } catch (error) {
    return { status: "failed", error: errorMessage(error) };
  } finally {
    timer.abort();
    stop.abort(new ToolDeadlineError("The task is over."));
  }
};

/**
 * Runs one parsed task and reports it: tool result → `succeeded`; throw, hang past the deadline,
 * unknown tool or a result that is not JSON → `failed` with the error message. Resolves once the
 * service has the result; rejects when it could not be delivered in time (the caller lets SQS
 * retry). A result the service refuses as too large or invalid is replaced by a `failed` report,
 * so the task does not stay pending forever.
 */
export const runParsedTask = async (
  deps: RunDeps,
  tools: ToolSet,
  message: TaskMessage,
  budget: TaskBudget,
): Promise<TaskReport> => {
  const keys = { taskId: message.taskId, conversationId: message.conversationId, toolName: message.toolName };
  const startedAtMs = deps.now();
  const body = await runTool(deps, tools, message, budget.toolDeadlineAtMs);
  const toolMs = deps.now() - startedAtMs;
  if (body.status === "failed") {
    // The error text may quote user data, so only its length is logged.
    deps.logger.warn("Tool failed; reporting the task as failed", {
      ...keys,
      toolMs,
      errorLength: body.error.length,
    });
  }
  const post = (report: TaskResultBody) =>
    postTaskResult(deps, deps.callbackPolicy, message, report, budget.callbackDeadlineAtMs);
  let sent = body;
  let callback: CallbackAnswer;
  try {
    callback = await post(body);
  } catch (error) {
    if (!(error instanceof CallbackRejectedError) || body.status !== "succeeded") throw error;
    if (error.httpStatus !== 400 && error.httpStatus !== 413) throw error;
    deps.logger.warn("Service refused the tool result; reporting the task as failed instead", {
      ...keys,
      httpStatus: error.httpStatus,
    });
    sent = {
      status: "failed",
      error: `The tool's result was refused by the service (HTTP ${error.httpStatus}): too large or not storable.`,
    };
    callback = await post(sent);
  }
  deps.logger.info("Task result delivered", {
    ...keys,
    status: sent.status,
    outcome: callback.outcome,
    duplicate: callback.duplicate,
    attempts: callback.attempts,
    toolMs,
  });
  return { taskId: message.taskId, toolName: message.toolName, status: sent.status, callback };
};
