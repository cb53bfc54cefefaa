import { mockClient } from "aws-sdk-client-mock";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import type { LivePush, Notifier } from "../../../functions/core/notifier.js";
import { makeHandler } from "../../../functions/record-task-result/handler.js";
import { createDocClient } from "../../support/doc-client.js";
import { apiEvent, bodyOf } from "../../support/events.js";
import { fakeLiveTables, type LiveState } from "../../support/fake-live-table.js";
import {
  sessionItem,
  T0,
  TASK_TOKEN,
  TEN_MIN,
  taskItem,
  testDependencies,
} from "../../support/live-fixtures.js";

const doc = createDocClient();
const ddb = mockClient(doc);
const CONV = "conv-1";

const callback = (taskId: string, body: unknown = { result: { status: "shipped" } }, token = TASK_TOKEN) =>
  apiEvent({
    method: "POST",
    path: `/conversations/${CONV}/tasks/${taskId}/result`,
    pathParameters: { conversationId: CONV, taskId },
    headers: { Authorization: `Bearer ${token}`, "Content-Type": "application/json" },
    body,
  });

describe("POST /conversations/{conversationId}/tasks/{taskId}/result", () => {
  let state: LiveState;
  let pushes: { url: string; payload: LivePush }[];
  let pushOk: boolean;
  let setup: ReturnType<typeof testDependencies>;
  let handler: ReturnType<typeof makeHandler>;

  beforeEach(() => {
    ddb.reset();
    vi.useFakeTimers();
    vi.setSystemTime(T0);
    state = fakeLiveTables(ddb, {
      session: sessionItem(CONV, T0, { notifyUrl: "https://app.example.test/live" }),
      tasks: new Map([
        ["task#task-1", taskItem(CONV, "task-1", { notifyUrl: "https://app.example.test/live" })],
      ]),
      messages: [],
    });
    pushes = [];
    pushOk = true;
    const notifier: Notifier = {
      push: async (url, payload) => {
        pushes.push({ url, payload });
        return pushOk ? { ok: true } : { ok: false, reason: "receiver answered HTTP 500" };
      },
    };
    setup = testDependencies({ doc });
    handler = makeHandler({ ...setup.deps, notifier });
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it("delivers a callback 599 999 ms after session creation and pushes it once", async () => {
    vi.setSystemTime(T0 + 599_999);
    const response = await handler(callback("task-1"));
    expect(response.statusCode).toBe(200);
    expect(bodyOf(response)).toMatchObject({ outcome: "delivered", taskId: "task-1", pushed: true });
    expect(pushes).toHaveLength(1);
    expect(pushes[0]?.payload).toMatchObject({
      taskId: "task-1",
      result: { status: "succeeded", result: { status: "shipped" } },
    });
    expect(state.tasks.get("task#task-1")).toMatchObject({ outcome: "delivered", status: "completed" });
    expect(setup.metrics.counts).toEqual({ CallbackDelivered: 1 });
  });

  it("answers 200 session_expired at exactly 600 000 ms, keeps the result and logs a WARN", async () => {
    vi.setSystemTime(T0 + TEN_MIN);
    const response = await handler(callback("task-1"));
    expect(response.statusCode).toBe(200);
    expect(bodyOf(response)).toMatchObject({
      outcome: "session_expired",
      expiredAt: "2026-11-27T10:10:00.000Z",
      expiredForMs: 0,
    });
    expect(pushes).toHaveLength(0);
    expect(state.tasks.get("task#task-1")).toMatchObject({
      outcome: "session_expired",
      result: { status: "succeeded", result: { status: "shipped" } },
    });
    expect(state.messages.filter((m) => m.kind === "task_result")).toHaveLength(1);
    const warn = setup.logger.lines.find((l) => l.level === "warn");
    expect(warn).toMatchObject({
      message: "Callback arrived after session expired",
      data: {
        outcome: "callback_after_expiry",
        conversationId: CONV,
        taskId: "task-1",
        expiredAt: "2026-11-27T10:10:00.000Z",
        expiredForMs: 0,
        receivedAt: "2026-11-27T10:10:00.000Z",
        toolName: "lookup_order",
      },
    });
    expect(setup.logger.lines.filter((l) => l.level === "error")).toEqual([]);
    expect(setup.metrics.counts).toEqual({ CallbackAfterExpiry: 1 });
  });

  it("still says session_expired hours later when the session item is gone, from the conversation meta", async () => {
    state.session = undefined;
    state.meta = {
      conversationId: CONV,
      sk: "meta",
      createdAt: new Date(T0).toISOString(),
      updatedAt: new Date(T0).toISOString(),
      lastSession: {
        sessionId: "session-1",
        createdAt: new Date(T0).toISOString(),
        createdAtMs: T0,
        expiresAtMs: T0 + TEN_MIN,
        ttlMs: TEN_MIN,
      },
    };
    vi.setSystemTime(T0 + TEN_MIN + 4 * 3_600_000);
    const response = await handler(callback("task-1"));
    expect(response.statusCode).toBe(200);
    expect(bodyOf(response)).toMatchObject({
      outcome: "session_expired",
      expiredAt: "2026-11-27T10:10:00.000Z",
      expiredForMs: 4 * 3_600_000,
    });
    expect(state.tasks.get("task#task-1")?.outcome).toBe("session_expired");
  });

  it("answers a repeated callback with the first outcome and duplicate:true, pushing nothing twice", async () => {
    vi.setSystemTime(T0 + 1000);
    await handler(callback("task-1"));
    vi.setSystemTime(T0 + TEN_MIN + 1000);
    const again = await handler(callback("task-1", { result: { status: "different" } }));
    expect(again.statusCode).toBe(200);
    expect(bodyOf(again)).toEqual({ outcome: "delivered", duplicate: true, taskId: "task-1" });
    expect(pushes).toHaveLength(1);
    expect(state.tasks.get("task#task-1")?.result).toEqual({
      status: "succeeded",
      result: { status: "shipped" },
    });
  });

  it("lets a retry finish a push the first request stored but never made, still at most once", async () => {
    state.tasks.set(
      "task#task-1",
      taskItem(CONV, "task-1", {
        notifyUrl: "https://app.example.test/live",
        status: "completed",
        outcome: "delivered",
        push: "pending",
        result: { status: "succeeded", result: { n: 1 } },
      }),
    );
    const retry = await handler(callback("task-1"));
    expect(bodyOf(retry)).toMatchObject({ outcome: "delivered", pushed: true, duplicate: true });
    const again = await handler(callback("task-1"));
    expect(bodyOf(again)).toEqual({ outcome: "delivered", duplicate: true, taskId: "task-1" });
    expect(pushes).toHaveLength(1);
    expect(pushes[0]?.payload.result).toEqual({ status: "succeeded", result: { n: 1 } });
    expect(state.tasks.get("task#task-1")?.push).toBe("done");
  });

  it("rejects a wrong token with 401 and stores nothing", async () => {
    const response = await handler(callback("task-1", undefined, "not-the-token"));
    expect(response.statusCode).toBe(401);
    expect(bodyOf(response)).toMatchObject({ error: "unauthorized" });
    expect(state.tasks.get("task#task-1")?.outcome).toBeUndefined();
    expect(setup.logger.text()).not.toContain("not-the-token");
    expect(setup.logger.text()).not.toContain(TASK_TOKEN);
  });

  it("rejects a missing token with 401", async () => {
    const event = callback("task-1");
    event.headers = { "content-type": "application/json" };
    expect((await handler(event)).statusCode).toBe(401);
  });

  it("answers 404 task_not_found for an unknown task", async () => {
    const response = await handler(callback("task-404"));
    expect(response.statusCode).toBe(404);
    expect(bodyOf(response)).toMatchObject({ error: "task_not_found" });
  });

  it("records delivery_failed when the live push fails, and keeps the result", async () => {
    pushOk = false;
    const response = await handler(callback("task-1"));
    expect(response.statusCode).toBe(200);
    expect(bodyOf(response)).toMatchObject({ outcome: "delivery_failed" });
    expect(state.tasks.get("task#task-1")).toMatchObject({ outcome: "delivery_failed", status: "completed" });
  });

  it("delivers without a push when the session has no notifyUrl (the agent polls instead)", async () => {
    state.tasks.set("task#task-2", taskItem(CONV, "task-2"));
    const response = await handler(callback("task-2"));
    expect(bodyOf(response)).toMatchObject({ outcome: "delivered", pushed: false });
    expect(pushes).toHaveLength(0);
  });

  it.each([
    ["invalid JSON", "{not json"],
    ["an array", [1, 2]],
    ["an unknown field", { result: 1, extra: true }],
    ["a bad status", { status: "maybe" }],
  ])("rejects %s with 400 and stores nothing", async (_label, body) => {
    const response = await handler(callback("task-1", body));
    expect(response.statusCode).toBe(400);
    expect(state.tasks.get("task#task-1")?.outcome).toBeUndefined();
  });

  it("answers 413 for a body over 64 KB", async () => {
    const response = await handler(callback("task-1", { result: "x".repeat(70_000) }));
    expect(response.statusCode).toBe(413);
    expect(bodyOf(response)).toMatchObject({ error: "payload_too_large" });
  });

  it("answers 503 with Retry-After when DynamoDB throttles", async () => {
    ddb.reset();
    ddb
      .onAnyCommand()
      .rejects(Object.assign(new Error("Rate exceeded"), { name: "ThrottlingException", $metadata: {} }));
    const response = await handler(callback("task-1"));
    expect(response.statusCode).toBe(503);
    expect(response.headers?.["retry-after"]).toBe("2");
    expect(response.body).not.toMatch(/Rate exceeded|at .*\.ts/);
  });
});
