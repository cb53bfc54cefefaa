import { randomUUID } from "node:crypto";
import { DeleteCommand } from "@aws-sdk/lib-dynamodb";
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import { makeHandler as makeCallTool } from "../../functions/call-tool/handler.js";
import { createDependencies, type Dependencies } from "../../functions/core/dependencies.js";
import type { TaskMessage } from "../../functions/core/dispatcher.js";
import type { LivePush } from "../../functions/core/notifier.js";
import { makeHandler as makeGetSession } from "../../functions/get-session/handler.js";
import { makeHandler as makeResult } from "../../functions/record-task-result/handler.js";
import { makeHandler as makeRegister } from "../../functions/register-session/handler.js";
import { frozenAtRealNow, iso } from "../support/clock.js";
import { createLocalTables, type LocalTables } from "../support/dynamo.js";
import { apiEvent, bodyOf } from "../support/events.js";
import { captureMetrics, SERVICE_TOKEN, TEN_MIN, TOOL_SECRET } from "../support/live-fixtures.js";
import { captureLogger } from "../support/log-capture.js";

describe("live path handlers on DynamoDB Local", () => {
  let tables: LocalTables;
  let deps: Dependencies;
  let sent: TaskMessage[];
  let pushes: LivePush[];
  let log: ReturnType<typeof captureLogger>;
  let handlers: {
    register: ReturnType<typeof makeRegister>;
    getSession: ReturnType<typeof makeGetSession>;
    callTool: ReturnType<typeof makeCallTool>;
    result: ReturnType<typeof makeResult>;
  };

  beforeAll(async () => {
    tables = await createLocalTables();
    log = captureLogger();
    deps = createDependencies(
      {
        SESSIONS_TABLE: tables.names.sessions,
        CONVERSATIONS_TABLE: tables.names.conversations,
        PUBLIC_BASE_URL: "https://api.example.test",
        SERVICE_TOKEN,
        TOOL_SECRET,
        NOTIFY_SIGNING_SECRET: "n",
      },
      { doc: tables.doc, logger: log, metrics: captureMetrics() },
      ["tables", "publicBaseUrl"],
    );
    handlers = {
      register: makeRegister(deps),
      getSession: makeGetSession(deps),
      callTool: makeCallTool({
        ...deps,
        dispatcher: { kind: "test", dispatch: async (m) => void sent.push(m) },
      }),
      result: makeResult({
        ...deps,
        notifier: {
          push: async (_url, p) => {
            pushes.push(p);
            return { ok: true };
          },
        },
      }),
    };
  });
  afterAll(async () => {
    await tables.drop();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  const register = (conv: string) =>
    handlers.register(
      apiEvent({
        path: `/conversations/${conv}/session`,
        pathParameters: { conversationId: conv },
        headers: { authorization: `Bearer ${SERVICE_TOKEN}` },
        body: { notifyUrl: "https://app.example.test/live" },
      }),
    );
  const callTool = (conv: string) =>
    handlers.callTool(
      apiEvent({
        path: "/tools/lookup_order",
        pathParameters: { toolName: "lookup_order" },
        headers: { "x-tool-secret": TOOL_SECRET },
        body: { conversation_id: conv, order_id: "A1" },
      }),
    );
  const postResult = (m: TaskMessage, result: unknown = { ok: true }) =>
    handlers.result(
      apiEvent({
        path: `/conversations/${m.conversationId}/tasks/${m.taskId}/result`,
        pathParameters: { conversationId: m.conversationId, taskId: m.taskId },
        headers: { authorization: `Bearer ${m.callbackToken}` },
        body: { result },
      }),
    );
  const freezeAt = (ms: number) => {
    vi.useFakeTimers({ toFake: ["Date"] });
    vi.setSystemTime(ms);
  };

  it("runs the whole live path: register, tool call, callback at 599 999 ms delivered and pushed", async () => {
    sent = [];
    pushes = [];
    const conv = `live-${randomUUID()}`;
    const t0 = frozenAtRealNow();
    freezeAt(t0);
    expect((await register(conv)).statusCode).toBe(201);
    expect(bodyOf(await callTool(conv))).toMatchObject({ status: "accepted" });
    const message = sent[0] as TaskMessage;
    vi.setSystemTime(t0 + 599_999);
    const response = await postResult(message);
    expect(bodyOf(response)).toMatchObject({ outcome: "delivered", pushed: true });
    expect(pushes).toHaveLength(1);
    const history = await deps.conversations.getConversation(conv);
    expect(history?.messages.map((m) => m.kind)).toEqual([
      "session_registered",
      "task_started",
      "task_result",
    ]);
  });

  it("answers session_expired at 600 000 ms, and for a duplicate, the same outcome with duplicate:true", async () => {
    sent = [];
    pushes = [];
    const conv = `late-${randomUUID()}`;
    const t0 = frozenAtRealNow();
    freezeAt(t0);
    await register(conv);
    await callTool(conv);
    const message = sent[0] as TaskMessage;
    vi.setSystemTime(t0 + TEN_MIN);
    const first = await postResult(message);
    expect(first.statusCode).toBe(200);
    expect(bodyOf(first)).toMatchObject({
      outcome: "session_expired",
      expiredAt: iso(t0 + TEN_MIN),
      expiredForMs: 0,
    });
    const again = await postResult(message, { other: true });
    expect(bodyOf(again)).toMatchObject({ outcome: "session_expired", duplicate: true });
    expect(pushes).toHaveLength(0);
    const task = await deps.tasks.getTask(conv, message.taskId);
    expect(task).toMatchObject({
      outcome: "session_expired",
      result: { status: "succeeded", result: { ok: true } },
    });
    expect(
      bodyOf(
        await handlers.getSession(
          apiEvent({
            method: "GET",
            path: `/conversations/${conv}/session`,
            pathParameters: { conversationId: conv },
            headers: { authorization: `Bearer ${SERVICE_TOKEN}` },
          }),
        ),
      ),
    ).toMatchObject({
      error: "session_expired",
    });
  });

  it("still answers session_expired hours later after TTL removed the session item", async () => {
    sent = [];
    const conv = `gone-${randomUUID()}`;
    const t0 = frozenAtRealNow();
    freezeAt(t0);
    await register(conv);
    await callTool(conv);
    await tables.doc.send(
      new DeleteCommand({ TableName: tables.names.sessions, Key: { conversationId: conv } }),
    );
    vi.setSystemTime(t0 + TEN_MIN + 6 * 3_600_000);
    const response = await postResult(sent[0] as TaskMessage);
    expect(bodyOf(response)).toMatchObject({
      outcome: "session_expired",
      expiredAt: iso(t0 + TEN_MIN),
      expiredForMs: 6 * 3_600_000,
    });
  });

  it("rejects one conversation's token on another conversation's task", async () => {
    sent = [];
    const a = `a-${randomUUID()}`;
    const b = `b-${randomUUID()}`;
    await register(a);
    await register(b);
    await callTool(a);
    await callTool(b);
    const [ma, mb] = sent as [TaskMessage, TaskMessage];
    const forged = await postResult({ ...mb, callbackToken: ma.callbackToken });
    expect(forged.statusCode).toBe(401);
    const crossed = await postResult({ ...ma, conversationId: b });
    expect(crossed.statusCode).toBe(404);
    expect((await deps.tasks.getTask(b, mb.taskId))?.status).toBe("pending");
  });
});
