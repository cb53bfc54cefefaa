import { ChangeMessageVisibilityCommand, SQSClient } from "@aws-sdk/client-sqs";
import { mockClient } from "aws-sdk-client-mock";
import fc from "fast-check";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import {
  CallbackRejectedError,
  CallbackUndeliveredError,
  defineTools,
  InvalidTaskMessageError,
  type RunnerOptions,
  type ToolSet,
} from "../../../functions/runner/index.js";
import {
  DEFAULT_REDELIVERY_POLICY,
  delayRedelivery,
  MAX_VISIBILITY_SECONDS,
  queueUrlOf,
  redeliveryDelaySeconds,
} from "../../../functions/runner/visibility.js";
import { captureLogger } from "../../support/log-capture.js";
import {
  answer,
  lambdaContext,
  RUNNER_BASE_URL,
  sqsEvent,
  sqsRecord,
  TASK_TOKEN,
  taskMessage,
} from "../../support/task-messages.js";

/**
 * A message the runner hands back to SQS for a transient failure comes back after the runner's own
 * back-off (ChangeMessageVisibility), not after the queue's 6-minute visibility timeout.
 */
const sqs = mockClient(SQSClient);
const QUEUE_URL = "https://sqs.us-east-1.amazonaws.com/123456789012/tasks";

const tools: ToolSet = { lookup_order: async () => ({ orderId: "A-1001" }) };

/** A runner whose callback endpoint answers `callback` every time; sleeps advance a fake clock. */
const runnerAnswering = (callback: () => Response | Error, options: RunnerOptions = {}) => {
  let clockMs = 1_767_225_600_000;
  const logger = captureLogger();
  const now = () => clockMs;
  const fetch = vi.fn(async () => {
    const next = callback();
    if (next instanceof Error) throw next;
    return next;
  });
  const runner = defineTools(tools, {
    publicBaseUrl: RUNNER_BASE_URL,
    fetch: fetch as unknown as typeof globalThis.fetch,
    now,
    sleep: async (ms) => {
      clockMs += ms;
    },
    random: () => 0,
    logger,
    ...options,
  });
  return { runner, logger, fetch, now };
};

const visibilityCalls = () =>
  sqs.commandCalls(ChangeMessageVisibilityCommand).map((call) => call.args[0].input);

beforeEach(() => {
  sqs.reset();
  sqs.on(ChangeMessageVisibilityCommand).resolves({});
});
afterEach(() => sqs.reset());

describe("the SQS handler: a message returned for retry waits its back-off", () => {
  it("sets the visibility to the callback's Retry-After when it is beyond the invocation's deadline", async () => {
    const { runner, fetch, now } = runnerAnswering(() => answer(503, {}, { "retry-after": "120" }));

    const response = await runner.handler(
      sqsEvent(sqsRecord("m1", taskMessage())),
      lambdaContext(60_000, now),
    );

    expect(response.batchItemFailures).toEqual([{ itemIdentifier: "m1" }]);
    expect(fetch).toHaveBeenCalledTimes(1);
    expect(visibilityCalls()).toEqual([
      { QueueUrl: QUEUE_URL, ReceiptHandle: "receipt-m1", VisibilityTimeout: 120 },
    ]);
  });

  it("honours a 429's Retry-After the same way", async () => {
    const { runner, now } = runnerAnswering(() => answer(429, {}, { "retry-after": "600" }));
    await runner.handler(sqsEvent(sqsRecord("m1", taskMessage())), lambdaContext(60_000, now));
    expect(visibilityCalls()).toEqual([expect.objectContaining({ VisibilityTimeout: 600 })]);
  });

  it("backs off by receive count after transient failures with no Retry-After (10 s doubling)", async () => {
    const { runner, now } = runnerAnswering(() => new TypeError("fetch failed"));
    await runner.handler(
      sqsEvent(
        sqsRecord("m1", taskMessage({ taskId: "task-1" }), 1),
        sqsRecord("m3", taskMessage({ taskId: "task-3" }), 3),
      ),
      lambdaContext(60_000, now),
    );
    const byHandle = Object.fromEntries(visibilityCalls().map((c) => [c.ReceiptHandle, c.VisibilityTimeout]));
    expect(byHandle).toEqual({ "receipt-m1": 10, "receipt-m3": 40 });
  });

  it("keeps the normal retry for a message it refuses and for a callback refused for good", async () => {
    const { runner, now } = runnerAnswering(() => answer(404, { error: "task_not_found" }));
    const response = await runner.handler(
      sqsEvent(sqsRecord("m1", "{not json"), sqsRecord("m2", taskMessage())),
      lambdaContext(60_000, now),
    );
    expect(response.batchItemFailures.map((f) => f.itemIdentifier).sort()).toEqual(["m1", "m2"]);
    expect(visibilityCalls()).toEqual([]);
  });

  it("changes nothing for the messages that succeeded", async () => {
    const { runner, now } = runnerAnswering(() => answer(200, { outcome: "delivered" }));
    const response = await runner.handler(
      sqsEvent(sqsRecord("m1", taskMessage())),
      lambdaContext(60_000, now),
    );
    expect(response.batchItemFailures).toEqual([]);
    expect(visibilityCalls()).toEqual([]);
  });

  it("logs a failed visibility change and still reports the message, for the normal retry", async () => {
    sqs.on(ChangeMessageVisibilityCommand).rejects(
      Object.assign(new Error("Value 50000 for parameter VisibilityTimeout is invalid."), {
        name: "InvalidParameterValue",
      }),
    );
    const { runner, logger, now } = runnerAnswering(() => answer(503, {}, { "retry-after": "30" }));

    const response = await runner.handler(
      sqsEvent(sqsRecord("m1", taskMessage())),
      lambdaContext(60_000, now),
    );

    expect(response.batchItemFailures).toEqual([{ itemIdentifier: "m1" }]);
    const warning = logger.lines.find((l) =>
      l.message.startsWith("Could not set the task message's visibility"),
    );
    expect(warning?.level).toBe("warn");
    expect(warning?.data).toMatchObject({
      messageId: "m1",
      retryInSeconds: 30,
      errorName: "InvalidParameterValue",
    });
    expect(logger.text()).not.toContain(TASK_TOKEN);
  });

  it("creates its own SQS client once, on the first message that needs it", async () => {
    const { runner, now } = runnerAnswering(() => answer(503, {}));
    await runner.handler(sqsEvent(sqsRecord("m1", taskMessage())), lambdaContext(60_000, now));
    await runner.handler(sqsEvent(sqsRecord("m2", taskMessage())), lambdaContext(60_000, now));
    expect(visibilityCalls().map((c) => c.ReceiptHandle)).toEqual(["receipt-m1", "receipt-m2"]);
    expect(new Set(sqs.commandCalls(ChangeMessageVisibilityCommand).map((c) => c.thisValue)).size).toBe(1);
  });

  it("never calls SQS when a task runs in process", async () => {
    const { runner } = runnerAnswering(() => answer(503, {}, { "retry-after": "120" }));
    await expect(runner.runTask(taskMessage())).rejects.toBeInstanceOf(CallbackUndeliveredError);
    expect(visibilityCalls()).toEqual([]);
  });
});

