import { ChangeMessageVisibilityCommand, SQSClient } from "@aws-sdk/client-sqs";
import { mockClient } from "aws-sdk-client-mock";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { backoffMs, DEFAULT_CALLBACK_POLICY, retryAfterMs } from "../../../functions/runner/callback.js";
import {
  CallbackRejectedError,
  CallbackUndeliveredError,
  defineTools,
  InvalidTaskMessageError,
  type RunnerOptions,
  type TaskContext,
  type ToolSet,
} from "../../../functions/runner/index.js";
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

type Scripted = Response | Error | (() => Promise<Response>);

// A message handed back for a transient failure gets its visibility changed: never a real SQS call.
const sqs = mockClient(SQSClient);
beforeEach(() => {
  sqs.reset();
  sqs.on(ChangeMessageVisibilityCommand).resolves({});
});

/**
 * A runner with a scripted callback endpoint and a fake clock that only sleeps advance:
 * every wait the runner makes is recorded, none is real.
 */
const harness = (tools: ToolSet, options: RunnerOptions = {}, ...script: Scripted[]) => {
  let clockMs = 1_767_225_600_000;
  const sleeps: number[] = [];
  const logger = captureLogger();
  const answers = script.length > 0 ? script : [answer(200, { outcome: "delivered", taskId: "task-1" })];
  let call = 0;
  const fetch = vi.fn(async (_url: string | URL | Request, _init?: RequestInit): Promise<Response> => {
    const next = answers[Math.min(call++, answers.length - 1)] as Scripted;
    if (next instanceof Error) throw next;
    return typeof next === "function" ? next() : next.clone();
  });
  const now = () => clockMs;
  const runner = defineTools(tools, {
    publicBaseUrl: RUNNER_BASE_URL,
    fetch: fetch as unknown as typeof globalThis.fetch,
    now,
    sleep: async (ms) => {
      sleeps.push(ms);
      clockMs += ms;
    },
    random: () => 0,
    logger,
    ...options,
  });
  const posted = () =>
    fetch.mock.calls.map(([url, init]) => ({
      url: String(url),
      authorization: new Headers(init?.headers).get("authorization"),
      body: JSON.parse(String(init?.body)) as Record<string, unknown>,
    }));
  return { runner, fetch, sleeps, logger, posted, now, advance: (ms: number) => (clockMs += ms) };
};

const order = { orderId: "A-1001", status: "shipped" };
const tools: ToolSet = { lookup_order: async () => order };

const timeoutError = () =>
  Object.assign(new Error("The operation was aborted due to timeout"), { name: "TimeoutError" });

describe("runTask: the tool's result reaches the callback", () => {
  it("POSTs {status: succeeded, result} to the task's callback URL with its bearer token", async () => {
    const { runner, posted } = harness(tools);

    const report = await runner.runTask(taskMessage());

    expect(posted()).toEqual([
      {
        url: `${RUNNER_BASE_URL}/conversations/conv_1/tasks/task-1/result`,
        authorization: `Bearer ${TASK_TOKEN}`,
        body: { status: "succeeded", result: order },
      },
    ]);
    expect(report).toMatchObject({
      taskId: "task-1",
      status: "succeeded",
      callback: { outcome: "delivered", attempts: 1 },
    });
  });

  it("accepts the message as SQS carries it: a JSON string", async () => {
    const { runner, posted } = harness(tools);
    await runner.runTask(JSON.stringify(taskMessage()));
    expect(posted()).toHaveLength(1);
  });

  it("gives the tool its params and task details, never the callback token", async () => {
    const seen: { params?: Record<string, unknown>; task?: TaskContext } = {};
    const { runner } = harness({
      lookup_order: async (params, task) => {
        seen.params = params;
        seen.task = task;
        return null;
      },
    });

    await runner.runTask(taskMessage({ params: { order_id: "B-7" } }));

    expect(seen.params).toEqual({ order_id: "B-7" });
    expect(seen.task).toMatchObject({ taskId: "task-1", conversationId: "conv_1", toolName: "lookup_order" });
    expect(JSON.stringify(seen.task)).not.toContain(TASK_TOKEN);
    expect(seen.task?.signal.aborted).toBe(true); // the task is over once it answered
  });

  it("omits result when the tool returns nothing", async () => {
    const { runner, posted } = harness({ lookup_order: async () => undefined });
    await runner.runTask(taskMessage());
    expect(posted()[0]?.body).toEqual({ status: "succeeded" });
  });
});

