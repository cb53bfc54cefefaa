import { setTimeout as wait } from "node:timers/promises";
import { BatchProcessor, EventType, processPartialResponse } from "@aws-lambda-powertools/batch";
import type { Context, SQSBatchResponse, SQSEvent, SQSRecord } from "aws-lambda";
import type { TaskMessage } from "../core/dispatcher.js";
import { type AppLogger, logger as defaultLogger } from "../core/logger.js";
import { type CallbackPolicy, DEFAULT_CALLBACK_POLICY } from "./callback.js";
import { runParsedTask, type TaskReport, type ToolSet } from "./run-task.js";
import { InvalidTaskMessageError, normalizeBaseUrl, parseTaskMessage } from "./task-message.js";
import {
  createVisibilityClient,
  DEFAULT_REDELIVERY_POLICY,
  handBackToSqs,
  type RedeliveryPolicy,
  VISIBILITY_CALL_MS,
  type VisibilitySender,
} from "./visibility.js";

export { CallbackRejectedError, CallbackUndeliveredError } from "./callback.js";
export type { TaskContext, TaskReport, Tool, ToolSet } from "./run-task.js";
export { InvalidTaskMessageError } from "./task-message.js";
export type { RedeliveryPolicy } from "./visibility.js";

/** Options of {@link defineTools}; every one has a default fit for Lambda. */
export interface RunnerOptions {
  /**
   * This service's public base URL. Only callback URLs under it (and for the task's own ids) are
   * called: the runner sends each task's bearer token there.
   * @default process.env.PUBLIC_BASE_URL
   */
  readonly publicBaseUrl?: string;
  /**
   * Longest a tool may run. On Lambda the remaining invocation time also bounds it, less
   * `callbackReserveMs`.
   * @default 30 000
   */
  readonly taskTimeoutMs?: number;
  /**
   * Time kept back after the tool for delivering its result (retries included).
   * @default 20 000
   */
  readonly callbackReserveMs?: number;
  /** @default DEFAULT_CALLBACK_POLICY (6 attempts, 250 ms doubling to 8 s, 5 s per attempt) */
  readonly callbackPolicy?: Partial<CallbackPolicy>;
  /**
   * On Lambda, when a message goes back to SQS for a transient failure, SQS delivers it again
   * after this back-off (or the callback's longer `Retry-After`) instead of after the queue's
   * visibility timeout.
   * @default DEFAULT_REDELIVERY_POLICY (10 s doubling per receive, at most 300 s)
   */
  readonly redelivery?: Partial<RedeliveryPolicy>;
  /** The SQS client that changes a message's visibility. @default one, created on first need */
  readonly sqs?: VisibilitySender;
  /** Seams for tests: fetch, clock, sleeps, jitter and the logger. */
  readonly fetch?: typeof fetch;
  readonly now?: () => number;
  readonly sleep?: (ms: number) => Promise<void>;
  readonly sleepUntilAborted?: (ms: number, signal: AbortSignal) => Promise<void>;
  readonly random?: () => number;
  readonly logger?: AppLogger;
}

/** A runner built from a set of tools. */
export interface TaskRunner {
  /** The Lambda handler for the task queue (`ReportBatchItemFailures` must be on). */
  readonly handler: (event: SQSEvent, context: Context) => Promise<SQSBatchResponse>;
  /**
   * Runs one task in process (the local server's dispatcher uses this): the message as SQS would
   * carry it, as a string or an object. Resolves once the service has the result; rejects with
   * {@link InvalidTaskMessageError} for a message it refuses, or a callback error when the result
   * could not be delivered.
   */
  readonly runTask: (message: TaskMessage | string) => Promise<TaskReport>;
  /** The tool names this runner answers, sorted. */
  readonly toolNames: readonly string[];
}

/**
 * Lambda stops us at its timeout; keep this much back so a failed message's visibility can be
 * set and the batch response still gets out.
 */
