import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { exampleTools, fakeOrder } from "../../examples/runner/tools.js";
import type { TaskMessage } from "../../functions/core/dispatcher.js";
import { defineTools, type TaskRunner } from "../../functions/runner/index.js";
import { createLocalTables, type LocalTables } from "../support/dynamo.js";
import { apiEvent, bodyOf } from "../support/events.js";
import { TEN_MIN } from "../support/live-fixtures.js";
import { createLiveHarness, type LiveHarness, liveRequests } from "../support/live-harness.js";
import { captureLogger } from "../support/log-capture.js";
import { lambdaContext, sqsEvent, sqsRecord } from "../support/task-messages.js";

/**
 * The runner library against the real callback route on DynamoDB Local: its fetch is the
 * record-task-result handler behind a Request → API Gateway event adapter, so the body, headers
 * and answers are the service's own, not a mock's.
 */
describe("the example runner reporting to the real callback route", () => {
  let tables: LocalTables;
  let harness: LiveHarness;
  let runner: TaskRunner;
  let offsetMs = 0;
  const now = () => Date.now() + offsetMs;

  beforeAll(async () => {
    tables = await createLocalTables();
    harness = createLiveHarness({ doc: tables.doc, tables: tables.names, now });
    const routeToService = async (input: string | URL | Request, init?: RequestInit): Promise<Response> => {
      const url = new URL(String(input));
      const [, , conversationId, , taskId] = url.pathname.split("/");
      const response = await harness.handlers.result(
        apiEvent({
          method: init?.method ?? "GET",
          path: url.pathname,
          pathParameters: { conversationId: String(conversationId), taskId: String(taskId) },
          headers: Object.fromEntries(new Headers(init?.headers).entries()),
          body: String(init?.body),
        }),
      );
      return new Response(response.body, {
        status: response.statusCode,
        headers: (response.headers ?? {}) as Record<string, string>,
      });
    };
    runner = defineTools(exampleTools, {
      publicBaseUrl: "https://api.example.test",
      fetch: routeToService as typeof fetch,
      now,
      logger: captureLogger(),
    });
  });

  afterAll(async () => {
    await tables?.drop();
  });

  const startTask = async (
    params: Record<string, unknown>,
    toolName = "lookup_order",
  ): Promise<TaskMessage> => {
    const conversationId = `runner-${randomUUID()}`;
    expect((await harness.handlers.register(liveRequests.register(conversationId, {}))).statusCode).toBe(201);
    const before = harness.dispatched.length;
    const answer = bodyOf(
      await harness.handlers.callTool(liveRequests.callTool(conversationId, params, toolName)),
    );
    expect(answer).toMatchObject({ status: "accepted" });
    expect(harness.dispatched).toHaveLength(before + 1);
    return harness.dispatched.at(-1) as TaskMessage;
  };

  it("completes a lookup_order task: the agent's poll then returns the order", async () => {
    const message = await startTask({ order_id: "A-1001" });

    const response = await runner.handler(sqsEvent(sqsRecord("m1", message)), lambdaContext(60_000));

    expect(response.batchItemFailures).toEqual([]);
    const poll = bodyOf(
      await harness.handlers.poll(liveRequests.poll(message.conversationId, message.taskId)),
    );
    expect(poll.tasks).toEqual([
      expect.objectContaining({
        taskId: message.taskId,
        status: "completed",
        result: { status: "succeeded", result: fakeOrder("A-1001") },
      }),
    ]);
  });

  it("treats SQS delivering the same message twice as done, with the result stored once", async () => {
    const message = await startTask({ order_id: "B-2" });
    await runner.runTask(message);

    const again = await runner.runTask(message);

    expect(again.callback).toMatchObject({ outcome: "delivered", duplicate: true });
    const history = await harness.deps.conversations.getConversation(message.conversationId);
    expect(history?.messages.filter((m) => m.kind === "task_result")).toHaveLength(1);
  });

  it("reports a result arriving after the session ended as session_expired, kept in history, not a failure", async () => {
    const message = await startTask({ order_id: "C-3" });
    offsetMs += TEN_MIN + 1;

    const response = await runner.handler(sqsEvent(sqsRecord("m1", message)), lambdaContext(60_000));

    expect(response.batchItemFailures).toEqual([]);
    const task = await harness.deps.tasks.getTask(message.conversationId, message.taskId);
    expect(task?.outcome).toBe("session_expired");
  });

  it("reports an unknown tool failed, and the service stores that failure", async () => {
    const message = await startTask({}, "send_invoice");
    const report = await runner.runTask(message);
    expect(report).toMatchObject({ status: "failed", callback: { outcome: "delivered" } });
    const task = await harness.deps.tasks.getTask(message.conversationId, message.taskId);
    expect(task?.result).toMatchObject({ status: "failed", error: expect.stringContaining("Unknown tool") });
  });

  it("never lets the callback token into the stored history", async () => {
    const message = await startTask({ order_id: "D-4" });
    await runner.runTask(message);
    const history = await harness.deps.conversations.getConversation(message.conversationId);
    expect(JSON.stringify(history)).not.toContain(message.callbackToken);
  });
});