describe("runTask: a tool that cannot answer ends as failed, never as a lost task", () => {
  it("answers an unknown tool name failed, naming the tools this runner has, without retrying", async () => {
    const { runner, posted } = harness({ lookup_order: tools.lookup_order as never, sleep: async () => 1 });

    const report = await runner.runTask(taskMessage({ toolName: "send_invoice" }));

    expect(report.status).toBe("failed");
    expect(posted()).toEqual([
      expect.objectContaining({
        body: {
          status: "failed",
          error: 'Unknown tool "send_invoice": this runner has no such tool (it runs: lookup_order, sleep).',
        },
      }),
    ]);
  });

  it("does not treat inherited object properties as tools", async () => {
    const { runner, posted } = harness(tools);
    await runner.runTask(taskMessage({ toolName: "constructor" }));
    expect(posted()[0]?.body).toMatchObject({
      status: "failed",
      error: expect.stringContaining("Unknown tool"),
    });
  });

  it("reports a tool that throws as failed with its error message", async () => {
    const { runner, posted } = harness({
      lookup_order: async () => {
        throw new Error("Order service answered 500");
      },
    });
    const report = await runner.runTask(taskMessage());
    expect(report.status).toBe("failed");
    expect(posted()[0]?.body).toEqual({ status: "failed", error: "Order service answered 500" });
  });

  it("reports a tool that throws before returning a promise the same way", async () => {
    const { runner, posted } = harness({
      lookup_order: (() => {
        throw new TypeError("params.order_id.trim is not a function");
      }) as never,
    });
    await runner.runTask(taskMessage());
    expect(posted()[0]?.body).toEqual({ status: "failed", error: "params.order_id.trim is not a function" });
  });

  it("cuts a failure message to the 2000 characters the service keeps", async () => {
    const { runner, posted } = harness({
      lookup_order: async () => {
        throw new Error("x".repeat(5000));
      },
    });
    await runner.runTask(taskMessage());
    expect(String(posted()[0]?.body.error)).toHaveLength(2000);
  });

  it("reports a result that is not JSON as failed", async () => {
    const { runner, posted } = harness({ lookup_order: async () => ({ total: 10n }) });
    await runner.runTask(taskMessage());
    expect(posted()[0]?.body).toMatchObject({ status: "failed", error: expect.stringContaining("BigInt") });
  });

  describe("with fake timers", () => {
    beforeEach(() => {
      vi.useFakeTimers();
    });
    afterEach(() => {
      vi.useRealTimers();
    });

    /** A deadline timer on the faked global setTimeout, cancelled when the task ends. */
    const sleepUntilAborted = (ms: number, signal: AbortSignal) =>
      new Promise<void>((resolve, reject) => {
        const timer = setTimeout(resolve, ms);
        signal.addEventListener("abort", () => {
          clearTimeout(timer);
          reject(signal.reason);
        });
      });

    it("reports a tool that hangs past its deadline as failed, and aborts its signal", async () => {
      let toolSignal: AbortSignal | undefined;
      const { runner, posted } = harness(
        {
          lookup_order: (_params, task) => {
            toolSignal = task.signal;
            return new Promise(() => undefined);
          },
        },
        { taskTimeoutMs: 2000, now: () => Date.now(), sleepUntilAborted },
      );

      const running = runner.runTask(taskMessage());
      await vi.advanceTimersByTimeAsync(1999);
      expect(posted()).toHaveLength(0);
      await vi.advanceTimersByTimeAsync(1);
      const report = await running;

      expect(report.status).toBe("failed");
      expect(posted()[0]?.body).toEqual({
        status: "failed",
        error: 'Tool "lookup_order" did not finish within 2000 ms.',
      });
      expect(toolSignal?.aborted).toBe(true);
    });

    it("leaves no deadline timer behind when the tool answers in time", async () => {
      const { runner } = harness(tools, { taskTimeoutMs: 60_000, now: () => Date.now(), sleepUntilAborted });
      await runner.runTask(taskMessage());
      expect(vi.getTimerCount()).toBe(0);
    });
  });
});

describe("runTask: every answer of the callback that means 'stored' is done", () => {
  it.each([
    ["delivered", { outcome: "delivered", taskId: "task-1", pushed: false }],
    ["delivery_failed", { outcome: "delivery_failed", taskId: "task-1" }],
    ["session_expired", { outcome: "session_expired", taskId: "task-1", expiredForMs: 4000 }],
    ["delivered", { outcome: "delivered", duplicate: true, taskId: "task-1" }],
  ])("stops after one POST when the service answers %s", async (outcome, body) => {
    const { runner, fetch, sleeps } = harness(tools, {}, answer(200, body));
    const report = await runner.runTask(taskMessage());
    expect(fetch).toHaveBeenCalledTimes(1);
    expect(sleeps).toEqual([]);
    expect(report.callback).toMatchObject({
      outcome,
      duplicate: (body as { duplicate?: boolean }).duplicate === true,
      attempts: 1,
    });
  });

  it("treats a 2xx without a readable body as done", async () => {
    const { runner, fetch } = harness(tools, {}, new Response("ok", { status: 200 }));
    const report = await runner.runTask(taskMessage());
    expect(fetch).toHaveBeenCalledTimes(1);
    expect(report.callback.outcome).toBe("unknown");
  });
});