describe("redeliveryDelaySeconds", () => {
  it("is undefined for failures retrying cannot fix", () => {
    expect(redeliveryDelaySeconds(new InvalidTaskMessageError("x"), 1)).toBeUndefined();
    expect(redeliveryDelaySeconds(new CallbackRejectedError(403, 1), 1)).toBeUndefined();
  });

  it("doubles from 10 s per receive and stops at 300 s", () => {
    const delays = [1, 2, 3, 4, 5, 6, 50].map((n) => redeliveryDelaySeconds(new Error("x"), n));
    expect(delays).toEqual([10, 20, 40, 80, 160, 300, 300]);
  });

  it("takes the longer of its back-off and what the service asked, rounded up to whole seconds", () => {
    expect(redeliveryDelaySeconds(new CallbackUndeliveredError(1, "HTTP 503", 1), 1)).toBe(10);
    expect(redeliveryDelaySeconds(new CallbackUndeliveredError(1, "HTTP 503", 61_001), 1)).toBe(62);
  });

  it("stays within SQS's 0..43200 s for any receive count and any Retry-After", () => {
    fc.assert(
      fc.property(
        fc.oneof(fc.integer(), fc.double(), fc.constantFrom(Number.NaN, Number.POSITIVE_INFINITY)),
        fc.option(fc.oneof(fc.double({ min: 0 }), fc.nat()), { nil: undefined }),
        (receiveCount, retryAfterMs) => {
          const delay = redeliveryDelaySeconds(
            new CallbackUndeliveredError(1, "HTTP 429", retryAfterMs),
            receiveCount,
          );
          expect(Number.isInteger(delay)).toBe(true);
          expect(delay).toBeGreaterThanOrEqual(0);
          expect(delay).toBeLessThanOrEqual(MAX_VISIBILITY_SECONDS);
        },
      ),
    );
  });

  it("default policy retries well before the task queue's 6-minute visibility timeout", () => {
    expect(DEFAULT_REDELIVERY_POLICY.maxDelaySeconds).toBeLessThan(360);
  });
});

describe("queueUrlOf and delayRedelivery", () => {
  it("turns a queue ARN into its URL, and refuses anything else", () => {
    expect(queueUrlOf("arn:aws:sqs:eu-west-1:123456789012:my-tasks")).toBe(
      "https://sqs.eu-west-1.amazonaws.com/123456789012/my-tasks",
    );
    expect(queueUrlOf("arn:aws:sqs:eu-west-1:123456789012:t.fifo")).toBe(
      "https://sqs.eu-west-1.amazonaws.com/123456789012/t.fifo",
    );
    expect(queueUrlOf("arn:aws:sns:eu-west-1:123456789012:topic")).toBeUndefined();
    expect(queueUrlOf("")).toBeUndefined();
  });

  it("logs and returns false, without calling SQS, for a record with no queue ARN", async () => {
    const logger = captureLogger();
    const record = { ...sqsRecord("m1", taskMessage()), eventSourceARN: "not-an-arn" };
    expect(await delayRedelivery(new SQSClient({}), record, 10, logger)).toBe(false);
    expect(visibilityCalls()).toEqual([]);
    expect(logger.lines.map((l) => l.level)).toEqual(["warn"]);
  });
});
