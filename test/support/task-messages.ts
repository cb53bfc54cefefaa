import type { Context, SQSEvent, SQSRecord } from "aws-lambda";
import type { TaskMessage } from "../../functions/core/dispatcher.js";

/** The base URL the runner tests configure. */
export const RUNNER_BASE_URL = "https://api.example.test";

/** A task token as the service makes them (32 random bytes, base64url); never a real one. */
export const TASK_TOKEN = "tok_ZmFrZS10YXNrLXRva2VuLWZvci10ZXN0cy1vbmx5AAA";

/** A valid task message for `toolName`, its callback URL this service's result URL. */
export const taskMessage = (overrides: Partial<TaskMessage> = {}): TaskMessage => {
  const taskId = overrides.taskId ?? "task-1";
  const conversationId = overrides.conversationId ?? "conv_1";
  return {
    taskId,
    conversationId,
    toolName: "lookup_order",
    params: { order_id: "A-1001" },
    callbackUrl: `${RUNNER_BASE_URL}/conversations/${conversationId}/tasks/${taskId}/result`,
    callbackToken: TASK_TOKEN,
    createdAt: "2026-01-01T00:00:00.000Z",
    ...overrides,
  };
};

/** One SQS record carrying `body` (a message object is serialized as the dispatcher does). */
export const sqsRecord = (messageId: string, body: TaskMessage | string, receiveCount = 1): SQSRecord => ({
  messageId,
  receiptHandle: `receipt-${messageId}`,
  body: typeof body === "string" ? body : JSON.stringify(body),
  attributes: {
    ApproximateReceiveCount: String(receiveCount),
    SentTimestamp: "1767225600000",
    SenderId: "AIDAEXAMPLE",
    ApproximateFirstReceiveTimestamp: "1767225600000",
  },
  messageAttributes: {},
  md5OfBody: "",
  eventSource: "aws:sqs",
  eventSourceARN: "arn:aws:sqs:us-east-1:123456789012:tasks",
  awsRegion: "us-east-1",
});

export const sqsEvent = (...records: SQSRecord[]): SQSEvent => ({ Records: records });

/** A Lambda context whose remaining time is `remainingMs` minus what `now()` says has passed since. */
export const lambdaContext = (remainingMs: number, now: () => number = Date.now): Context => {
  const endAtMs = now() + remainingMs;
  return {
    callbackWaitsForEmptyEventLoop: false,
    functionName: "example-runner",
    functionVersion: "$LATEST",
    invokedFunctionArn: "arn:aws:lambda:us-east-1:123456789012:function:example-runner",
    memoryLimitInMB: "512",
    awsRequestId: "request-1",
    logGroupName: "/aws/lambda/example-runner",
    logStreamName: "stream",
    getRemainingTimeInMillis: () => endAtMs - now(),
    done: () => undefined,
    fail: () => undefined,
    succeed: () => undefined,
  };
};

/** A callback answer as the service gives it. */
export const answer = (status: number, body: unknown = {}, headers: Record<string, string> = {}): Response =>
  new Response(JSON.stringify(body), { status, headers: { "content-type": "application/json", ...headers } });