describe("runTask: transient callback failures are retried with backoff", () => {
  it("waits what Retry-After asks after a 503, then delivers", async () => {
    const { runner, fetch, sleeps } = harness(
      tools,
      {},
      answer(503, { error: "service_unavailable" }, { "retry-after": "3" }),
      answer(200, { outcome: "delivered" }),
    );
    const report = await runner.runTask(taskMessage());
    expect(fetch).toHaveBeenCalledTimes(2);
    expect(sleeps).toEqual([3000]);
    expect(report.callback.attempts).toBe(2);
  });

  it("honours Retry-After given as an HTTP date on a 429", async () => {
    const { runner, sleeps, now } = harness(
      tools,
      {},
      () => Promise.resolve(answer(429, {}, { "retry-after": new Date(now() + 7000).toUTCString() })),
      answer(200, { outcome: "delivered" }),
    );
    await runner.runTask(taskMessage());
    expect(sleeps).toHaveLength(1);
    expect(sleeps[0]).toBeGreaterThanOrEqual(6000); // the date has whole-second precision
    expect(sleeps[0]).toBeLessThanOrEqual(7000);
  });

  it("never waits less than its own backoff, whatever Retry-After says", async () => {
    const { runner, sleeps } = harness(
      tools,
      { random: () => 0.999 },
      answer(503, {}, { "retry-after": "0" }),
      answer(200, { outcome: "delivered" }),
    );
    await runner.runTask(taskMessage());
    expect(sleeps).toEqual([250]);
  });

  it("retries timeouts, network errors and 500/502/504, doubling the backoff", async () => {
    const { runner, fetch, sleeps } = harness(
      tools,
      {},
      timeoutError(),
      new TypeError("fetch failed"),
      answer(502, {}),
      answer(504, {}),
      answer(500, {}),
      answer(200, { outcome: "delivered" }),
    );
    const report = await runner.runTask(taskMessage());
    expect(fetch).toHaveBeenCalledTimes(6);
    // Equal jitter with random() = 0: half of 250, 500, 1000, 2000, 4000.
    expect(sleeps).toEqual([125, 250, 500, 1000, 2000]);
    expect(report.callback.attempts).toBe(6);
  });

  it("gives up after the last attempt so SQS delivers the message again", async () => {
    const { runner, fetch } = harness(tools, {}, answer(503, {}));
    const error = await runner.runTask(taskMessage()).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(CallbackUndeliveredError);
    expect(fetch).toHaveBeenCalledTimes(DEFAULT_CALLBACK_POLICY.maxAttempts);
    expect((error as Error).message).toContain("HTTP 503");
  });

  it("does not start a wait that would end past the callback deadline", async () => {
    const { runner, fetch, sleeps } = harness(
      tools,
      { taskTimeoutMs: 1000, callbackReserveMs: 10_000 },
      answer(503, {}, { "retry-after": "60" }),
    );
    await expect(runner.runTask(taskMessage())).rejects.toThrow(/no time left to wait 60000 ms/);
    expect(fetch).toHaveBeenCalledTimes(1);
    expect(sleeps).toEqual([]);
  });
});

describe("runTask: answers that retrying cannot change", () => {
  it.each([401, 403, 404, 409])("stops at once on HTTP %i", async (status) => {
    const { runner, fetch } = harness(tools, {}, answer(status, { error: "x" }));
    const error = await runner.runTask(taskMessage()).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(CallbackRejectedError);
    expect((error as CallbackRejectedError).httpStatus).toBe(status);
    expect(fetch).toHaveBeenCalledTimes(1);
  });

  it.each([400, 413])(
    "replaces a result refused with HTTP %i by a failed report, so the task ends",
    async (status) => {
      const { runner, posted } = harness(
        tools,
        {},
        answer(status, {}),
        answer(200, { outcome: "delivered" }),
      );
      const report = await runner.runTask(taskMessage());
      expect(posted().map((p) => p.body.status)).toEqual(["succeeded", "failed"]);
      expect(posted()[1]?.body.error).toContain(`HTTP ${status}`);
      expect(report.status).toBe("failed");
    },
  );
});

