import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { exampleTools } from "../../examples/runner/tools.js";
import { makeHandler as makeCallTool } from "../../functions/call-tool/handler.js";
import type { TaskDispatcher, TaskMessage } from "../../functions/core/dispatcher.js";
import { INLINE_POLL_INTERVAL_MS } from "../../functions/core/inline-wait.js";
import { defineTools } from "../../functions/runner/index.js";
import { createLocalTables, type LocalTables } from "../support/dynamo.js";
import { bodyOf } from "../support/events.js";
import { createLiveHarness, type LiveHarness, liveRequests } from "../support/live-harness.js";
import { captureLogger } from "../support/log-capture.js";
import { conversationItems } from "../support/table-snapshot.js";

/**
 * Issue 16: a quick task answers inline. The example runner runs in process, exactly as the
 * Lambda runner would (the library's runTask), and reports through the record-task-result
 * handler, so the result the tool call answers with is the one the callback stored.
 */
describe("inline answers on DynamoDB Local, with the example runner in process", () => {
  let tables: LocalTables;
  const logger = captureLogger();
  const runs: Promise<unknown>[] = [];
  /** A wait this long only bounds a machine that is very slow: the answer comes when the result does. */
  const LONG_WAIT_MS = 15_000;
  const SHORT_WAIT_MS = 1_500;
  let h: LiveHarness;
  let callToolLong: ReturnType<typeof makeCallTool>;
  let callToolShort: ReturnType<typeof makeCallTool>;

  beforeAll(async () => {
    tables = await createLocalTables();
    h = createLiveHarness({ doc: tables.doc, tables: tables.names, logger });
    const runner = (message: TaskMessage) =>
      defineTools(exampleTools, {
        publicBaseUrl: "https://api.example.test",
        // The callback goes straight to the record-task-result handler (no network).
        fetch: async (_url, init) => {
          const response = await h.handlers.result(
            liveRequests.result(message, JSON.parse(String(init?.body))),
          );
          return new Response(response.body, { status: response.statusCode });
        },
      }).runTask(message);
    const dispatcher: TaskDispatcher = {
      kind: "in-process-test",
      dispatch: async (message) => {
        runs.push(runner(message).catch((error: unknown) => error));
      },
    };
    const withWait = (waitMs: number) =>
      makeCallTool({
        ...h.deps,
        config: { ...h.deps.config, toolInlineWaitMs: waitMs },
        dispatcher,
      });
    callToolLong = withWait(LONG_WAIT_MS);
    callToolShort = withWait(SHORT_WAIT_MS);
  });
  afterAll(async () => {
    await Promise.all(runs);
    await tables?.drop();
  });

  const taskItems = (conversationId: string) =>
    conversationItems(tables.doc, tables.names.conversations, conversationId);

  it("answers a lookup_order call completed, with the result the callback stored once", async () => {
    const id = `inline-${randomUUID()}`;
    const response = await callToolLong(liveRequests.callTool(id, { order_id: "A1042" }));
    expect(response.statusCode).toBe(200);
    const body = bodyOf(response);
    expect(body).toMatchObject({
      status: "completed",
      taskId: expect.any(String),
      result: { status: "succeeded", result: expect.objectContaining({ orderId: "A1042" }) },
    });
    expect(JSON.stringify(body)).not.toMatch(/callbackToken|Bearer/);
    const items = await taskItems(id);
    expect(items.filter((i) => String(i.sk).startsWith("task#"))).toEqual([
      expect.objectContaining({ outcome: "delivered", status: "completed" }),
    ]);
    expect(items.filter((i) => i.kind === "task_result")).toHaveLength(1);
    // The poll says the same afterwards.
    const poll = bodyOf(await h.handlers.poll(liveRequests.poll(id)));
    expect(poll.tasks).toEqual([expect.objectContaining({ taskId: body.taskId, status: "completed" })]);
  });

  it("answers accepted after the wait when the task is slower, reading at most once per 100 ms", async () => {
    const id = `slow-${randomUUID()}`;
    const before = h.metrics.counts.TaskAccepted ?? 0;
    const response = await callToolShort(liveRequests.callTool(id, { seconds: 3 }, "sleep"));
    expect(bodyOf(response)).toMatchObject({ status: "accepted", taskId: expect.any(String) });
    expect(h.metrics.counts.TaskAccepted).toBe(before + 1);
    const line = logger.lines.find(
      (l) => l.message === "Tool call accepted: task recorded and dispatched" && l.data.conversationId === id,
    );
    expect(line?.data).toMatchObject({ reads: expect.any(Number), waitedMs: expect.any(Number) });
    expect(Number(line?.data.reads)).toBeGreaterThan(0);
    expect(Number(line?.data.reads)).toBeLessThanOrEqual(SHORT_WAIT_MS / INLINE_POLL_INTERVAL_MS);
  });
});