const LAMBDA_SAFETY_MS = 1000 + VISIBILITY_CALL_MS;

/**
 * Builds a task runner from plain async functions. The library parses and checks each task
 * message, runs the tool with a deadline, reports `{status, result | error}` to the task's
 * callback URL with its bearer token, retries transient callback failures, and on Lambda reports
 * only the messages that really failed (a malformed one, or a result it could not deliver in
 * time) back to SQS, so their batch neighbours are never run twice.
 *
 * ```ts
 * export const { handler } = defineTools({
 *   lookup_order: async ({ order_id }) => ({ orderId: order_id, status: "shipped" }),
 * });
 * ```
 */
export const defineTools = (tools: ToolSet, options: RunnerOptions = {}): TaskRunner => {
  const rawBaseUrl = options.publicBaseUrl ?? process.env.PUBLIC_BASE_URL;
  if (!rawBaseUrl) {
    throw new Error(
      "The task runner needs PUBLIC_BASE_URL (this service's base URL) to check callback URLs.",
    );
  }
  const baseUrl = normalizeBaseUrl(rawBaseUrl);
  for (const [name, tool] of Object.entries(tools)) {
    if (typeof tool !== "function") throw new Error(`Tool "${name}" must be an async function.`);
  }
  const taskTimeoutMs = options.taskTimeoutMs ?? 30_000;
  const callbackReserveMs = options.callbackReserveMs ?? 20_000;
  const logger = options.logger ?? defaultLogger;
  const now = options.now ?? Date.now;
  const deps = {
    fetch: options.fetch ?? ((...args: Parameters<typeof fetch>) => fetch(...args)),
    now,
    sleep: options.sleep ?? ((ms: number) => wait(ms)),
    sleepUntilAborted:
      options.sleepUntilAborted ?? ((ms: number, signal: AbortSignal) => wait(ms, undefined, { signal })),
    random: options.random ?? Math.random,
    logger,
    callbackPolicy: { ...DEFAULT_CALLBACK_POLICY, ...options.callbackPolicy },
  };

  /** Runs a message within `endAtMs` (the Lambda's end, or open-ended in process). */
  const run = (input: unknown, endAtMs: number): Promise<TaskReport> => {
    const message = parseTaskMessage(input, baseUrl);
    const startMs = now();
    const callbackDeadlineAtMs = Math.min(endAtMs, startMs + taskTimeoutMs + callbackReserveMs);
    const toolDeadlineAtMs = Math.min(startMs + taskTimeoutMs, callbackDeadlineAtMs - callbackReserveMs);
    return runParsedTask(deps, tools, message, { toolDeadlineAtMs, callbackDeadlineAtMs });
  };

  const redelivery = { ...DEFAULT_REDELIVERY_POLICY, ...options.redelivery };
  // Created once per container, on the first message that needs it (never in process).
  let sqs = options.sqs;

  const recordHandler = async (record: SQSRecord, context?: Context): Promise<void> => {
    const endAtMs = context ? now() + context.getRemainingTimeInMillis() - LAMBDA_SAFETY_MS : Infinity;
    try {
      await run(record.body, endAtMs);
    } catch (error) {
      await handBackToSqs(record, error, {
        logger,
        policy: redelivery,
        sqs: () => {
          sqs ??= createVisibilityClient();
          return sqs;
        },
      });
      throw error;
    }
  };

  const handler = async (event: SQSEvent, context: Context): Promise<SQSBatchResponse> => {
    const processor = new BatchProcessor(EventType.SQS);
    // Every record is run in parallel; a failed one is reported alone. A batch where all failed is
    // answered the same way rather than thrown, so the Errors alarm means a crash or a timeout.
    return processPartialResponse(event, recordHandler, processor, {
      context,
      throwOnFullBatchFailure: false,
    });
  };

  return {
    handler,
    runTask: (message) => Promise.resolve().then(() => run(message, Number.POSITIVE_INFINITY)),
    toolNames: Object.keys(tools).sort(),
  };
};