describe("runTask: messages it must not act on", () => {
  it.each([
    ["another host", "https://attacker.example/conversations/conv_1/tasks/task-1/result"],
    ["another scheme", "http://api.example.test/conversations/conv_1/tasks/task-1/result"],
    ["another task", `${RUNNER_BASE_URL}/conversations/conv_1/tasks/task-2/result`],
    ["another conversation", `${RUNNER_BASE_URL}/conversations/conv_2/tasks/task-1/result`],
    [
      "a host that only starts like ours",
      "https://api.example.test.attacker.example/conversations/conv_1/tasks/task-1/result",
    ],
    ["a query string", `${RUNNER_BASE_URL}/conversations/conv_1/tasks/task-1/result?x=1`],
  ])(
    "refuses a callback URL on %s, and never sends the token or runs the tool",
    async (_case, callbackUrl) => {
      const tool = vi.fn(async () => order);
      const { runner, fetch } = harness({ lookup_order: tool });
      await expect(runner.runTask(taskMessage({ callbackUrl }))).rejects.toThrow(InvalidTaskMessageError);
      expect(fetch).not.toHaveBeenCalled();
      expect(tool).not.toHaveBeenCalled();
    },
  );

  it("accepts the callback URL when the base URL is configured with a trailing slash", async () => {
    const { runner, fetch } = harness(tools, { publicBaseUrl: `${RUNNER_BASE_URL}/` });
    await runner.runTask(taskMessage());
    expect(fetch).toHaveBeenCalledTimes(1);
  });

  it.each([
    ["not JSON", "{not json"],
    ["a JSON array", "[]"],
    ["no token", JSON.stringify({ ...taskMessage(), callbackToken: undefined })],
    ["a task id with a slash", JSON.stringify(taskMessage({ taskId: "../x" }))],
    ["params that are not an object", JSON.stringify({ ...taskMessage(), params: "order A-1" })],
  ])("refuses a message that is %s, naming fields but no values", async (_case, body) => {
    const { runner, fetch } = harness(tools);
    const error = await runner.runTask(body).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(InvalidTaskMessageError);
    expect((error as Error).message).not.toContain(TASK_TOKEN);
    expect(fetch).not.toHaveBeenCalled();
  });

  it("refuses to start without this service's base URL", () => {
    const saved = process.env.PUBLIC_BASE_URL;
    delete process.env.PUBLIC_BASE_URL;
    try {
      expect(() => defineTools(tools)).toThrow(/PUBLIC_BASE_URL/);
    } finally {
      process.env.PUBLIC_BASE_URL = saved;
    }
  });

  it("refuses a tool that is not a function, and a base URL with a query", () => {
    expect(() => defineTools({ x: "nope" as never }, { publicBaseUrl: RUNNER_BASE_URL })).toThrow(/Tool "x"/);
    expect(() => defineTools(tools, { publicBaseUrl: "https://api.example.test/?a=1" })).toThrow(/base URL/);
  });
});

