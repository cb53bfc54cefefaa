import { GetCommand, UpdateCommand } from "@aws-sdk/lib-dynamodb";
import { mockClient } from "aws-sdk-client-mock";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { makeHandler as makeCallTool } from "../../../functions/call-tool/handler.js";
import { hashToken } from "../../../functions/core/auth.js";
import { iso } from "../../../functions/core/conversation-items.js";
import type { TaskDispatcher, TaskMessage } from "../../../functions/core/dispatcher.js";
import { DISPATCH_DEADLINE_MS, DISPATCH_WINDOW_MS } from "../../../functions/core/task-dispatch.js";
import { makeHandler as makePoll } from "../../../functions/get-task-result/handler.js";
import { createDocClient } from "../../support/doc-client.js";
import { apiEvent, bodyOf } from "../../support/events.js";
import { fakeLiveTables, type LiveState } from "../../support/fake-live-table.js";
import {
  sessionItem,
  T0,
  TEN_MIN,
  TOOL_SECRET,
  taskItem,
  testDependencies,
} from "../../support/live-fixtures.js";

const doc = createDocClient();
const ddb = mockClient(doc);
const toolHeaders = { "X-Tool-Secret": TOOL_SECRET, "Content-Type": "application/json" };
const toolEvent = (body: unknown, headers: Record<string, string> = toolHeaders, toolName = "lookup_order") =>
  apiEvent({ method: "POST", path: `/tools/${toolName}`, pathParameters: { toolName }, headers, body });

