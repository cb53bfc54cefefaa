import { afterEach, describe, expect, it, vi } from "vitest";
import {
  createExampleTools,
  exampleTools,
  fakeOrder,
  MAX_SLEEP_SECONDS,
  ToolInputError,
} from "../../../examples/runner/tools.js";
import { defineTools, type TaskContext } from "../../../functions/runner/index.js";
import { captureLogger } from "../../support/log-capture.js";
import {
  answer,
  lambdaContext,
  RUNNER_BASE_URL,
  sqsEvent,
  sqsRecord,
  taskMessage,
} from "../../support/task-messages.js";

const NOW = 1_767_225_600_000;

const taskContext = (overrides: Partial<TaskContext> = {}): TaskContext => ({
  taskId: "task-1",
  conversationId: "conv_1",
  toolName: "sleep",
  createdAt: new Date(NOW).toISOString(),
  deadlineAtMs: NOW + 305_000,
  signal: new AbortController().signal,
  ...overrides,
});

/** Example tools on a fixed clock whose sleep records what it was asked. */
const fixedTools = () => {
  const slept: number[] = [];
  const tools = createExampleTools({
    now: () => NOW,
    sleep: async (ms) => {
      slept.push(ms);
    },
  });
  return { tools, slept };
};

describe("lookup_order", () => {
  it("answers the same order for the same id, every time", async () => {
    const { tools } = fixedTools();
    const first = await tools.lookup_order?.({ order_id: "A-1001" }, taskContext());
    const second = await tools.lookup_order?.({ order_id: "A-1001" }, taskContext());
    expect(first).toEqual(second);
    expect(first).toMatchObject({ orderId: "A-1001", currency: "EUR" });
  });

  it("answers different orders for different ids", () => {
    const orders = ["A-1", "A-2", "A-3", "A-4", "A-5", "A-6"].map((id) => fakeOrder(id));
    const distinct = new Set(orders.map(({ orderId: _, ...rest }) => JSON.stringify(rest)));
    expect(distinct.size).toBeGreaterThan(1);
  });

  it("answers without waiting on any timer (fake timers never advanced)", async () => {
    vi.useFakeTimers();
    try {
      await expect(exampleTools.lookup_order?.({ order_id: "Z9" }, taskContext())).resolves.toMatchObject({
        orderId: "Z9",
      });
    } finally {
      vi.useRealTimers();
    }
  });

  it.each([
    [{}],
    [{ order_id: "" }],
    [{ order_id: 42 }],
    [{ order_id: "a b" }],
    [{ order_id: "x".repeat(65) }],
  ])("refuses %j with a sentence the agent can relay", async (params) => {
    const { tools } = fixedTools();
    await expect(tools.lookup_order?.(params, taskContext())).rejects.toThrow(ToolInputError);
    await expect(tools.lookup_order?.(params, taskContext())).rejects.toThrow(/order_id is required/);
  });
});

describe("sleep", () => {
  it("sleeps the seconds asked and answers {slept: seconds}", async () => {
    const { tools, slept } = fixedTools();
    await expect(tools.sleep?.({ seconds: 2.5 }, taskContext())).resolves.toEqual({ slept: 2.5 });
    expect(slept).toEqual([2500]);
  });

  it(`accepts up to ${MAX_SLEEP_SECONDS} s when the deadline allows it`, async () => {
    const { tools, slept } = fixedTools();
    await tools.sleep?.({ seconds: MAX_SLEEP_SECONDS }, taskContext());
    expect(slept).toEqual([MAX_SLEEP_SECONDS * 1000]);
  });

  it.each([
    [{}],
    [{ seconds: -1 }],
    [{ seconds: MAX_SLEEP_SECONDS + 1 }],
    [{ seconds: "5" }],
    [{ seconds: null }],
  ])("refuses %j without sleeping", async (params) => {
    const { tools, slept } = fixedTools();
    await expect(tools.sleep?.(params, taskContext())).rejects.toThrow(
      /seconds must be a number from 0 to 300/,
    );
    expect(slept).toEqual([]);
  });

  it("refuses a sleep that would outlast the task's deadline, saying how long it may be", async () => {
    const { tools, slept } = fixedTools();
    await expect(tools.sleep?.({ seconds: 60 }, taskContext({ deadlineAtMs: NOW + 30_500 }))).rejects.toThrow(
      /at most 30 here/,
    );
    expect(slept).toEqual([]);
  });

  it("stops sleeping when the task is aborted", async () => {
    const stop = new AbortController();
    const sleeping = exampleTools.sleep?.(
      { seconds: 120 },
      taskContext({ deadlineAtMs: Date.now() + 300_000, signal: stop.signal }),
    );
    stop.abort(new Error("deadline"));
    await expect(sleeping).rejects.toThrow();
  });
});

describe("the example runner through the library", () => {
  afterEach(() => {
    vi.unstubAllGlobals();
  });

  it("reports a lookup_order result and a too-long sleep as failed, in one batch", async () => {
    const fetch = vi.fn(async () => answer(200, { outcome: "delivered" }));
    const runner = defineTools(exampleTools, {
      publicBaseUrl: RUNNER_BASE_URL,
      fetch: fetch as unknown as typeof globalThis.fetch,
      logger: captureLogger(),
      taskTimeoutMs: 10_000,
    });
    const response = await runner.handler(
      sqsEvent(
        sqsRecord("m1", taskMessage({ taskId: "t1", params: { order_id: "A-1001" } })),
        sqsRecord("m2", taskMessage({ taskId: "t2", toolName: "sleep", params: { seconds: 200 } })),
      ),
      lambdaContext(60_000),
    );
    expect(response.batchItemFailures).toEqual([]);
    const bodies = Object.fromEntries(
      fetch.mock.calls.map((call) => {
        const [url, init] = call as unknown as [string, RequestInit];
        return [url.split("/tasks/")[1], JSON.parse(String(init.body))];
      }),
    );
    expect(bodies["t1/result"]).toEqual({ status: "succeeded", result: fakeOrder("A-1001") });
    expect(bodies["t2/result"]).toMatchObject({
      status: "failed",
      error: expect.stringContaining("seconds must be at most"),
    });
  });

  it("exports a Lambda handler built from PUBLIC_BASE_URL that calls back with the global fetch", async () => {
    const fetch = vi.fn(async () => answer(200, { outcome: "delivered" }));
    vi.stubGlobal("fetch", fetch);
    const { handler } = await import("../../../examples/runner/handler.js");
    const response = await handler(
      sqsEvent(
        sqsRecord(
          "m1",
          taskMessage({
            callbackUrl: `${process.env.PUBLIC_BASE_URL}/conversations/conv_1/tasks/task-1/result`,
          }),
        ),
      ),
      lambdaContext(60_000),
    );
    expect(response.batchItemFailures).toEqual([]);
    expect(fetch).toHaveBeenCalledTimes(1);
  });
});
