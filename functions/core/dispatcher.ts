import type { AppLogger } from "./powertools.js";

/** What a task runner receives: everything it needs to do the work and report back. */
export interface TaskMessage {
  readonly taskId: string;
  readonly conversationId: string;
  readonly toolName: string;
  readonly params: Record<string, unknown>;
  readonly callbackUrl: string;
  /** Per-task bearer token for the callback. Travels only in this message; never logged. */
  readonly callbackToken: string;
  readonly createdAt: string;
}

/** Hands a task to the runners. SQS in AWS, an HTTP POST locally. */
export interface TaskDispatcher {
  /** A short label for logs (`sqs`, `http`, `none`). */
  readonly kind: string;
  dispatch(message: TaskMessage): Promise<void>;
}

/** Minimal SQS surface, so this module does not import the SQS client (bundle size). */
export interface SqsSender {
  sendMessage(queueUrl: string, body: string, groupKey: string): Promise<void>;
}

/** Sends each task as one SQS message; the queue has a dead-letter queue for runner failures. */
export const sqsDispatcher = (sender: SqsSender, queueUrl: string): TaskDispatcher => ({
  kind: "sqs",
  dispatch: (message) => sender.sendMessage(queueUrl, JSON.stringify(message), message.conversationId),
});

/** POSTs the same message to a local runner URL, with a short timeout. */
export const httpDispatcher = (
  runnerUrl: string,
  timeoutMs = 3000,
  fetchImpl: typeof fetch = fetch,
): TaskDispatcher => ({
  kind: "http",
  async dispatch(message) {
    const response = await fetchImpl(runnerUrl, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(message),
      signal: AbortSignal.timeout(timeoutMs),
    });
    if (!response.ok) throw new Error(`Task runner answered HTTP ${response.status}`);
  },
});

/** Local demos without a runner: the task is recorded and the caller gets the callback details. */
export const noDispatcher = (logger: AppLogger): TaskDispatcher => ({
  kind: "none",
  async dispatch(message) {
    logger.info("No task runner configured: task recorded, callback details returned to the caller", {
      conversationId: message.conversationId,
      taskId: message.taskId,
    });
  },
});