describe("ElevenLabs tool routes", () => {
  let state: LiveState;
  let sent: TaskMessage[];
  let dispatcher: TaskDispatcher;
  let setup: ReturnType<typeof testDependencies>;

  beforeEach(() => {
    ddb.reset();
    vi.useFakeTimers();
    vi.setSystemTime(T0);
    state = fakeLiveTables(ddb, {
      session: sessionItem("conv-1", T0, { notifyUrl: "https://app.example.test/live" }),
      tasks: new Map(),
      messages: [],
    });
    sent = [];
    dispatcher = { kind: "test", dispatch: async (m) => void sent.push(m) };
    setup = testDependencies({ doc });
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  const callTool = (body: unknown, headers?: Record<string, string>) =>
    makeCallTool({ ...setup.deps, dispatcher })(toolEvent(body, headers));

  it("accepts a flat ElevenLabs body: records the task (token hash only) and dispatches once", async () => {
    const response = await callTool({ conversation_id: "conv-1", order_id: "A1042" });
    expect(response.statusCode).toBe(200);
    const body = bodyOf(response);
    expect(body).toMatchObject({ status: "accepted", taskId: expect.any(String) });
    expect(sent).toHaveLength(1);
    const message = sent[0] as TaskMessage;
    expect(message).toMatchObject({
      taskId: body.taskId,
      conversationId: "conv-1",
      toolName: "lookup_order",
      params: { order_id: "A1042" },
      callbackUrl: `https://api.example.test/conversations/conv-1/tasks/${String(body.taskId)}/result`,
    });
    expect(Buffer.from(message.callbackToken, "base64url").length).toBeGreaterThanOrEqual(16);
    const stored = state.tasks.get(`task#${String(body.taskId)}`);
    expect(stored).toMatchObject({
      status: "pending",
      tokenHash: hashToken(message.callbackToken),
      notifyUrl: "https://app.example.test/live",
    });
    expect(JSON.stringify(stored)).not.toContain(message.callbackToken);
    expect(setup.logger.text()).not.toContain(message.callbackToken);
    expect(setup.metrics.counts).toEqual({ TaskAccepted: 1 });
  });

  it("hands the callback details to the caller only when configured (no runner, local demos)", async () => {
    const exposed = testDependencies({ doc, env: { EXPOSE_CALLBACK_IN_TOOL_RESPONSE: "true" } });
    const response = await makeCallTool({ ...exposed.deps, dispatcher })(
      toolEvent({ conversation_id: "conv-1" }),
    );
    expect(bodyOf(response)).toMatchObject({
      callbackUrl: expect.stringContaining("/result"),
      callbackToken: sent[0]?.callbackToken,
    });
    const hidden = await makeCallTool({
      ...testDependencies({ doc, env: { TASK_QUEUE_URL: "https://sqs.test/q" } }).deps,
      dispatcher,
    })(toolEvent({ conversation_id: "conv-1" }));
    expect(bodyOf(hidden)).not.toHaveProperty("callbackToken");
  });

  describe("inline answer when the task is quick (TOOL_INLINE_WAIT_MS)", () => {
    const waiting = (waitMs: number, runner?: (m: TaskMessage) => void) => {
      const deps = testDependencies({ doc, env: { TOOL_INLINE_WAIT_MS: String(waitMs) } }).deps;
      const quick: TaskDispatcher = {
        kind: "test",
        dispatch: async (m) => {
          sent.push(m);
          runner?.(m);
        },
      };
      return makeCallTool({ ...deps, dispatcher: quick });
    };
    /** The runner's callback, stored as the record-task-result route would after `afterMs`. */
    const completesAfter = (afterMs: number) => (m: TaskMessage) => {
      setTimeout(() => {
        const key = `task#${m.taskId}`;
        const task = state.tasks.get(key);
        state.tasks.set(key, {
          ...task,
          status: "completed",
          outcome: "delivered",
          result: { status: "succeeded", result: { order: "A1", status: "shipped" } },
          resultAt: iso(Date.now()),
        });
      }, afterMs);
    };
    const reads = () =>
      ddb.commandCalls(GetCommand).filter((c) => String(c.args[0].input.Key?.sk).startsWith("task#")).length;

    it("answers completed with the result when the callback lands within the wait", async () => {
      const pending = waiting(
        1_000,
        completesAfter(250),
      )(toolEvent({ conversation_id: "conv-1", order_id: "A1" }));
      await vi.advanceTimersByTimeAsync(1_000);
      const response = await pending;
      expect(response.statusCode).toBe(200);
      expect(bodyOf(response)).toEqual({
        status: "completed",
        taskId: sent[0]?.taskId,
        result: { status: "succeeded", result: { order: "A1", status: "shipped" } },
        message: expect.any(String),
      });
      // One consistent read per 100 ms until the result was there (at 300 ms).
      expect(reads()).toBe(3);
      expect(JSON.stringify(bodyOf(response))).not.toContain(sent[0]?.callbackToken ?? "-");
    });

    it("answers accepted after the wait when the task is slower, with at most one read per 100 ms", async () => {
      const pending = waiting(1_000, completesAfter(5_000))(toolEvent({ conversation_id: "conv-1" }));
      await vi.advanceTimersByTimeAsync(1_500);
      const response = await pending;
      expect(bodyOf(response)).toMatchObject({ status: "accepted", taskId: sent[0]?.taskId });
      expect(reads()).toBe(10);
    });

    it("never waits past the session's end", async () => {
      vi.setSystemTime(T0 + TEN_MIN - 300);
      const pending = waiting(5_000, completesAfter(1_000))(toolEvent({ conversation_id: "conv-1" }));
      await vi.advanceTimersByTimeAsync(400);
      const response = await pending;
      expect(bodyOf(response)).toMatchObject({ status: "accepted" });
      expect(reads()).toBeLessThanOrEqual(3);
    });

    it("does not wait at 0, nor without a runner (manual mode)", async () => {
      const none = await waiting(0, completesAfter(0))(toolEvent({ conversation_id: "conv-1" }));
      expect(bodyOf(none)).toMatchObject({ status: "accepted" });
      const manualDeps = testDependencies({ doc, env: { TOOL_INLINE_WAIT_MS: "1000" } }).deps;
      const manual = await makeCallTool({
        ...manualDeps,
        dispatcher: { kind: "none", dispatch: async () => undefined },
      })(toolEvent({ conversation_id: "conv-1" }));
      expect(bodyOf(manual)).toMatchObject({ status: "accepted" });
      expect(reads()).toBe(0);
    });

    it("answers accepted when a read fails: the agent polls as usual", async () => {
      const deps = testDependencies({ doc, env: { TOOL_INLINE_WAIT_MS: "1000" } }).deps;
      let failedReads = 0;
      const tasks = Object.assign(Object.create(deps.tasks) as typeof deps.tasks, {
        getTask: async () => {
          failedReads++;
          throw new Error("DynamoDB is slow");
        },
      });
      const quick: TaskDispatcher = { kind: "test", dispatch: async (m) => completesAfter(50)(m) };
      const pending = makeCallTool({ ...deps, tasks, dispatcher: quick })(
        toolEvent({ conversation_id: "conv-1" }),
      );
      await vi.advanceTimersByTimeAsync(1_000);
      expect(bodyOf(await pending)).toMatchObject({ status: "accepted" });
      expect(failedReads).toBe(1);
    });
  });

  it.each([
    ["TASK_QUEUE_URL", "https://sqs.test/q"],
    ["RUNNER_URL", "http://127.0.0.1:3000/_local/runner/tasks"],
  ])("never hands out the token when a runner is configured (%s), even if asked to", async (name, value) => {
    const setup = testDependencies({ doc, env: { [name]: value, EXPOSE_CALLBACK_IN_TOOL_RESPONSE: "true" } });
    const response = await makeCallTool({ ...setup.deps, dispatcher })(
      toolEvent({ conversation_id: "conv-1" }),
    );
    expect(bodyOf(response)).toMatchObject({ status: "accepted" });
    expect(bodyOf(response)).not.toHaveProperty("callbackToken");
    expect(bodyOf(response)).not.toHaveProperty("callbackUrl");
  });

  it("also accepts the wrapped shape { tool_name, parameters, conversation_id }", async () => {
    const response = await callTool({
      tool_name: "lookup_order",
      conversation_id: "conv-1",
      parameters: { order_id: "A1" },
    });
    expect(bodyOf(response)).toMatchObject({ status: "accepted" });
    expect(sent[0]?.params).toEqual({ order_id: "A1" });
  });

  // Issue 19, reproduction 4: parameters are filled by the LLM, conversation_id by the system.
  // conv-2 has no session: were its id read, this call would start one there (SESSION_START's default).
  const SHAPES: [string, "POST" | "GET", unknown, Record<string, string> | undefined][] = [
    ["flat POST", "POST", { conversation_id: "conv-1", order_id: "A1" }, undefined],
    [
      "wrapped POST",
      "POST",
      { tool_name: "lookup_order", conversation_id: "conv-1", parameters: { order_id: "A1" } },
      undefined,
    ],
    [
      "wrapped POST with an LLM-filled conversation_id in parameters",
      "POST",
      {
        tool_name: "lookup_order",
        conversation_id: "conv-1",
        parameters: { conversation_id: "conv-2", order_id: "A1" },
      },
      undefined,
    ],
    [
      "flat POST with a conversation_id in the query",
      "POST",
      { conversation_id: "conv-1", order_id: "A1" },
      { conversation_id: "conv-2" },
    ],
    [
      "flat POST with system__conversation_id and an LLM-filled conversation_id",
      "POST",
      { system__conversation_id: "conv-1", conversation_id: "conv-2", order_id: "A1" },
      undefined,
    ],
    [
      "wrapped POST with system__conversation_id at the top",
      "POST",
      {
        system__conversation_id: "conv-1",
        parameters: { conversation_id: "conv-2", order_id: "A1" },
      },
      undefined,
    ],
    [
      "wrapped POST with system__conversation_id only in parameters",
      "POST",
      { parameters: { system__conversation_id: "conv-1", conversation_id: "conv-2", order_id: "A1" } },
      undefined,
    ],
    [
      "wrapped POST whose parameters carry another system__conversation_id",
      "POST",
      {
        conversation_id: "conv-1",
        parameters: { system__conversation_id: "conv-2", order_id: "A1" },
      },
      undefined,
    ],
    ["GET query", "GET", undefined, { conversation_id: "conv-1", order_id: "A1" }],
    [
      "GET query with system__conversation_id and an LLM-filled conversation_id",
      "GET",
      undefined,
      { conversation_id: "conv-2", system__conversation_id: "conv-1", order_id: "A1" },
    ],
  ];
  const shapeEvent = (
    path: string,
    method: "POST" | "GET",
    body: unknown,
    query: Record<string, string> | undefined,
  ) =>
    apiEvent({
      method,
      path,
      ...(path === "/tools/lookup_order" ? { pathParameters: { toolName: "lookup_order" } } : {}),
      headers: method === "GET" ? { "X-Tool-Secret": TOOL_SECRET } : toolHeaders,
      ...(body === undefined ? {} : { body }),
      ...(query ? { query } : {}),
    });

  it.each(SHAPES)("the system conversation_id wins for a %s", async (_shape, method, body, query) => {
    const response = await makeCallTool({ ...setup.deps, dispatcher })(
      shapeEvent("/tools/lookup_order", method, body, query),
    );
    expect(bodyOf(response)).toMatchObject({ status: "accepted" });
    expect(sent).toHaveLength(1);
    expect(sent[0]).toMatchObject({ conversationId: "conv-1", params: { order_id: "A1" } });
    // Neither the LLM's id nor the system's is a task parameter; nothing was written for conv-2.
    expect(Object.keys(sent[0]?.params ?? {})).toEqual(["order_id"]);
    expect(JSON.stringify(ddb.calls().map((c) => c.args[0].input))).not.toContain("conv-2");
  });

  it.each(SHAPES)(
    "get_task_result reads the system conversation's tasks for a %s",
    async (_s, method, body, query) => {
      state.tasks.set("task#t1", taskItem("conv-1", "t1"));
      const response = await makePoll(setup.deps)(shapeEvent("/tools/get_task_result", method, body, query));
      expect(bodyOf(response)).toMatchObject({ status: "active", tasks: [{ taskId: "t1" }] });
      expect(JSON.stringify(ddb.calls().map((c) => c.args[0].input))).not.toContain("conv-2");
    },
  );

  it("refuses a wrapped body whose only conversation_id is the LLM's", async () => {
    const response = await callTool({ tool_name: "lookup_order", parameters: { conversation_id: "conv-1" } });
    expect(response.statusCode).toBe(400);
    expect(sent).toHaveLength(0);
  });

  it("answers 200 session_expired the agent can speak, dispatches nothing and logs a WARN", async () => {
    vi.setSystemTime(T0 + TEN_MIN);
    const response = await callTool({ conversation_id: "conv-1", order_id: "A1" });
    expect(response.statusCode).toBe(200);
    expect(bodyOf(response)).toMatchObject({
      status: "session_expired",
      message: expect.stringMatching(/expired/),
    });
    expect(sent).toHaveLength(0);
    expect(state.tasks.size).toBe(0);
    expect(setup.logger.lines).toContainEqual(
      expect.objectContaining({
        level: "warn",
        message: "Tool called after session expired; nothing dispatched",
      }),
    );
  });

  it("answers 200 session_not_found when the conversation never registered a session (SESSION_START=app)", async () => {
    state.session = undefined;
    setup = testDependencies({ doc, env: { SESSION_START: "app" } });
    const response = await callTool({ conversation_id: "conv-1" });
    expect(bodyOf(response)).toMatchObject({ status: "session_not_found" });
    expect(sent).toHaveLength(0);
  });

  it("answers session_expired when the session expires between the read and the conditional write", async () => {
    vi.setSystemTime(T0 + TEN_MIN - 1);
    // The read sees 1 ms left; the clock then moves past the expiry before the write.
    const lookup = setup.deps.sessions.lookup.bind(setup.deps.sessions);
    setup.deps.sessions.lookup = async (id: string) => {
      const result = await lookup(id);
      vi.setSystemTime(T0 + TEN_MIN);
      return result;
    };
    const response = await callTool({ conversation_id: "conv-1" });
    expect(bodyOf(response)).toMatchObject({ status: "session_expired" });
    expect(sent).toHaveLength(0);
    expect(state.tasks.size).toBe(0);
  });

  it("answers 503 when the task cannot be dispatched, keeping the task recorded as pending", async () => {
    dispatcher = { kind: "test", dispatch: async () => Promise.reject(new Error("queue down")) };
    const response = await callTool({ conversation_id: "conv-1" });
    expect(response.statusCode).toBe(503);
    expect(state.tasks.size).toBe(1);
    expect([...state.tasks.values()][0]).toMatchObject({ status: "pending", dispatch: "pending" });
  });

  it("marks the task dispatched only after the runner took it", async () => {
    const response = await callTool({ conversation_id: "conv-1" });
    const task = state.tasks.get(`task#${String(bodyOf(response).taskId)}`);
    expect(task).toMatchObject({ dispatch: "sent", dispatchedAt: new Date(T0).toISOString() });
  });

  it("records createdAt from the same clock read as the session guard: accepted in the last ms means createdAt < expiresAt", async () => {
    vi.setSystemTime(T0 + TEN_MIN - 1);
    // The clock moves on 1 ms after each read of the tool's clock, so a second read (the bug this
    // guards against) would record createdAt == expiresAt.
    const ticking = () => {
      const t = Date.now();
      vi.setSystemTime(t + 1);
      return t;
    };
    const response = await makeCallTool({ ...setup.deps, now: ticking, dispatcher })(
      toolEvent({ conversation_id: "conv-1" }),
    );
    expect(bodyOf(response)).toMatchObject({ status: "accepted" });
    const task = state.tasks.get(`task#${String(bodyOf(response).taskId)}`);
    expect(Date.parse(String(task?.createdAt))).toBeLessThan(T0 + TEN_MIN);
  });

  it("answers accepted with a WARN when the dispatch mark cannot be stored (the runner already has the task)", async () => {
    const fail = Object.assign(new Error("timed out"), { name: "TimeoutError" });
    ddb.on(UpdateCommand).rejects(fail);
    const response = await callTool({ conversation_id: "conv-1" });
    expect(bodyOf(response)).toMatchObject({ status: "accepted" });
    expect(sent).toHaveLength(1);
    expect(setup.logger.text()).toContain("Task dispatched but its dispatch mark could not be stored");
  });

  it("does not dispatch a task whose create call ran past the dispatch window (it will read as abandoned)", async () => {
    const transact = setup.deps.tasks.createTask.bind(setup.deps.tasks);
    setup.deps.tasks.createTask = async (...args: Parameters<typeof transact>) => {
      const created = await transact(...args);
      vi.setSystemTime(Date.now() + DISPATCH_WINDOW_MS + 1);
      return created;
    };
    const response = await callTool({ conversation_id: "conv-1" });
    expect(response.statusCode).toBe(503);
    expect(sent).toHaveLength(0);
    expect([...state.tasks.values()][0]).toMatchObject({ dispatch: "pending" });
  });

  it("polls an undispatched task as abandoned once the dispatch deadline passed, and says so", async () => {
    state.tasks.set("task#t1", taskItem("conv-1", "t1", { dispatch: "pending", createdAt: iso(T0) }));
    state.tasks.set("task#t2", taskItem("conv-1", "t2", { dispatch: "sent", createdAt: iso(T0) }));
    state.tasks.set("task#t3", taskItem("conv-1", "t3", { createdAt: iso(T0) }));
    const poll = () =>
      makePoll(setup.deps)(
        apiEvent({
          method: "POST",
          path: "/tools/get_task_result",
          headers: toolHeaders,
          body: { conversation_id: "conv-1" },
        }),
      );
    vi.setSystemTime(T0 + DISPATCH_DEADLINE_MS - 1);
    const before = bodyOf(await poll());
    expect((before.tasks as { status: string }[]).map((t) => t.status)).toEqual([
      "pending",
      "pending",
      "pending",
    ]);
    vi.setSystemTime(T0 + DISPATCH_DEADLINE_MS);
    const after = bodyOf(await poll());
    const byId = Object.fromEntries(
      (after.tasks as { taskId: string; status: string }[]).map((t) => [t.taskId, t.status]),
    );
    // Only the never-dispatched task; a dispatched one and one recorded before the marker stay pending.
    expect(byId).toEqual({ t1: "abandoned", t2: "pending", t3: "pending" });
    expect(after.message).toContain("1 task(s) were never started");
  });

  it.each([
    ["a missing secret header", { "Content-Type": "application/json" }],
    ["a wrong secret", { "X-Tool-Secret": "nope" }],
  ])("answers 401 for %s", async (_label, headers) => {
    const response = await callTool({ conversation_id: "conv-1" }, headers);
    expect(response.statusCode).toBe(401);
    expect(ddb.calls()).toHaveLength(0);
  });

  it.each([
    ["a missing conversation_id", { order_id: "A1" }],
    ["an injection-looking conversation_id", { conversation_id: "conv-1' OR 1=1" }],
    ["a non-object body", "[]"],
    ["invalid JSON", "{"],
  ])("answers 400 for %s", async (_label, body) => {
    const response = await callTool(body);
    expect(response.statusCode).toBe(400);
    expect(sent).toHaveLength(0);
  });

  it("polls task results while the session is active", async () => {
    state.tasks.set(
      "task#t1",
      taskItem("conv-1", "t1", {
        status: "completed",
        outcome: "delivered",
        result: { ok: 1 },
        resultAt: "x",
      }),
    );
    state.tasks.set("task#t2", taskItem("conv-1", "t2"));
    const response = await makePoll(setup.deps)(
      apiEvent({
        method: "POST",
        path: "/tools/get_task_result",
        headers: toolHeaders,
        body: { conversation_id: "conv-1" },
      }),
    );
    expect(response.statusCode).toBe(200);
    const body = bodyOf(response);
    expect(body).toMatchObject({ status: "active", message: "1 of 2 task(s) have finished." });
    expect(JSON.stringify(body)).not.toContain("tokenHash");
  });

  it("refuses to poll after the session expired", async () => {
    vi.setSystemTime(T0 + TEN_MIN);
    const response = await makePoll(setup.deps)(
      apiEvent({
        method: "POST",
        path: "/tools/get_task_result",
        headers: toolHeaders,
        body: { conversation_id: "conv-1" },
      }),
    );
    expect(bodyOf(response)).toMatchObject({ status: "session_expired" });
  });
});