describe("the SQS handler: partial batch failures", () => {
  const good = (taskId: string) => taskMessage({ taskId });

  it("reports only the messages that failed, and runs each good one once", async () => {
    const tool = vi.fn(async () => order);
    // Per URL: task-2's callback is down for good, every other one answers.
    const byUrl = vi.fn(async (url: string | URL | Request) =>
      String(url).includes("/tasks/task-2/") ? answer(503, {}) : answer(200, { outcome: "delivered" }),
    );
    const split = defineTools(
      { lookup_order: tool },
      {
        publicBaseUrl: RUNNER_BASE_URL,
        fetch: byUrl as unknown as typeof fetch,
        sleep: async () => undefined,
        random: () => 0,
        logger: captureLogger(),
      },
    );

    const response = await split.handler(
      sqsEvent(
        sqsRecord("m1", good("task-1")),
        sqsRecord("m2", good("task-2")),
        sqsRecord("m3", "{malformed"),
        sqsRecord("m4", good("task-4")),
      ),
      lambdaContext(60_000),
    );

    expect(response.batchItemFailures.map((f) => f.itemIdentifier).sort()).toEqual(["m2", "m3"]);
    // Only the transient failure comes back early; the malformed one keeps the queue's timeout.
    expect(sqs).toHaveReceivedCommandTimes(ChangeMessageVisibilityCommand, 1);
    expect(sqs).toHaveReceivedCommandWith(ChangeMessageVisibilityCommand, { ReceiptHandle: "receipt-m2" });
    expect(tool).toHaveBeenCalledTimes(3);
    const delivered = byUrl.mock.calls.map(([url]) => String(url)).filter((url) => !url.includes("task-2"));
    expect(delivered.sort()).toEqual([
      `${RUNNER_BASE_URL}/conversations/conv_1/tasks/task-1/result`,
      `${RUNNER_BASE_URL}/conversations/conv_1/tasks/task-4/result`,
    ]);
  });

  it("answers a batch where every message failed with all of them, instead of throwing", async () => {
    const { runner } = harness(tools);
    const response = await runner.handler(
      sqsEvent(sqsRecord("m1", "{"), sqsRecord("m2", JSON.stringify({ taskId: 1 }))),
      lambdaContext(60_000),
    );
    expect(response.batchItemFailures).toEqual([{ itemIdentifier: "m1" }, { itemIdentifier: "m2" }]);
  });

  it("does not fail a message whose task was already answered (SQS delivered it twice)", async () => {
    const { runner } = harness(
      tools,
      {},
      answer(200, { outcome: "delivered", duplicate: true, taskId: "task-1" }),
    );
    const response = await runner.handler(
      sqsEvent(sqsRecord("m1", good("task-1"), 2)),
      lambdaContext(60_000),
    );
    expect(response.batchItemFailures).toEqual([]);
  });

  it("bounds the tool by the invocation's remaining time, keeping the callback reserve", async () => {
    let deadlineInMs = 0;
    const { runner, now } = harness(
      {
        lookup_order: async (_params, task) => {
          deadlineInMs = task.deadlineAtMs - now();
          return order;
        },
      },
      { taskTimeoutMs: 300_000, callbackReserveMs: 20_000 },
    );
    await runner.handler(sqsEvent(sqsRecord("m1", good("task-1"))), lambdaContext(30_000, now));
    // 30 s left, 1 s kept for the batch response and 2 s for a visibility change, 20 s for the callback.
    expect(deadlineInMs).toBe(7000);
  });

  it("logs constant messages with ids, never the token, the result or the tool's error text", async () => {
    const secretResult = { card: "4111-SECRET-RESULT" };
    const { runner, logger } = harness(
      {
        lookup_order: async () => secretResult,
        fail: async () => {
          throw new Error("customer SECRET-ERROR-TEXT not found");
        },
      },
      {},
      answer(200, { outcome: "delivered" }),
    );
    await runner.handler(
      sqsEvent(
        sqsRecord("m1", good("task-1")),
        sqsRecord("m2", taskMessage({ taskId: "task-2", toolName: "fail" })),
        sqsRecord("m3", JSON.stringify({ ...good("task-3"), callbackUrl: "https://evil.example/x" })),
      ),
      lambdaContext(60_000),
    );
    const text = logger.text();
    expect(text).not.toContain(TASK_TOKEN);
    expect(text).not.toContain("SECRET-RESULT");
    expect(text).not.toContain("SECRET-ERROR-TEXT");
    expect(logger.lines.map((l) => l.message)).toEqual(
      expect.arrayContaining([
        "Task result delivered",
        "Tool failed; reporting the task as failed",
        "Task message refused; SQS retries it, then dead-letters it",
      ]),
    );
    expect(logger.lines.find((l) => l.message === "Task result delivered")?.data).toMatchObject({
      taskId: "task-1",
      conversationId: "conv_1",
      toolName: "lookup_order",
      outcome: "delivered",
    });
  });
});

describe("backoff and Retry-After", () => {
  it("reads delta-seconds, HTTP dates, and ignores what it cannot read", () => {
    const now = Date.parse("2026-01-01T00:00:00Z");
    expect(retryAfterMs("2", now)).toBe(2000);
    expect(retryAfterMs("Thu, 01 Jan 2026 00:00:05 GMT", now)).toBe(5000);
    expect(retryAfterMs("Wed, 31 Dec 2025 23:59:00 GMT", now)).toBe(0);
    expect(retryAfterMs("soon", now)).toBeUndefined();
    expect(retryAfterMs(null, now)).toBeUndefined();
  });

  it("keeps every backoff between half and all of its capped exponential ceiling", () => {
    for (let attempt = 1; attempt <= 10; attempt++) {
      const ceiling = Math.min(8000, 250 * 2 ** (attempt - 1));
      expect(backoffMs(DEFAULT_CALLBACK_POLICY, attempt, 0)).toBe(ceiling / 2);
      expect(backoffMs(DEFAULT_CALLBACK_POLICY, attempt, 0.999_999)).toBeLessThanOrEqual(ceiling);
    }
  });
});
